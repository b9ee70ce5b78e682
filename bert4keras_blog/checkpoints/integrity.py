"""What a release's files must satisfy before a model is built from them.

A downloaded checkpoint can be cut short, bit-flipped or paired with the
wrong config or vocabulary. TensorFlow and bert4keras then fail deep inside
(``IndexError: Read less bytes than requested``) or, worse, load without
complaint (a 1-layer config on a 12-layer checkpoint uses a twelfth of it).
Everything here reads only the config, the vocabulary and the checkpoint's
``.index`` (no tensor data), and names the file and the field.

Public API:
    check_config(path, kind) -> dict: UTF-8 JSON with the sizes the kind
        needs, each a positive whole number within a sane bound.
    check_sizes(config, kind, path) -> config: those sizes, of a dict.
    check_vocab(path, vocab_size) -> int: UTF-8 lines, the special tokens,
        as many tokens as the config's ``vocab_size``.
    check_spm(path): a sentencepiece model that loads.
    check_checkpoint_files(prefix) -> {name: shape}: a readable index and
        data shards holding every byte the index lists.
    check_layers(prefix, config, kind): the config builds every layer the
        checkpoint holds.
    check_release(paths) -> paths: all of the above for one release.
    explain_load_failure(prefix, error): raises errors.CheckpointError naming the
        data shard that is cut, corrupted or missing, if that is the cause.
    SIZE_LIMITS: the bounds a config's sizes must fall within.
"""
import glob
import json
import os
import re

import numpy as np
import sentencepiece as spm
from bert4keras_blog.compat import tf

from bert4keras_blog.errors import CheckpointError, CheckpointMismatchError, DataFormatError
from bert4keras_blog.checkpoints.tfwriter import variable_shapes
from bert4keras_blog.datafiles import OverlongLine, text_lines

__all__ = ['check_config', 'check_sizes', 'check_vocab', 'check_spm',
           'check_checkpoint_files', 'check_layers', 'check_release', 'explain_load_failure',
           'SIZE_LIMITS']


# Sizes a config must give, with bounds far above any release (mT5-XXL has
# a 250,112 vocabulary and 4,096 wide layers) that keep a hostile config
# from asking for terabytes.
SIZE_LIMITS = {'vocab_size': 1 << 20, 'hidden_size': 1 << 15, 'num_hidden_layers': 256,
               'num_attention_heads': 256, 'intermediate_size': 1 << 17}
_OPTIONAL_SIZES = {'embedding_size': 1 << 15, 'attention_head_size': 1 << 12,
                   'max_position_embeddings': 1 << 16, 'type_vocab_size': 1 << 10,
                   'num_hidden_groups': 256, 'inner_group_num': 256}
_SPECIAL_TOKENS = ('[UNK]', '[CLS]', '[SEP]')


def _read_text(path):
    """The whole file, through the one line reader (so a non-UTF-8 byte is
    named by line, a UTF-16 file recognised)."""
    lines = []
    for number, line in enumerate(text_lines(path), 1):
        if isinstance(line, OverlongLine):
            raise DataFormatError(path, number, line)
        lines.append(line)
    return ''.join(lines)


def check_config(path, kind=None):
    """Reads a JSON config and checks the sizes ``kind`` needs.

    Raises:
        DataFormatError: naming the file and the line or key.
    """
    text = _read_text(path)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, 'invalid JSON: %s' % error.msg) from None
    if not isinstance(config, dict):
        raise DataFormatError(path, None, 'expected a JSON object of config keys')
    return config if kind is None else check_sizes(config, kind, path)


def check_sizes(config, kind, path):
    """The sizes ``kind`` needs, each a bounded positive whole number;
    ``path`` names the config in the error."""
    for key, limit in list(SIZE_LIMITS.items()) + list(_OPTIONAL_SIZES.items()):
        if key not in config:
            if key in SIZE_LIMITS:
                raise DataFormatError(path, None, "key '%s' is missing (a %s config gives it)"
                                      % (key, kind))
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise DataFormatError(path, None, "'%s' is %s; it must be a whole number from 1 "
                                              "to %d" % (key, json.dumps(value)[:40], limit))
    if kind != 'mt5.1.1' and config['hidden_size'] % config['num_attention_heads']:
        raise DataFormatError(path, None, "'hidden_size' %d is not a multiple of "
                                          "'num_attention_heads' %d" % (
                                              config['hidden_size'],
                                              config['num_attention_heads']))
    return config


def check_vocab(path, vocab_size=None):
    """Checks a BERT-style vocabulary; returns its number of tokens."""
    lines = _read_text(path).splitlines()  # NUL bytes (binary files) are refused there
    tokens = len(lines)
    if tokens == 0:
        raise DataFormatError(path, None, 'the vocabulary is empty')
    missing = [t for t in _SPECIAL_TOKENS if t not in set(line.strip() for line in lines)]
    if missing:
        raise DataFormatError(path, None, 'no %s token: not a BERT vocabulary (one token a '
                                          'line, with [PAD], [UNK], [CLS], [SEP], [MASK])'
                              % ', '.join(missing))
    if vocab_size is not None and tokens != vocab_size:
        raise DataFormatError(path, None, 'holds %d tokens, the config says vocab_size %d: '
                                          'the vocabulary and the checkpoint are from different '
                                          'releases' % (tokens, vocab_size))
    return tokens


def check_spm(path):
    """Loads a sentencepiece model; an unreadable one is named."""
    processor = spm.SentencePieceProcessor()
    try:
        processor.Load(path)
    except (OSError, RuntimeError) as error:
        raise DataFormatError(path, None, 'not a sentencepiece model (%s)'
                              % str(error).splitlines()[0][:120]) from None
    return processor.GetPieceSize()


def _data_shards(prefix):
    shards = glob.glob(glob.escape(prefix) + '.data-*-of-*')
    counts = {re.search(r'-of-(\d+)$', s).group(1) for s in shards}
    if not shards or len(counts) != 1:
        return None
    count = counts.pop()
    return ['%s.data-%05d-of-%s' % (prefix, i, count) for i in range(int(count))]


def check_checkpoint_files(prefix):
    """The index reads and the data shards hold every byte it lists.

    Returns:
        {variable name: shape}.
    """
    index = prefix + '.index'
    if not os.path.isfile(index):
        raise CheckpointError('no checkpoint at %s: %s is missing' % (prefix, index))
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError('%s is not a readable TF checkpoint index (%s); download it '
                              'again' % (index, error.message.splitlines()[0][:120]
                                         if hasattr(error, 'message') else error)) from None
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    shards = _data_shards(prefix)
    if shards is None:
        raise CheckpointError('%s has no data file (%s.data-00000-of-0000N next to it)'
                              % (index, os.path.basename(prefix)))
    for shard in shards:
        if not os.path.isfile(shard):
            raise CheckpointError('checkpoint %s: data file %s is missing' % (prefix, shard))
    listed = sum(int(np.prod(shape)) * dtypes[name].size for name, shape in shapes.items()
                 if dtypes[name] != tf.string)
    held = sum(os.path.getsize(s) for s in shards)
    if held < listed:
        raise CheckpointError('checkpoint %s is cut short: its data file%s hold%s %d bytes, '
                              'the index lists %d bytes of tensors; download it again' % (
                                  prefix, 's' if len(shards) > 1 else '',
                                  '' if len(shards) > 1 else 's', held, listed))
    return shapes


# Numbered layers: bert/encoder/layer_11/..., electra/encoder/layer_3/...,
# encoder/block_007/... (T5). An ELECTRA generator is a separate model.
_LAYER = re.compile(r'^(?!generator/)((?:[^/]+/)?(?:encoder|decoder))/(?:layer|block)_0*(\d+)/')


def check_layers(prefix, config, kind=None, shapes=None):
    """Raises CheckpointMismatchError when the checkpoint holds numbered
    layers the config does not build (they would silently go unused)."""
    if shapes is None:
        shapes = variable_shapes(prefix)
    layers = {}
    for name in shapes:
        found = _LAYER.match(name)
        if found:
            layers.setdefault(found.group(1), set()).add(int(found.group(2)))
    built = config.get('num_hidden_layers')
    for stack, numbers in sorted(layers.items()):
        if built is not None and max(numbers) >= built:
            raise CheckpointMismatchError(
                prefix, '%s/layer_%d' % (stack, max(numbers)), reason='unused',
                found=(max(numbers) + 1,), expected=(built,))


def check_release(paths):
    """Checks one release's files (``find_release`` / ``release_from_files``
    output) without reading tensor data; returns ``paths``."""
    kind = paths['kind']
    config = check_config(paths['config'], kind)
    if 'generator_config' in paths:
        check_config(paths['generator_config'], kind)
    if 'dict' in paths:
        check_vocab(paths['dict'], config['vocab_size'])
    if 'spm' in paths:
        check_spm(paths['spm'])
    shapes = check_checkpoint_files(paths['checkpoint'])
    check_layers(paths['checkpoint'], config, kind, shapes)
    return paths


def explain_load_failure(prefix, error):
    """Raises CheckpointError when ``error`` (from reading tensors) comes
    from the files themselves; returns otherwise."""
    if isinstance(prefix, dict):
        return
    text = str(getattr(error, 'message', error))
    shards = _data_shards(prefix) or []
    named = next((s for s in shards if os.path.basename(s) in text), None)
    if 'Checksum does not match' in text or 'checksum' in text.lower():
        shard = re.search(r'shard (\d+)', text)
        where = shards[int(shard.group(1))] if shard and int(shard.group(1)) < len(shards) \
            else named or prefix
        raise CheckpointError('checkpoint %s is corrupted: a tensor in %s fails its CRC32C '
                              'check; download it again' % (prefix, where)) from None
    if 'Read less bytes than requested' in text or 'truncated' in text.lower():
        raise CheckpointError('checkpoint %s is cut short: a tensor lies past the end of its '
                              'data file; download it again' % prefix) from None
    if 'No such file' in text or not os.path.isfile(prefix + '.index'):
        check_checkpoint_files(prefix)  # names the missing file
        raise CheckpointError('checkpoint %s: %s' % (prefix, text.splitlines()[0][:160])) \
            from None
    if 'bad magic number' in text or 'sstable' in text:
        raise CheckpointError('%s.index is not a readable TF checkpoint index; download it '
                              'again' % prefix) from None
