"""Cached forward passes: the prompt once, then one token per step.

Each model shape keeps every layer's keys and values and reuses the model's
own layers (embeddings, dense, feed-forward, layer norms, output head); only
attention over the cache is written here. Both classes offer ``start(batch)``
-> (logits, state) and ``advance(state, rows, tokens)`` -> (logits, state),
where ``rows`` picks, for each new row, the cache row it continues (beams).

Public API (used by ``decoding.search``):
    BertCache(model, lm): UniLM (lm=False) or LM (lm=True) on BERT-family models.
    T5Cache(t5, max_steps): T5 v1.1 / mT5 decoders; encoder once.
    shared_cache(cls, model, *args): one cache (and its traced graphs) per model.
"""
import weakref

import numpy as np

from bert4keras_blog.backend import K, tf
from bert4keras_blog.errors import BlogError

__all__ = ['BertCache', 'T5Cache', 'shared_cache']

_NEG = -1e12  # what bert4keras' attention masking amounts to after softmax


def _split_heads(x, heads, size):
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1], heads, size])


def _attend(q, k, v, mask, scale, bias=None):
    """q (b, j, h, d), k/v (b, k, h, d), mask (b, j, k) bool -> (b, j, h*d)."""
    a = tf.einsum('bjhd,bkhd->bhjk', q, k)
    if bias is not None:
        a = a + bias
    if scale:
        a = a / scale
    a = tf.where(mask[:, None], a, _NEG)
    o = tf.einsum('bhjk,bkhd->bjhd', tf.nn.softmax(a, axis=-1), v)
    shape = tf.shape(o)
    return tf.reshape(o, [shape[0], shape[1], shape[2] * shape[3]])


_CACHES = weakref.WeakKeyDictionary()


def shared_cache(cls, model, *args):
    """One cached model (and its traced graphs) per model and settings, so
    making a new decoder for the same model does not trace again."""
    per_model = _CACHES.setdefault(model, {})
    key = (cls,) + args
    if key not in per_model:
        per_model[key] = cls(model, *args)
    return per_model[key]


def _keras_model(model):
    return model.model if hasattr(model, 'model') and hasattr(model, 'layers') \
        and isinstance(model.layers, dict) else model


# ------------------------------------------------------------ BERT family

class BertCache(object):
    """Cached forward pass of a BERT-family model with an MLM head."""

    def __init__(self, model, lm):
        self.lm = lm
        model = _keras_model(model)
        get = model.get_layer
        names = {layer.name for layer in model.layers}
        if 'Embedding-Position' not in names or 'MLM-Dense' not in names:
            raise BlogError('incremental decoding needs an absolute-position BERT-family model '
                            'built with with_mlm (BERT, RoBERTa, ALBERT; application lm/unilm)')
        self.token = get('Embedding-Token')
        self.segment = get('Embedding-Segment') if 'Embedding-Segment' in names else None
        self.position = get('Embedding-Position')
        if self.position.hierarchical or self.position.merge_mode != 'add':
            raise BlogError('hierarchical or non-additive position embeddings are not supported')
        self.embedding_norm = get('Embedding-Norm')
        self.mapping = get('Embedding-Mapping') if 'Embedding-Mapping' in names else None
        self.layers = []
        if 'Transformer-MultiHeadSelfAttention' in names:  # ALBERT: one shared layer
            shared = tuple(get('Transformer-%s' % n) for n in
                           ('MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
                            'FeedForward', 'FeedForward-Norm'))
            count = len(shared[0]._inbound_nodes)
            self.layers = [shared] * count
        else:
            i = 0
            while 'Transformer-%d-MultiHeadSelfAttention' % i in names:
                self.layers.append(tuple(get('Transformer-%d-%s' % (i, n)) for n in
                                         ('MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
                                          'FeedForward', 'FeedForward-Norm')))
                i += 1
        attention = self.layers[0][0]
        self.heads, self.key_size, self.head_size = \
            attention.heads, attention.key_size, attention.head_size
        self.scale = attention.key_size ** 0.5 if attention.attention_scale else None
        self.mlm = [get('MLM-Dense'), get('MLM-Norm')]
        self.mlm_bias = get('MLM-Bias')
        self.vocab_size = int(self.token.input_dim)
        cache_spec = tf.TensorSpec([None, None, self.heads, self.key_size], K.floatx())
        value_spec = tf.TensorSpec([None, None, self.heads, self.head_size], K.floatx())
        caches_spec = [cache_spec, value_spec] * len(self.layers)
        int_matrix, int_vector = (tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None], tf.int32))
        self.prefill = tf.function(self._prefill, input_signature=[
            int_matrix, int_matrix, int_vector])
        self.step = tf.function(self._step, input_signature=[
            int_vector, int_vector, int_vector, int_vector,
            tf.TensorSpec([None, None], tf.bool), caches_spec])

    def _embed(self, token_ids, segment_ids, positions):
        x = self.token(token_ids)
        if self.segment is not None:
            x = x + self.segment(segment_ids)
        x = x + tf.gather(self.position.embeddings, positions)
        x = self.embedding_norm(x)
        return self.mapping(x) if self.mapping is not None else x

    def _layer(self, x, layer, k_cache, v_cache, mask):
        attention, attention_norm, feed_forward, feed_forward_norm = layer
        q = _split_heads(attention.q_dense(x), self.heads, self.key_size)
        k = _split_heads(attention.k_dense(x), self.heads, self.key_size)
        v = _split_heads(attention.v_dense(x), self.heads, self.head_size)
        if k_cache is not None:
            k, v = tf.concat([k_cache, k], 1), tf.concat([v_cache, v], 1)
        o = attention.o_dense(_attend(q, k, v, mask, self.scale))
        x = attention_norm(x + o)
        x = feed_forward_norm(x + feed_forward(x))
        return x, k, v

    def _head(self, x):
        for layer in self.mlm:
            x = layer(x)
        return self.mlm_bias(self.token(x, mode='dense'))

    def _prefill(self, token_ids, segment_ids, lengths):
        length = tf.shape(token_ids)[1]
        positions = tf.range(length)[None]
        x = self._embed(token_ids, segment_ids, positions)
        valid = positions < lengths[:, None]  # (b, k)
        if self.lm:
            allowed = positions[0][None, :] <= positions[0][:, None]  # (j, k)
        else:  # UniLM: attend within the same or an earlier segment block
            idxs = tf.cumsum(segment_ids, axis=1)
            allowed = idxs[:, None, :] <= idxs[:, :, None]
        mask = tf.logical_and(allowed, valid[:, None, :])
        caches = []
        for layer in self.layers:
            x, k, v = self._layer(x, layer, None, None, mask)
            caches += [k, v]
        last = tf.gather(x, lengths - 1, batch_dims=1)
        return self._head(last[:, None])[:, 0], caches

    def _step(self, tokens, positions, segments, rows, key_mask, caches):
        caches = [tf.gather(c, rows) for c in caches]
        key_mask = tf.concat([tf.gather(key_mask, rows),
                              tf.ones_like(rows, tf.bool)[:, None]], 1)
        x = self._embed(tokens[:, None], segments[:, None], positions[:, None])
        new = []
        for i, layer in enumerate(self.layers):
            x, k, v = self._layer(x, layer, caches[2 * i], caches[2 * i + 1], key_mask[:, None])
            new += [k, v]
        return self._head(x)[:, 0], new, key_mask

    # The search driver's interface: start, then advance.
    def start(self, batch):
        token_ids = [np.asarray(item[0]).reshape(-1) for item in batch]
        if self.lm:
            segment_ids = [np.zeros_like(t) for t in token_ids]
        else:
            segment_ids = [np.asarray(item[1]).reshape(-1) for item in batch]
        lengths = np.array([len(t) for t in token_ids], 'int32')
        width = lengths.max()
        pad = lambda seqs: np.array([np.pad(s, (0, width - len(s))) for s in seqs], 'int32')  # noqa: E731
        logits, caches = self.prefill(pad(token_ids), pad(segment_ids), lengths)
        key_mask = np.arange(width)[None] < lengths[:, None]
        state = {'caches': caches, 'key_mask': tf.constant(key_mask), 'positions': lengths}
        return logits.numpy(), state

    def advance(self, state, rows, tokens):
        rows = np.asarray(rows, 'int32')
        positions = state['positions'][rows]
        segments = np.full_like(rows, 0 if self.lm else 1)
        logits, caches, key_mask = self.step(
            np.asarray(tokens, 'int32'), positions, segments, rows,
            state['key_mask'], state['caches'])
        return logits.numpy(), {'caches': caches, 'key_mask': key_mask,
                                'positions': positions + 1}

    def cache_bytes(self, batch_size, length):
        return _cache_bytes(self, batch_size, length)


# ------------------------------------------------------------------ T5

class T5Cache(object):
    """Encoder once; decoder self-attention cached; cross K/V computed once."""

    def __init__(self, t5, max_steps):
        if not hasattr(t5, 'encoder') or not hasattr(t5, '_decoder'):
            raise BlogError('T5Decoder needs the bert4keras T5 object: build it with '
                            "build_transformer_model(..., model='mt5.1.1', return_keras_model=False)")
        if t5._decoder.cross_position_bias:
            raise BlogError('T5Decoder follows mesh TensorFlow: build the model without '
                            'cross_position_bias (the default once bert4keras_blog is imported)')
        self.encoder = t5.encoder
        get = t5.decoder.get_layer
        names = {layer.name for layer in t5.decoder.layers}
        self.token = get('Embedding-Token')
        self.mapping = get('Decoder-Embedding-Mapping') \
            if 'Decoder-Embedding-Mapping' in names else None
        self.layers = []
        i = 0
        while 'Decoder-Transformer-%d-MultiHeadSelfAttention' % i in names:
            p = 'Decoder-Transformer-%d-' % i
            self.layers.append([get(p + n) for n in (
                'MultiHeadSelfAttention-Norm', 'MultiHeadSelfAttention',
                'MultiHeadCrossAttention-Norm', 'MultiHeadCrossAttention',
                'FeedForward-Norm', 'FeedForward')])
            i += 1
        attention = self.layers[0][1]
        self.heads, self.key_size, self.head_size = \
            attention.heads, attention.key_size, attention.head_size
        self.scale = attention.key_size ** 0.5 if attention.attention_scale else None
        self.output_norm = get('Decoder-Output-Norm')
        self.output_scale = get('Decoder-Output-Scale')
        self.output_lm = get('Decoder-Output-LM') if 'Decoder-Output-LM' in names else None
        self.vocab_size = int(self.token.input_dim)
        # Relative position bias of every (query, key) pair up to max_steps.
        relative = get('Decoder-Embedding-Relative-Position')
        dummy = tf.zeros([1, max_steps + 1, 1])
        # .call, not __call__: the layer's compute_mask expects Keras masks.
        self.position_bias = tf.transpose(relative.call([dummy, dummy]), (2, 0, 1))  # (h, q, k)
        self.max_steps = max_steps
        n = len(self.layers)
        k_spec = tf.TensorSpec([None, None, self.heads, self.key_size], K.floatx())
        v_spec = tf.TensorSpec([None, None, self.heads, self.head_size], K.floatx())
        int_vector = tf.TensorSpec([None], tf.int32)
        self.prefill = tf.function(self._prefill, input_signature=[
            tf.TensorSpec([None, None], tf.int32)])
        self.step = tf.function(self._step, input_signature=[
            int_vector, tf.TensorSpec([], tf.int32), int_vector,
            tf.TensorSpec([None, None], tf.bool), [k_spec, v_spec] * n, [k_spec, v_spec] * n])

    def _prefill(self, encoder_ids):
        context = self.encoder(encoder_ids)
        cross = []
        for layer in self.layers:
            attention = layer[3]
            cross += [_split_heads(attention.k_dense(context), self.heads, self.key_size),
                      _split_heads(attention.v_dense(context), self.heads, self.head_size)]
        return cross

    def _step(self, tokens, t, rows, context_mask, caches, cross):
        caches = [tf.gather(c, rows) for c in caches]
        cross = [tf.gather(c, rows) for c in cross]
        context_mask = tf.gather(context_mask, rows)
        x = self.token(tokens[:, None])
        if self.mapping is not None:
            x = self.mapping(x)
        bias = self.position_bias[None, :, t:t + 1, :t + 1]  # (1, h, 1, t+1)
        self_mask = tf.ones([tf.shape(tokens)[0], 1, t + 1], tf.bool)
        new = []
        for i, (n1, self_att, n2, cross_att, n3, ffn) in enumerate(self.layers):
            h = n1(x)
            q = _split_heads(self_att.q_dense(h), self.heads, self.key_size)
            k = tf.concat([caches[2 * i], _split_heads(self_att.k_dense(h), self.heads,
                                                       self.key_size)], 1)
            v = tf.concat([caches[2 * i + 1], _split_heads(self_att.v_dense(h), self.heads,
                                                           self.head_size)], 1)
            x = x + self_att.o_dense(_attend(q, k, v, self_mask, self.scale, bias))
            new += [k, v]
            h = n2(x)
            q = _split_heads(cross_att.q_dense(h), self.heads, self.key_size)
            x = x + cross_att.o_dense(_attend(q, cross[2 * i], cross[2 * i + 1],
                                              context_mask[:, None], self.scale))
            x = x + ffn(n3(x))
        x = self.output_scale(self.output_norm(x))
        if self.output_lm is not None:
            logits = tf.matmul(x, self.output_lm.kernel)
        else:  # T5 v1.0: tied output layer
            logits = self.token(x, mode='dense')
        return logits[:, 0], new, cross, context_mask

    def start(self, batch, start_id):
        ids = [np.asarray(item[0]).reshape(-1) for item in batch]
        width = max(len(s) for s in ids)
        encoder_ids = np.array([np.pad(s, (0, width - len(s))) for s in ids], 'int32')
        cross = self.prefill(encoder_ids)
        empty_k = tf.zeros([len(batch), 0, self.heads, self.key_size])
        empty_v = tf.zeros([len(batch), 0, self.heads, self.head_size])
        state = {'caches': [empty_k, empty_v] * len(self.layers), 'cross': cross,
                 'context_mask': tf.constant(encoder_ids != 0), 't': 0}
        return self.advance(state, np.arange(len(batch)), np.full(len(batch), start_id))

    def advance(self, state, rows, tokens):
        if state['t'] > self.max_steps:
            raise BlogError('T5Decoder was built for maxlen %d' % self.max_steps)
        logits, caches, cross, context_mask = self.step(
            np.asarray(tokens, 'int32'), np.int32(state['t']), np.asarray(rows, 'int32'),
            state['context_mask'], state['caches'], state['cross'])
        return logits.numpy(), {'caches': caches, 'cross': cross,
                                'context_mask': context_mask, 't': state['t'] + 1}

    def cache_bytes(self, batch_size, length):
        return _cache_bytes(self, batch_size, length)


def _cache_bytes(cache, batch_size, length):
    """Bytes of keys and values for ``batch_size`` rows of ``length`` positions."""
    itemsize = np.dtype(K.floatx()).itemsize
    return int(batch_size * length * cache.heads * (cache.key_size + cache.head_size)
               * itemsize * len(cache.layers))
