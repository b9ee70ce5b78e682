"""The shape of the house, read from the source with ``ast``: layers with
arrows pointing down only, no import circle (lazy imports included), no
private name of a dependency outside ``compat/internals.py``, and no module
over 500 lines.
"""
import ast
import collections
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'bert4keras_blog'

# Lowest first; a module may import from its own layer or a lower one.
LAYERS = [
    ('base', ['errors', 'datafiles', 'corpora']),
    ('compat', ['compat']),
    ('decoding', ['decoding', 'checkpoints']),
    ('experiment', ['experiment']),
    ('posts', ['pretrained', 'dynamics', 'mathword', 'teaforn', 'exposure', 'simsiam', 'mt5',
               'xiangqi', 'rnn_gradients']),
    ('app', ['app']),
]
# Siblings of one layer that must not import each other.
APART = [('decoding', 'checkpoints')]
POSTS = dict(LAYERS)['posts']


def _python_files(folder):
    for directory, _, names in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(names):
            if name.endswith('.py'):
                yield os.path.join(directory, name)


def _module_name(path):
    relative = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
    return relative[:-len('.__init__')] if relative.endswith('.__init__') else relative


MODULES = {_module_name(p): p for p in _python_files(PACKAGE)}
TREES = {m: ast.parse(open(p, encoding='utf-8').read(), p) for m, p in MODULES.items()}


def _imported(module, node):
    """The package modules an import statement loads (lazy ones too): the
    module named and, for ``from X import y``, X.y where that is a module."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module if MODULES[module].endswith('__init__.py') else module.rsplit('.', 1)[0]
        if node.level:
            base = '.'.join(base.split('.')[:len(base.split('.')) - node.level + 1])
            target = base + ('.' + node.module if node.module else '')
        else:
            target = node.module
        names = [target] + [target + '.' + alias.name for alias in node.names]
    found = set()
    for name in names:
        parts = name.split('.')
        # importing a.b.c runs a.b's __init__ too (a's is running already)
        for end in range(2, len(parts) + 1):
            candidate = '.'.join(parts[:end])
            if candidate in MODULES and candidate != module and \
                    not module.startswith(candidate + '.'):
                found.add(candidate)
    return found


def _graph():
    return {m: set().union(*[_imported(m, n) for n in ast.walk(tree)
                             if isinstance(n, (ast.Import, ast.ImportFrom))] or [set()])
            for m, tree in TREES.items()}


def _room(module):
    """The first part below the package: 'compat', 'mt5', ..."""
    return module.split('.')[1] if module != PACKAGE else None


def _layer(module):
    room = _room(module)
    for index, (_, rooms) in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError('%s belongs to no layer: add it to LAYERS' % module)


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != PACKAGE:
            _layer(module)


def test_imports_point_down_only():
    wrong = []
    for module, imports in _graph().items():
        if module == PACKAGE:
            continue
        for target in imports:
            if target == PACKAGE:
                continue
            if _layer(target) > _layer(module):
                wrong.append('%s (%s) imports %s (%s)' % (
                    module, LAYERS[_layer(module)][0], target, LAYERS[_layer(target)][0]))
            pair = (_room(module), _room(target))
            if pair in APART or pair[::-1] in APART:
                wrong.append('%s imports %s: those two stay apart' % (module, target))
            if _room(module) in POSTS and _room(target) in POSTS and pair[0] != pair[1]:
                wrong.append('post module %s imports another post\'s %s' % (module, target))
    assert not wrong, '\n'.join(sorted(wrong))


def test_checkpoints_take_only_tf_k_and_keras_from_compat():
    """The checkpoint formats need TensorFlow, not the compatibility machinery."""
    wrong = []
    for module, tree in TREES.items():
        if _room(module) != 'checkpoints':
            continue
        for node in ast.walk(tree):
            names = {a.name for a in getattr(node, 'names', [])}
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
                    PACKAGE + '.compat') and (node.module != PACKAGE + '.compat' or
                                              not names <= {'tf', 'K', 'keras'}):
                wrong.append('%s: from %s import %s' % (module, node.module, ', '.join(names)))
            if isinstance(node, ast.ImportFrom) and node.module == PACKAGE and 'compat' in names:
                wrong.append('%s imports compat' % module)
    assert not wrong, wrong


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 'done'
        return None
    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_circle_lazy_imports_included():
    graph = {m: {t for t in targets if t != PACKAGE} for m, targets in _graph().items()}
    assert _cycle(graph) is None, ' -> '.join(_cycle(graph))


def test_the_circle_finder_finds_a_circle():
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': set()}) is None


# ---------------------------------------------------------- private names

INTERNALS = os.path.join(PACKAGE, 'compat', 'internals.py')
CHECKED = [p for folder in (PACKAGE, 'benchmarks', 'examples') for p in _python_files(folder)]
# Private-looking names that are public API of the standard library.
STDLIB_PUBLIC = {'_exit', '_replace', '_asdict', '_fields', '_make'}
FORBIDDEN_MODULES = ('ctypes', 'tf_keras.src', 'keras.src', 'tensorflow.python')
# Raw ops whose behaviour we rely on beyond TensorFlow's API: InplaceUpdate
# is deprecated there, DisableCopyOnRead is an internal of resource variables.
PRIVATE_RAW_OPS = {'InplaceUpdate', 'DisableCopyOnRead'}


def _private(name):
    return name.startswith('_') and not name.startswith('__')


def _our_private_names(trees):
    """Private names our own code defines: module-level functions, classes
    and assignments, arguments, class members and the attributes our classes
    set on ``self``. A wrapper nested in a function (a patch) defines nothing
    of ours, whatever its name."""
    ours = set()
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                ours.add(node.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                ours.add(node.id)
            elif isinstance(node, ast.arg):
                ours.add(node.arg)
            elif isinstance(node, ast.ClassDef):
                for member in ast.walk(node):
                    if isinstance(member, (ast.FunctionDef, ast.ClassDef)) and member is not node:
                        ours.add(member.name)
                    if isinstance(member, ast.Attribute) and isinstance(member.ctx, ast.Store) \
                            and isinstance(member.value, ast.Name) \
                            and member.value.id in ('self', 'cls'):
                        ours.add(member.attr)
    return {name for name in ours if _private(name)}


def private_uses(tree, ours):
    """[(line, what)] for each private name of a dependency the code touches."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(FORBIDDEN_MODULES):
                    found.append((node.lineno, 'import ' + alias.name))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and not node.module.startswith(PACKAGE):
            if node.module.startswith(FORBIDDEN_MODULES):
                found.append((node.lineno, 'from %s import' % node.module))
            found += [(node.lineno, 'from %s import %s' % (node.module, a.name))
                      for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute):
            if _private(node.attr) and node.attr not in ours | STDLIB_PUBLIC:
                found.append((node.lineno, '.' + node.attr))
            if node.attr in PRIVATE_RAW_OPS and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == 'raw_ops':
                found.append((node.lineno, 'raw_ops.' + node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ('getattr', 'setattr', 'hasattr', 'delattr') \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) and _private(node.args[1].value) \
                and node.args[1].value not in ours:
            found.append((node.lineno, '%s(..., %r)' % (node.func.id, node.args[1].value)))
    return found


def test_no_private_name_of_a_dependency_outside_internals():
    trees = {p: ast.parse(open(p, encoding='utf-8').read(), p) for p in CHECKED}
    ours = _our_private_names(trees.values())
    wrong = ['%s:%d %s' % (os.path.relpath(p, ROOT), line, what)
             for p, tree in sorted(trees.items()) if not p.endswith(INTERNALS)
             for line, what in private_uses(tree, ours)]
    assert not wrong, 'only compat/internals.py may touch these:\n' + '\n'.join(wrong)


@pytest.mark.parametrize('source, what', [
    ('import ctypes', 'import ctypes'),
    ('from tf_keras.src.engine import training', 'from tf_keras.src.engine import'),
    ('from bert4keras.snippets import _private', 'from bert4keras.snippets import _private'),
    ('f = concrete._call_flat', '._call_flat'),
    ('x = tokenizer._token_end_id', '._token_end_id'),
    ("n = getattr(model, '_is_compiled', False)", "getattr(..., '_is_compiled')"),
    ("hasattr(tf.raw_ops, 'DisableCopyOnRead')", None),
    ('tf.raw_ops.InplaceUpdate(x=x, i=i, v=v)', 'raw_ops.InplaceUpdate'),
    ('def f(layer):\n    return layer._inbound_nodes', '._inbound_nodes'),
])
def test_the_private_name_check_catches(source, what):
    assert [w for _, w in private_uses(ast.parse(source), set())] == ([what] if what else [])


def test_the_private_name_check_leaves_our_own_names_alone():
    source = ('class A(object):\n    def __init__(self):\n        self._x = 1\n'
              '    def _y(self):\n        return self._x\n'
              'def f(a):\n    return a._y(), a._x, os._exit')
    tree = ast.parse(source)
    assert private_uses(tree, _our_private_names([tree])) == []


def test_no_module_over_500_lines():
    long = collections.OrderedDict()
    for path in CHECKED:
        if not path.startswith(os.path.join(ROOT, 'examples')):
            lines = sum(1 for _ in open(path, encoding='utf-8'))
            if lines > 500:
                long[os.path.relpath(path, ROOT)] = lines
    assert not long, long
