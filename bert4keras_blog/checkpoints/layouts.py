"""What each release's checkpoint holds: variable names and shapes.

Google's layouts for BERT/RoBERTa-wwm, ALBERT (one shared layer group),
ELECTRA (discriminator and generator in one file) and mT5 v1.1 (mesh
TensorFlow, with Adafactor slots), as ``{name: array}`` built by an
initialiser: ``RandomValues`` for the tiny checkpoints, ``ShapesOnly`` to
list a real-size layout without allocating it.

Public API:
    RandomValues(seed), ShapesOnly(): the two initialisers.
    bert_variables(cfg, init), albert_variables(cfg, init),
    electra_variables(cfg, gen_cfg, init), mt5_variables(cfg, init)
    variable_names(kind, cfg) -> sorted list of str
"""
import numpy as np

__all__ = ['RandomValues', 'ShapesOnly', 'bert_variables', 'albert_variables',
           'electra_variables', 'mt5_variables', 'variable_names']


class RandomValues(object):
    """Seeded random values with the right statistics for each variable kind."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def matrix(self, *shape):
        return self.rng.normal(0.0, 0.05, shape).astype('float32')

    def bias(self, n):
        return self.rng.normal(0.0, 0.05, (n,)).astype('float32')

    def gamma(self, n):
        return (1.0 + self.rng.normal(0.0, 0.1, (n,))).astype('float32')


class ShapesOnly(object):
    """Stands in for ``RandomValues`` where only the names and shapes are wanted:
    zero-stride arrays, so a BERT-Base layout allocates nothing."""

    def matrix(self, *shape):
        return np.broadcast_to(np.float32(0), shape)

    bias = gamma = matrix


def variable_layout(kind, cfg):
    """``{name: shape}`` of every variable a Google release of ``kind`` with
    ``cfg`` holds (ELECTRA: the discriminator and a generator of the same
    size; mT5: with its Adafactor slots), without allocating the arrays."""
    shapes = ShapesOnly()
    if kind == 'mt5.1.1':
        found = mt5_variables(cfg, shapes)
    elif kind == 'albert':
        found = albert_variables(cfg, shapes)
    elif kind == 'electra':
        cfg = dict(cfg, embedding_size=cfg.get('embedding_size', cfg['hidden_size']))
        found = electra_variables(cfg, cfg, shapes)
    else:
        found = bert_variables(cfg, shapes)
    return {name: tuple(value.shape) for name, value in found.items()}


def variable_names(kind, cfg):
    """The sorted names of ``variable_layout(kind, cfg)``."""
    return sorted(variable_layout(kind, cfg))


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



def mt5_config_from_shapes(shapes):
    """The bert4keras mT5 v1.1 config that fits ``{name: shape}`` of a
    checkpoint (Google ships a gin file, not a JSON config)."""
    def shape(name):
        if name not in shapes:
            raise KeyError(name)
        return shapes[name]
    vocab, hidden = shape('shared/embedding')
    heads, buckets = shape('encoder/block_000/layer_000/SelfAttention/relative_attention_bias')
    inner = shape('encoder/block_000/layer_000/SelfAttention/q')[1]
    layers = len({n.split('/')[1] for n in shapes
                  if n.startswith('encoder/block_') and not n.endswith(('_slot_v', '_slot_vr',
                                                                        '_slot_vc'))})
    return {'vocab_size': vocab, 'hidden_size': hidden, 'num_hidden_layers': layers,
            'num_attention_heads': heads, 'attention_head_size': inner // heads,
            'intermediate_size': shape('encoder/block_000/layer_001/DenseReluDense/wi_0/kernel')[1],
            'relative_attention_num_buckets': buckets, 'hidden_act': ['gelu_tanh', 'linear'],
            'hidden_dropout_prob': 0.1}
