"""Tiny, randomly initialised checkpoints in the real release formats.

Nothing can be downloaded at run time, so every example runs on a checkpoint
written here: same variable names, shapes, file names and folder layout as
the releases in ``RELEASES``, so the code that reads them reads the real
files too.

Public API:
    KINDS: the kinds ``write_tiny`` knows.
    TINY_ROOT: where ``tiny`` keeps them.
    write_tiny(kind, out_dir, seed=0, **config_overrides) -> dict of paths.
    tiny(kind, seed=0) -> dict of paths under ``TINY_ROOT/<kind>/``,
        written on first use.
"""
import json
import os
import shutil

import numpy as np
import sentencepiece as spm

from bert4keras_blog.checkpoints import layouts
from bert4keras_blog.checkpoints.releases import RELEASES
from bert4keras_blog.checkpoints.tfwriter import save_variables
from bert4keras_blog.checkpoints.vocab import chinese_vocab, train_sentencepiece, write_vocab
from bert4keras_blog.errors import BlogError

__all__ = ['KINDS', 'TINY_ROOT', 'write_tiny', 'tiny']

KINDS = ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1', 'gpt')

# checkpoints/tiny/ beside the package in a source checkout, else a user cache.
_REPO_CHECKPOINTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'checkpoints')
TINY_ROOT = os.environ.get('BERT4KERAS_BLOG_TINY') or (
    os.path.join(_REPO_CHECKPOINTS, 'tiny') if os.path.isdir(_REPO_CHECKPOINTS)
    else os.path.join(os.path.expanduser('~'), '.cache', 'bert4keras-blog', 'tiny'))

# Odd, non-square sizes: a transposed or swapped weight cannot pass a peer check.
_TINY = dict(hidden_size=48, num_attention_heads=3, intermediate_size=100,
             num_hidden_layers=2, max_position_embeddings=512, type_vocab_size=2,
             hidden_act='gelu', hidden_dropout_prob=0.1,
             attention_probs_dropout_prob=0.1, initializer_range=0.02)


def _write_json(path, data):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2, ensure_ascii=False, sort_keys=True)


def write_tiny(kind, out_dir, seed=0, **config_overrides):
    """Writes a tiny random checkpoint of ``kind`` laid out as its release.

    Args:
        kind: str. One of ``KINDS``. File names are the release's in
            ``RELEASES`` ('gpt' is a Google BERT used as a left-to-right LM):
            e.g. ALBERT ``albert_config.json``, ``model.ckpt-best.*``,
            ``vocab_chinese.txt``; ELECTRA ``base_discriminator_config.json``,
            ``base_generator_config.json``, ``electra_base.*``; mT5 a
            bert4keras JSON config, ``model.ckpt-1000000.*``,
            ``sentencepiece.model``.
        out_dir: str. Folder to write into (created).
        seed: int. Same seed, same bytes. Defaults to 0.
        **config_overrides: values that replace the tiny config's
            (``hidden_size=64``, ...). For ELECTRA, ``generator_*`` keys set
            the generator's.

    Returns:
        dict with 'config', 'checkpoint' and 'dict' (or 'spm' for mT5);
        ELECTRA adds 'generator_config'.
    """
    if kind not in KINDS:
        raise BlogError('unknown checkpoint kind %r; choose one of %s' % (kind, ', '.join(KINDS)))
    release = RELEASES['bert' if kind == 'gpt' else kind]
    os.makedirs(out_dir, exist_ok=True)
    init = layouts.RandomValues(seed)
    paths = {'config': os.path.join(out_dir, release.config),
             'checkpoint': os.path.join(out_dir, release.checkpoint)}
    if kind == 'mt5.1.1':
        paths['spm'] = train_sentencepiece(
            os.path.join(out_dir, release.vocab[:-len('.model')]),
            vocab_size=config_overrides.pop('spm_vocab_size', 5000), seed=seed)
        cfg, variables = _mt5(paths['spm'], init, config_overrides)
    else:
        vocab = chinese_vocab(config_overrides.pop('num_chars', 2500))
        paths['dict'] = os.path.join(out_dir, release.vocab)
        write_vocab(paths['dict'], vocab)
        cfg = dict(_TINY, vocab_size=len(vocab))
        if kind == 'albert':
            cfg.update(embedding_size=20, num_hidden_groups=1, inner_group_num=1)
            cfg.update(config_overrides)
            variables = layouts.albert_variables(cfg, init)
        elif kind == 'electra':
            cfg.update(embedding_size=20)
            gen = {k[len('generator_'):]: config_overrides.pop(k)
                   for k in list(config_overrides) if k.startswith('generator_')}
            cfg.update(config_overrides)
            gen_cfg = dict(cfg, hidden_size=12, num_attention_heads=1, intermediate_size=25)
            gen_cfg.update(gen)
            paths['generator_config'] = os.path.join(out_dir, release.generator_config)
            _write_json(paths['generator_config'], gen_cfg)
            variables = layouts.electra_variables(cfg, gen_cfg, init)
        else:  # bert, roberta and gpt share Google's BERT format
            cfg.update(config_overrides)
            variables = layouts.bert_variables(cfg, init)
    _write_json(paths['config'], cfg)
    save_variables(paths['checkpoint'], variables)
    return paths


def _mt5(spm_path, init, overrides):
    pieces = spm.SentencePieceProcessor(model_file=spm_path).get_piece_size()
    cfg = {
        'hidden_size': 48, 'intermediate_size': 100, 'num_attention_heads': 3,
        'attention_head_size': 10, 'num_hidden_layers': 2,
        # Like mT5's 250112 rows for 250100 pieces: padded to a multiple of 128.
        'vocab_size': -(-pieces // 128) * 128,
        'relative_attention_num_buckets': 32, 'hidden_act': ['gelu_tanh', 'linear'],
        'hidden_dropout_prob': 0.1, 'initializer_range': 0.02,
    }
    cfg.update(overrides)
    variables = layouts.mt5_variables(cfg, init)
    variables['global_step'] = np.array(1000000, dtype='int64')
    return cfg, variables


def tiny(kind, seed=0):
    """Paths of the tiny ``kind`` checkpoint, writing it on first use.

    Files live in ``TINY_ROOT/<kind>`` (seed 0) or ``TINY_ROOT/<kind>-seed<N>``.
    A ``paths.json`` written last marks a complete folder, so an interrupted
    write is redone rather than half-read, and a cache written under older
    file names is rewritten.
    """
    folder = os.path.join(TINY_ROOT, kind if seed == 0 else '%s-seed%d' % (kind, seed))
    marker = os.path.join(folder, 'paths.json')
    if os.path.exists(marker):
        with open(marker) as f:
            names = json.load(f)
        paths = {k: os.path.join(folder, v) for k, v in names.items()}
        current = os.path.basename(paths['checkpoint']) == \
            RELEASES['bert' if kind == 'gpt' else kind].checkpoint
        if current and all(os.path.exists(p + '.index' if k == 'checkpoint' else p)
                           for k, p in paths.items()):
            return paths
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    paths = write_tiny(kind, folder, seed=seed)
    _write_json(marker, {k: os.path.relpath(v, folder) for k, v in paths.items()})
    return paths
