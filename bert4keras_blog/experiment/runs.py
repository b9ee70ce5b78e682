"""What every example shares on its command line and in its run folder.

One way to point any example at a release: ``--pretrained DIR`` (a release
folder as it unpacks, found through ``checkpoints.RELEASES``; a Hugging
Face folder is converted once) or the explicit ``--config``,
``--checkpoint``, ``--dict`` / ``--spm``. The same five flags are on all
eight examples; partial or contradictory flags stop the example with a
message that says what is missing, never a silent fallback to the tiny
model. Examples that train from scratch (posts 2, 5, 8) say so if given one.

Every run folder reproduces itself: ``metrics.json`` gets a ``run`` entry
with the full command line (every setting explicit, defaults resolved),
the working directory, the checkpoint and data files with their sizes and
content hashes, library versions and the wall time;
``bert4keras-blog rerun RUN_DIR`` runs it again.

Public API:
    add_release_arguments(parser, kinds, many=False)
    add_data_arguments(parser, help)
    add_quick_argument(parser, settings): ``--quick``, the setting ``make
        demo`` runs (a headline worth reading in a minute or two on 2 CPU
        cores); ``settings`` are defaults, so flags given with it still win.
    parse_example_args(parser, argv, resolve=None) -> argparse.Namespace:
        ``.releases`` (list of path dicts; empty = the tiny default) and
        ``.command`` (the resolved argv), filled.
    Run(example, args, script): ``.folder``; ``save(metrics)``.
    recorded_settings(args) -> dict: the settings a run folder records.
    check_run_dir(folder), check_writable_file(path, flag): raise
        BlogError before work whose output could not be written.
    share(text): argparse type, a number from 0 to 1.
    file_record(path) -> dict: size and sha256 (a checkpoint: its files,
        hashed through the ``.index``, which holds every tensor's checksum).
    RELEASE_FLAGS: the flags that point an example at a real release.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy

import bert4keras_blog

from bert4keras_blog.errors import BlogError
from bert4keras_blog.compat import internals, stack_versions
from bert4keras_blog.checkpoints import RELEASES, find_release, release_from_files
from bert4keras_blog.datafiles import MAX_REJECTED, check_text_head
from bert4keras_blog.experiment.training import run_dir, save_metrics

__all__ = ['add_release_arguments', 'add_data_arguments', 'add_quick_argument',
           'parse_example_args', 'recorded_settings', 'Run',
           'file_record', 'check_run_dir', 'check_writable_file', 'share', 'RELEASE_FLAGS']

RELEASE_FLAGS = ('pretrained', 'config', 'checkpoint', 'dict', 'spm')


def add_release_arguments(parser, kinds, many=False):
    """The five release flags, identical on every example.

    Args:
        kinds: the release kinds the example can use ('bert', 'roberta',
            'albert', 'electra', 'mt5.1.1'); empty for examples that train
            from scratch.
        many: the example takes several releases at once (post 1).
    """
    if kinds:
        takes = ', '.join(RELEASES[k].title for k in kinds)
        text = ('takes %s%s. Give a release folder, or the files; with neither, the tiny '
                'checkpoint in the same format.' % (takes, ' (one folder each)' if many else ''))
    else:
        text = 'not used: this example trains its models from scratch.'
    group = parser.add_argument_group('pretrained release', text)
    group.add_argument('--pretrained', nargs='+', metavar='DIR',
                       help='release folder(s) as they unpack (e.g. '
                            'chinese_roberta_wwm_ext_L-12_H-768_A-12/); a Hugging Face folder '
                            'is converted once')
    group.add_argument('--config', metavar='JSON', help='the release config (bert_config.json)')
    group.add_argument('--checkpoint', metavar='PREFIX',
                       help='checkpoint prefix (bert_model.ckpt, model.ckpt-1000000)')
    group.add_argument('--dict', metavar='TXT', help='vocab.txt (BERT, RoBERTa, ALBERT, ELECTRA)')
    group.add_argument('--spm', metavar='MODEL', help='sentencepiece.model (mT5)')
    parser.set_defaults(release_kinds=tuple(kinds), many_releases=many)
    return group


def add_data_arguments(parser, help, with_release=False, files=None):
    """``--data`` and ``--max-rejected``; ``with_release``: a real release
    needs real data (the embedded data is sized for the tiny model);
    ``files``: the names a ``--data`` folder must hold (None: it is a file).
    Both are checked before the example starts any work."""
    parser.add_argument('--data', help=help)
    parser.set_defaults(data_with_release=help if with_release else None, data_files=files)
    parser.add_argument('--max-rejected', type=share, default=MAX_REJECTED,
                        help='stop when more than this share of a file\'s lines is malformed '
                             '(default %(default)s); every rejected line is listed in '
                             '<run dir>/<split>.rejected.txt')


def add_quick_argument(parser, settings):
    """``--quick``: ``settings`` (argparse dests -> values) become the
    defaults. The same flag on all eight examples; ``make demo`` passes it."""
    shown = ' '.join('--%s %s' % (dest.replace('_', '-'), ' '.join(map(str, value))
                                  if isinstance(value, (list, tuple)) else value)
                     for dest, value in settings.items())
    parser.add_argument('--quick', action='store_true',
                        help="make demo's setting, a minute or two on 2 CPU cores: " + shown)
    parser.set_defaults(quick_settings=dict(settings))


def _releases(args):
    files = {k: getattr(args, k) for k in RELEASE_FLAGS[1:]}
    given = ['--' + k for k in RELEASE_FLAGS if getattr(args, k)]
    if not given:
        return []
    if not args.release_kinds:
        raise BlogError('%s: this example trains its models from scratch and reads no '
                        'checkpoint' % ' '.join(given))
    if args.pretrained and len(given) > 1:
        raise BlogError('give --pretrained DIR or the files (%s), not both'
                        % ' '.join(g for g in given if g != '--pretrained'))
    if args.pretrained:
        if len(args.pretrained) > 1 and not args.many_releases:
            raise BlogError('--pretrained takes one folder here, got %d' % len(args.pretrained))
        found = [find_release(folder, args.release_kinds) for folder in args.pretrained]
        kinds = ['bert' if r['kind'] == 'roberta' else r['kind'] for r in found]
        if len(set(kinds)) < len(kinds):
            raise BlogError('--pretrained got two %s-format releases; give one of each kind'
                            % max(kinds, key=kinds.count).upper())
        return found
    return [release_from_files(kinds=args.release_kinds, **files)]


def share(text):
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError('%s: a share from 0 to 1' % text)
    return value


def _check_data(args):
    """``--data`` exists, is readable and starts as UTF-8 text."""
    files = getattr(args, 'data_files', None)
    if files:
        if not os.path.isdir(args.data):
            raise BlogError('--data %s: no such folder (it holds %s)' % (args.data,
                                                                         ', '.join(files)))
        paths = [os.path.join(args.data, name) for name in files]
    else:
        paths = [args.data]
    for path in paths:
        if not os.path.isfile(path):
            raise BlogError('--data: %s: no such file' % path)
        check_text_head(path)


RUN_MARK = '.bert4keras-blog-run'


def check_run_dir(folder):
    """A run folder may be new, empty or an earlier run's (which is
    replaced); a folder of other files is refused, never written into."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise BlogError('--run-dir %s is a file, not a folder' % folder)
    if os.path.isdir(folder):
        names = os.listdir(folder)
        if names and RUN_MARK not in names and 'metrics.json' not in names:
            raise BlogError('--run-dir %s holds files that are not a run\'s (%s); choose a new '
                            'or empty folder' % (folder, ', '.join(sorted(names)[:3])))
    check_writable_file(os.path.join(folder, 'metrics.json'), '--run-dir')


def check_writable_file(path, flag):
    """``path`` can be written: not a folder, in a folder we can create or
    write to. Checked before work that would be lost otherwise."""
    if os.path.isdir(path):
        raise BlogError('%s %s is a folder; give a file name' % (flag, path))
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)):
        raise BlogError('%s %s: cannot write there (%s is not writable)' % (
            flag, path, path if os.path.exists(path) else parent))


def parse_example_args(parser, argv, resolve=None):
    """Parses, resolves the release flags and the example's own defaults
    (``resolve(args)``, which may raise BlogError), checks ``--data`` and
    ``--run-dir``, and records the full command line in ``args.command``.
    Problems exit as ``parser.error``, before any work."""
    args = parser.parse_args(argv)
    if getattr(args, 'quick', False):  # the quick values as defaults: explicit flags win
        parser.set_defaults(**args.quick_settings)
        args = parser.parse_args(argv)
    try:
        args.releases = _releases(args) if hasattr(args, 'release_kinds') else []
        if args.releases and getattr(args, 'data_with_release', None) and not args.data:
            raise BlogError('a real release trains on real data: add --data (%s)'
                            % args.data_with_release)
        if getattr(args, 'data', None):
            _check_data(args)
        if getattr(args, 'run_dir', None):
            check_run_dir(args.run_dir)
        if resolve is not None:
            resolve(args)
    except BlogError as error:
        parser.error(str(error))
    args.command = resolved_argv(parser, args)
    return args


def resolved_argv(parser, args):
    """Every option with its value, so the command alone repeats the run."""
    argv = []
    for action, kind in internals.parser_actions(parser):
        flags = [s for s in action.option_strings if s.startswith('--')]
        if not flags or kind == 'help':
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        if kind == 'flag':
            argv.append(flags[0])
        elif isinstance(value, (list, tuple)):
            argv += [flags[0]] + [str(v) for v in value]
        else:
            argv += [flags[0], str(value)]
    return argv


def _sha256(path, chunk=1 << 22):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def file_record(path):
    """Size and content hash of a data file, folder or checkpoint prefix.

    A checkpoint's ``.index`` holds the size and CRC32C of every tensor, so
    its hash stands for the whole checkpoint without reading gigabytes.
    """
    if path is None:
        return None
    path = os.path.abspath(path)
    if os.path.isfile(path + '.index'):
        files = sorted(glob.glob(glob.escape(path) + '.*'))
        return {'path': path, 'bytes': sum(os.path.getsize(f) for f in files),
                'files': [os.path.basename(f) for f in files],
                'sha256_of_index': _sha256(path + '.index')}
    if os.path.isdir(path):
        return {'path': path, 'files': {name: file_record(os.path.join(path, name))
                                        for name in sorted(os.listdir(path))
                                        if os.path.isfile(os.path.join(path, name))}}
    if os.path.isfile(path):
        return {'path': path, 'bytes': os.path.getsize(path), 'sha256': _sha256(path)}
    return {'path': path, 'missing': True}


def _versions():
    versions = dict(stack_versions(), numpy=numpy.__version__, python=sys.version.split()[0],
                    bert4keras_blog=getattr(bert4keras_blog, '__version__', 'source'))
    return {k: str(v) for k, v in versions.items()}


def recorded_settings(args):
    """The settings a run folder records: every parsed option, resolved."""
    return {k: v for k, v in sorted(vars(args).items())
            if k not in ('releases', 'command', 'release_kinds', 'many_releases',
                         'data_with_release', 'quick_settings')}


class Run(object):
    """One example's run folder and its record.

    Prints the settings at start; ``save`` writes ``metrics.json`` with the
    metrics and a ``run`` entry: script, cwd, command (resolved argv),
    settings, inputs (releases and data with sizes and hashes), versions,
    started (UTC) and seconds.
    """

    def __init__(self, example, args, script):
        self.args, self.script = args, os.path.abspath(script)
        self.folder = run_dir(example) if args.run_dir is None else run_dir(args.run_dir, root='')
        open(os.path.join(self.folder, RUN_MARK), 'w').close()  # ours to replace next time
        self.start = time.time()
        self.settings = recorded_settings(args)
        self.inputs = {'releases': [
            {key: (value if key == 'kind' else file_record(value))
             for key, value in release.items() if key != 'folder'}
            for release in args.releases]}
        if getattr(args, 'data', None):
            self.inputs['data'] = file_record(args.data)
        print('settings: ' + ', '.join('%s=%s' % kv for kv in self.settings.items()
                                       if kv[1] is not None))
        for release in args.releases:
            print('release: %s (%s)' % (release['kind'], release['checkpoint']))
        if not args.releases and args.release_kinds:
            print('release: the tiny checkpoint (give --pretrained DIR for a real one)')

    def save(self, metrics):
        """Writes ``metrics`` and the run record; returns the path."""
        metrics = dict(metrics)
        metrics['run'] = {
            'script': self.script, 'cwd': os.getcwd(),
            'command': [os.path.relpath(self.script)] + self.args.command,
            'settings': self.settings, 'inputs': self.inputs, 'versions': _versions(),
            'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.start)),
            'seconds': round(time.time() - self.start, 1)}
        return save_metrics(self.folder, metrics)


def rerun(folder, run_dir=None):
    """Runs a run folder's command again (``bert4keras-blog rerun``).

    Returns:
        int, the exit status of ``python SCRIPT ARGS`` in the recorded cwd.
    """
    path = os.path.join(folder, 'metrics.json')
    if not os.path.isfile(path):
        raise BlogError('%s has no metrics.json (a run folder has one after the run ends)'
                        % folder)
    with open(path, encoding='utf-8') as f:
        record = json.load(f).get('run')
    if not record:
        raise BlogError('%s has no run record (written by an older version)' % path)
    argv = list(record['command'][1:])
    if run_dir:
        if '--run-dir' in argv:
            i = argv.index('--run-dir')
            del argv[i:i + 2]
        argv += ['--run-dir', os.path.abspath(run_dir)]
    print('in %s: python %s %s' % (record['cwd'], record['script'], ' '.join(argv)))
    return subprocess.call([sys.executable, record['script']] + argv, cwd=record['cwd'])
