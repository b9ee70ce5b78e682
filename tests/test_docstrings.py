"""Every module's docstring lists its public API, and every ```python
example in a docstring, the README or a docs page runs as written."""
import glob
import importlib
import inspect
import os
import pkgutil
import re
import textwrap

import pytest

import bert4keras_blog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'bert4keras_blog')
MODULE_NAMES = ['bert4keras_blog'] + sorted(
    m.name for m in pkgutil.walk_packages(bert4keras_blog.__path__, 'bert4keras_blog.'))
MODULES = [importlib.import_module(name) for name in MODULE_NAMES]


def test_every_module_of_every_subpackage_is_walked():
    files = glob.glob(os.path.join(PACKAGE, '**', '*.py'), recursive=True)
    names = {os.path.relpath(f, ROOT)[:-3].replace(os.sep, '.').replace('.__init__', '')
             for f in files}
    assert names == set(MODULE_NAMES)
    print('%d modules checked' % len(MODULES))


@pytest.mark.parametrize('module', MODULES, ids=MODULE_NAMES)
def test_public_names_are_listed_in_the_module_docstring(module):
    doc = module.__doc__ or ''
    assert doc.strip(), '%s has no docstring' % module.__name__
    missing = [name for name in getattr(module, '__all__', [])
               if not re.search(r'(?<![\w.])%s\b' % re.escape(name), doc)]
    assert missing == [], '%s: __all__ names missing from the docstring' % module.__name__
    undefined = [name for name in getattr(module, '__all__', []) if not hasattr(module, name)]
    assert undefined == [], '%s: __all__ names that do not exist' % module.__name__


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


def page_examples():
    pages = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs',
                                                                              '*.md')))
    for page in pages:
        with open(page, encoding='utf-8') as f:
            blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
        name = os.path.relpath(page, ROOT)
        for i, block in enumerate(blocks):
            yield pytest.param(block, id='%s[%d]' % (name, i))


@pytest.mark.parametrize('code', list(page_examples()))
def test_page_example_runs(code):
    exec(compile(code, '<page>', 'exec'), {})  # noqa: S102
