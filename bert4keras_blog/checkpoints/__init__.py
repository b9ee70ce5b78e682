"""Checkpoints in the real release formats: the release table, finding a
release's files, the checked loader, the tiny writer, the one TF writer,
the variable layouts, the Hugging Face converter and model building.

Modules, one job each (none imports above ``compat``):
    releases   the table of real releases (folders, file names, kinds)
    finding    ``find_release(folder)``, which every example and the CLI use
    loading    bert4keras' checkpoint loader, checked (compatibility step 7)
    hf2tf      Hugging Face model folders -> Google-format checkpoints
    integrity  what a release's files must satisfy (config, vocabulary, shards,
               layers), checked before any model is built
    vocab      Chinese vocabularies and sentencepiece models for tiny files
    layouts    the variables each release's checkpoint holds
    tfwriter   the sharded TF checkpoint writer (tiny files, hf2tf, models)
    tiny       ``write_tiny`` / ``tiny``: tiny random checkpoints
    building   ``read_config`` and ``build_model``

Everything public is importable from here:
    KINDS, TINY_ROOT, write_tiny, tiny          (tiny)
    RELEASES                                    (releases)
    find_release, release_from_files, detect_kind   (finding)
    build_model, read_config                    (building)
    chinese_vocab, train_sentencepiece          (vocab)
    variable_names                              (layouts)
    ShardedWriter, save_checkpoint, save_variables, variable_shapes   (tfwriter)

Example:
```python
from bert4keras_blog.checkpoints import tiny, build_model
paths = tiny('bert')   # {'config': ..., 'checkpoint': ..., 'dict': ...}
model = build_model('bert', paths, with_mlm=True)
```
"""
from bert4keras_blog.checkpoints.building import build_model, read_config
from bert4keras_blog.checkpoints.layouts import variable_names
from bert4keras_blog.checkpoints.finding import detect_kind, find_release, release_from_files
from bert4keras_blog.checkpoints import loading  # noqa: F401  (installs the checked loader)
from bert4keras_blog.checkpoints.releases import RELEASES
from bert4keras_blog.checkpoints.tfwriter import (
    ShardedWriter, save_checkpoint, save_variables, variable_shapes)
from bert4keras_blog.checkpoints.tiny import KINDS, TINY_ROOT, tiny, write_tiny
from bert4keras_blog.checkpoints.vocab import chinese_vocab, train_sentencepiece

__all__ = ['KINDS', 'RELEASES', 'TINY_ROOT', 'write_tiny', 'tiny', 'build_model', 'read_config',
           'chinese_vocab', 'train_sentencepiece', 'save_variables', 'save_checkpoint',
           'variable_names', 'variable_shapes', 'ShardedWriter', 'find_release',
           'release_from_files', 'detect_kind']
