"""Finding a release's files in a folder, or checking explicit ones.

Every example, ``xiangqi.lm`` and the CLI's ``check`` find a release's
files here. A user points at the folder a release unpacks to; the files are
found by their release names first (``releases``), then by the patterns
other mirrors use (brightmart's ``albert_config_base.json``, HFL's
``electra_180g_base.ckpt``), and the model kind is read from the
checkpoint's own variable names, so a renamed folder still loads as what it
is. A Hugging Face folder is converted once (``hf2tf``).

Public API:
    find_release(folder, kinds=None) -> dict of paths (+ 'kind')
    release_from_files(config=None, checkpoint=None, dict=None, spm=None,
        kinds=None) -> dict of paths (+ 'kind'): explicit files, checked.
    detect_kind(prefix) -> str: the kind a checkpoint's variables belong to.
    converted_root() -> str: where Hugging Face folders are converted to.
    mt5_config_from_checkpoint(prefix) -> path of a config read off the shapes.
"""
import glob
import json
import os
import shutil
import tempfile

from bert4keras_blog.checkpoints import hf2tf
from bert4keras_blog.checkpoints.integrity import check_release
from bert4keras_blog.checkpoints.layouts import mt5_config_from_shapes
from bert4keras_blog.checkpoints.releases import RELEASES, vocab_key
from bert4keras_blog.checkpoints.tfwriter import variable_shapes
from bert4keras_blog.checkpoints.tiny import TINY_ROOT
from bert4keras_blog.errors import BlogError, CheckpointMismatchError

__all__ = ['find_release', 'release_from_files', 'detect_kind', 'converted_root',
           'mt5_config_from_checkpoint']

# A variable that only one layout has -> its kind (checked in this order).
_SIGNATURES = [('shared/embedding', 'mt5.1.1'),
               ('electra/embeddings/word_embeddings', 'electra'),
               ('bert/encoder/embedding_hidden_mapping_in/kernel', 'albert'),
               ('bert/embeddings/word_embeddings', 'bert')]


def detect_kind(prefix):
    """The kind whose layout the checkpoint at ``prefix`` holds."""
    try:
        names = variable_shapes(prefix)
    except Exception as error:  # TF raises several types for unreadable files
        raise BlogError('%s is not a readable TF checkpoint (%s: %s)'
                        % (prefix, type(error).__name__, str(error).splitlines()[0]))
    for name, kind in _SIGNATURES:
        if name in names:
            return kind
    raise BlogError('%s holds no layout we know (no %s); its first variables: %s'
                    % (prefix, ' / '.join(n for n, _ in _SIGNATURES), ', '.join(sorted(names)[:5])))


def _one(folder, names, what, exclude=()):
    """The single file of ``folder`` matching the first pattern that matches."""
    for pattern in names:
        found = [p for p in sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
                 if not any(word in os.path.basename(p) for word in exclude)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise BlogError('%s has several %s files (%s); name one with the explicit flag'
                            % (folder, what, ', '.join(os.path.basename(p) for p in found)))
    return None


def _checkpoint_prefix(folder):
    """The prefix the ``checkpoint`` state file names, else the only ``*.index``."""
    state = os.path.join(folder, 'checkpoint')
    if os.path.isfile(state):
        with open(state, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith('model_checkpoint_path:'):
                    name = line.split(':', 1)[1].strip().strip('"')
                    prefix = name if os.path.isabs(name) else os.path.join(folder, name)
                    if os.path.exists(prefix + '.index'):
                        return prefix
    indexes = sorted(glob.glob(os.path.join(glob.escape(folder), '*.index')))
    if len(indexes) == 1:
        return indexes[0][:-len('.index')]
    if not indexes:
        return None
    raise BlogError('%s holds several checkpoints (%s); pass --checkpoint PREFIX'
                    % (folder, ', '.join(os.path.basename(p)[:-6] for p in indexes)))


def _is_hf_folder(folder):
    names = os.listdir(folder)
    return 'config.json' in names and any(
        n.endswith('.safetensors') or (n.startswith('pytorch_model') and n.endswith('.bin'))
        for n in names)


_HF_KINDS = {'bert': 'bert', 'albert': 'albert', 'electra': 'electra', 'mt5': 'mt5.1.1',
             't5': 'mt5.1.1'}


def converted_root():
    """Where Hugging Face folders are converted to: beside the tiny checkpoints."""
    return os.path.join(os.path.dirname(TINY_ROOT), 'converted')


def _convert_hf(folder):
    """A Hugging Face folder -> the Google-format copy (converted once, reused)."""
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        model_type = json.load(f).get('model_type', '')
    kind = _HF_KINDS.get(model_type)
    if kind is None:
        raise BlogError('%s is a Hugging Face %r model; we convert %s' % (
            folder, model_type, ', '.join(sorted(_HF_KINDS))))
    out = os.path.join(converted_root(), os.path.basename(os.path.normpath(folder)))
    if not os.path.exists(os.path.join(out, 'checkpoint')):
        print('%s is a Hugging Face folder: converting it once to %s' % (folder, out))
        if os.path.isdir(out):
            shutil.rmtree(out)  # an interrupted conversion never reached its state file
        hf2tf.convert(folder, out, kind)
    return out


def find_release(folder, kinds=None):
    """The files of the release unpacked in ``folder``.

    Args:
        folder: str. A release folder (Google/HFL layout), or a Hugging Face
            model folder, which is converted once (``converted_root()``).
        kinds: the kinds the caller can use, or None for any.

    Returns:
        dict: 'kind', 'folder', 'config', 'checkpoint' (prefix), 'dict' or
        'spm', and for ELECTRA 'generator_config' when the release has one.

    Raises:
        BlogError: the folder is missing, holds no checkpoint or no config /
            vocabulary, several candidates, or a kind the caller cannot use.
    """
    if not os.path.isdir(folder):
        raise BlogError('%s: no such folder' % folder)
    prefix = _checkpoint_prefix(folder)
    if prefix is None and _is_hf_folder(folder):
        folder = _convert_hf(folder)
        prefix = _checkpoint_prefix(folder)
    if prefix is None:
        raise BlogError('%s holds no TF checkpoint (no *.index file; a release has e.g. '
                        'bert_model.ckpt.index next to bert_model.ckpt.data-00000-of-00001)'
                        % folder)
    kind = _checked_kind(prefix, folder, kinds)
    release = RELEASES[kind]
    paths = {'kind': kind, 'folder': folder, 'checkpoint': prefix}
    exclude = ('generator',) if kind == 'electra' else ()
    config = _one(folder, (release.config,) + release.config_patterns, 'config', exclude)
    if config is None and kind == 'mt5.1.1':
        config = mt5_config_from_checkpoint(prefix)
    if config is None:
        raise BlogError('%s has no %s (the %s config); pass --config' % (
            folder, release.config, release.title))
    paths['config'] = config
    key = vocab_key(kind)
    vocab = _one(folder, (release.vocab,) + release.vocab_patterns, 'vocabulary')
    if vocab is None:
        hint = (' (mT5 keeps it apart: %s)' % release.source.split('(+ ')[-1].rstrip(')')
                if kind == 'mt5.1.1' else '')
        raise BlogError('%s has no %s%s; put it there or pass --%s'
                        % (folder, release.vocab, hint, key))
    paths[key] = vocab
    if release.generator_config:
        generator = _one(folder, (release.generator_config, '*generator_config.json'),
                         'generator config')
        if generator:
            paths['generator_config'] = generator
    return check_release(paths)


def _checked_kind(prefix, folder, kinds):
    kind = detect_kind(prefix)
    if kind == 'bert' and 'roberta' in os.path.basename(os.path.normpath(folder)).lower():
        kind = 'roberta'
    if not kinds or kind in kinds:
        return kind
    if kind in ('bert', 'roberta'):  # one format under two names
        for alias in ('bert', 'roberta'):
            if alias in kinds:
                return alias
    raise BlogError('%s holds a %s checkpoint; this takes %s' % (
        prefix, RELEASES[kind].title, ' or '.join(RELEASES[k].title for k in kinds)))


def release_from_files(config=None, checkpoint=None, dict=None, spm=None, kinds=None):
    """Explicit files, each checked to exist; the kind read from the checkpoint.

    A checkpoint given as its ``.index`` or ``.data-*`` file is taken as its
    prefix. Missing pieces are an error naming the flag.
    """
    if checkpoint is None:
        raise BlogError('--config/--dict/--spm need --checkpoint (or give --pretrained DIR)')
    for suffix in ('.index', '.data-00000-of-00001', '.meta'):
        if checkpoint.endswith(suffix):
            checkpoint = checkpoint[:-len(suffix)]
    if not os.path.exists(checkpoint + '.index'):
        raise BlogError('--checkpoint %s: no %s.index (give the prefix, e.g. '
                        '.../bert_model.ckpt)' % (checkpoint, checkpoint))
    kind = _checked_kind(checkpoint, os.path.dirname(checkpoint) or '.', kinds)
    key = vocab_key(kind)
    given = {'dict': dict, 'spm': spm}
    other = 'dict' if key == 'spm' else 'spm'
    if given[other] is not None:
        raise BlogError('--%s does not apply to a %s checkpoint; it reads --%s'
                        % (other, RELEASES[kind].title, key))
    if given[key] is None:
        raise BlogError('--checkpoint %s (%s) needs --%s' % (checkpoint, RELEASES[kind].title, key))
    if config is None and kind == 'mt5.1.1':
        config = mt5_config_from_checkpoint(checkpoint)
    if config is None:
        raise BlogError('--checkpoint %s (%s) needs --config' % (checkpoint, RELEASES[kind].title))
    for flag, path in (('config', config), (key, given[key])):
        if not os.path.isfile(path):
            raise BlogError('--%s %s: no such file' % (flag, path))
    paths = {'kind': kind, 'folder': os.path.dirname(checkpoint), 'checkpoint': checkpoint,
             'config': config, key: given[key]}
    generator = _one(os.path.dirname(os.path.abspath(config)), ('*generator_config.json',),
                     'generator config') if kind == 'electra' else None
    if generator:
        paths['generator_config'] = generator
    return check_release(paths)


def mt5_config_from_checkpoint(prefix):
    """Google ships mT5 with a gin file, not a JSON config: the bert4keras
    config is read off the checkpoint's shapes and written to a temporary
    file (its path is returned)."""
    try:
        config = mt5_config_from_shapes(variable_shapes(prefix))
    except KeyError as missing:
        raise CheckpointMismatchError(prefix, missing.args[0], reason='missing') from None
    path = os.path.join(tempfile.mkdtemp(prefix='mt5-config-'), 'mt5_config.json')
    with open(path, 'w') as f:
        json.dump(config, f, indent=2)
    return path
