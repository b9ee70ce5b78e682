"""Every ```python example in a public docstring runs as written."""
import importlib
import inspect
import pkgutil
import re
import textwrap

import pytest

import bert4keras_blog

MODULES = [importlib.import_module('bert4keras_blog.' + m.name)
           for m in pkgutil.iter_modules(bert4keras_blog.__path__) if m.name != 'cli']


def examples():
    for module in MODULES:
        objects = [module] + [obj for _, obj in inspect.getmembers(module)
                              if getattr(obj, '__module__', None) == module.__name__]
        for obj in objects:
            for i, code in enumerate(re.findall(r'```python\n(.*?)```', obj.__doc__ or '', re.S)):
                yield pytest.param(code, id='%s.%s[%d]' % (module.__name__, getattr(
                    obj, '__name__', '?'), i))


@pytest.mark.parametrize('code', list(examples()))
def test_docstring_example_runs(code):
    namespace = {}
    compiled = compile(textwrap.dedent(code), '<docstring>', 'exec')
    exec(compiled, namespace)  # noqa: S102  (our own documentation, not data)


def readme_examples():
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, 'README.md'), encoding='utf-8') as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    return [pytest.param(b, id='README[%d]' % i) for i, b in enumerate(blocks)]


@pytest.mark.parametrize('code', readme_examples())
def test_readme_example_runs(code):
    exec(compile(code, '<README>', 'exec'), {})  # noqa: S102
