"""The run folder every example writes (``runs/<example>/``, git-ignored).

Every run folder reproduces itself: ``metrics.json`` gets a ``run`` entry
with the full command line (every setting explicit, defaults resolved),
the working directory, the checkpoint and data files with their sizes and
content hashes, library versions and the wall time;
``bert4keras-blog rerun RUN_DIR`` runs it again.

Public API:
    run_dir(example, root='runs') -> str: ``runs/<example>/``, created.
    save_metrics(folder, metrics) -> str: ``metrics.json`` (sorted, UTF-8).
    Run(example, args, script): ``.folder``; ``save(metrics)``.
    rerun(folder, run_dir=None): the recorded command again.
    recorded_settings(args) -> dict: the settings a run folder records.
    check_run_dir(folder), check_writable_file(path, flag): raise BlogError
        before work whose output could not be written.
    file_record(path) -> dict: size and sha256 (a checkpoint: its files,
        hashed through the ``.index``, which holds every tensor's checksum).
    RUN_MARK: the file that marks a folder as a run folder.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy

import bert4keras_blog
from bert4keras_blog.compat import stack_versions
from bert4keras_blog.errors import BlogError

__all__ = ['run_dir', 'save_metrics', 'Run', 'rerun', 'recorded_settings', 'check_run_dir',
           'check_writable_file', 'file_record', 'RUN_MARK']


def run_dir(example, root='runs'):
    """The folder for one example's outputs (git-ignored ``runs/``)."""
    folder = os.path.join(root, example)
    os.makedirs(folder, exist_ok=True)
    return folder


def _plain(value):
    if isinstance(value, (numpy.floating, numpy.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_metrics(folder, metrics):
    """Writes ``metrics`` as ``<folder>/metrics.json`` and returns the path.
    Written beside it and moved into place: an interrupted run never leaves
    a half-written record."""
    path = os.path.join(folder, 'metrics.json')
    text = json.dumps(_plain(metrics), indent=2, ensure_ascii=False, sort_keys=True)
    with open(path + '.partial', 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(path + '.partial', path)
    return path


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
                         'data_with_release', 'quick_settings', 'embedded_release')}


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
            print('release: %s (give --pretrained DIR for a real one)'
                  % getattr(args, 'embedded_release', 'the tiny checkpoint'))

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
