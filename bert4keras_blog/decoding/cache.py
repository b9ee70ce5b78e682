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
from bert4keras_blog.internals import call_count, relative_position_bias, t5_decoder

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


class _CachedModel(object):
    """What both caches share: the attention sizes, the lookup of numbered
    blocks, and one attention step over cached keys and values."""

    def _blocks(self, model, prefix, parts):
        """[(layer per part) for block 0, 1, ...] named ``prefix % i + part``."""
        names = {layer.name for layer in model.layers}
        blocks = []
        while prefix % len(blocks) + parts[0] in names:
            blocks.append(tuple(model.get_layer(prefix % len(blocks) + part) for part in parts))
        return blocks

    def _use_sizes_of(self, attention):
        self.heads, self.key_size, self.head_size = \
            attention.heads, attention.key_size, attention.head_size
        self.scale = attention.key_size ** 0.5 if attention.attention_scale else None

    def _cache_specs(self):
        """TensorSpecs of one block's (keys, values) cache."""
        return [tf.TensorSpec([None, None, self.heads, self.key_size], K.floatx()),
                tf.TensorSpec([None, None, self.heads, self.head_size], K.floatx())]

    def _keys_values(self, attention, x):
        return (_split_heads(attention.k_dense(x), self.heads, self.key_size),
                _split_heads(attention.v_dense(x), self.heads, self.head_size))

    def _attend_to(self, attention, x, k, v, mask, bias=None):
        q = _split_heads(attention.q_dense(x), self.heads, self.key_size)
        return attention.o_dense(_attend(q, k, v, mask, self.scale, bias))

    def _self_attention(self, attention, x, k_cache, v_cache, mask, bias=None):
        """x attends to the cache and to itself; returns (output, keys, values)."""
        k, v = self._keys_values(attention, x)
        if k_cache is not None:
            k, v = tf.concat([k_cache, k], 1), tf.concat([v_cache, v], 1)
        return self._attend_to(attention, x, k, v, mask, bias), k, v

    def cache_bytes(self, batch_size, length):
        """Bytes of keys and values for ``batch_size`` rows of ``length`` positions."""
        itemsize = np.dtype(K.floatx()).itemsize
        return int(batch_size * length * self.heads * (self.key_size + self.head_size)
                   * itemsize * len(self.layers))


# ------------------------------------------------------------ BERT family

class BertCache(_CachedModel):
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
        parts = ('MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
                 'FeedForward', 'FeedForward-Norm')
        if 'Transformer-MultiHeadSelfAttention' in names:  # ALBERT: one shared block
            shared = self._blocks(model, 'Transformer-', parts)
            self.layers = shared * call_count(shared[0][0])
        else:
            self.layers = self._blocks(model, 'Transformer-%d-', parts)
        self._use_sizes_of(self.layers[0][0])
        self.mlm = [get('MLM-Dense'), get('MLM-Norm')]
        self.mlm_bias = get('MLM-Bias')
        self.vocab_size = int(self.token.input_dim)
        caches_spec = self._cache_specs() * len(self.layers)
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
        o, k, v = self._self_attention(attention, x, k_cache, v_cache, mask)
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


# ------------------------------------------------------------------ T5

class T5Cache(_CachedModel):
    """Encoder once; decoder self-attention cached; cross K/V computed once."""

    def __init__(self, t5, max_steps):
        if t5_decoder(t5).cross_position_bias:
            raise BlogError('T5Decoder follows mesh TensorFlow: build the model without '
                            'cross_position_bias (the default once bert4keras_blog is imported)')
        self.encoder = t5.encoder
        get = t5.decoder.get_layer
        names = {layer.name for layer in t5.decoder.layers}
        self.token = get('Embedding-Token')
        self.mapping = get('Decoder-Embedding-Mapping') \
            if 'Decoder-Embedding-Mapping' in names else None
        self.layers = self._blocks(t5.decoder, 'Decoder-Transformer-%d-', (
            'MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
            'MultiHeadCrossAttention-Norm', 'MultiHeadCrossAttention',
            'FeedForward-Norm', 'FeedForward'))
        self._use_sizes_of(self.layers[0][0])
        self.output_norm = get('Decoder-Output-Norm')
        self.output_scale = get('Decoder-Output-Scale')
        self.output_lm = get('Decoder-Output-LM') if 'Decoder-Output-LM' in names else None
        self.vocab_size = int(self.token.input_dim)
        # Relative position bias of every (query, key) pair up to max_steps.
        self.position_bias = relative_position_bias(
            get('Decoder-Embedding-Relative-Position'), max_steps + 1)  # (h, q, k)
        self.max_steps = max_steps
        n = len(self.layers)
        kv_specs = self._cache_specs()
        int_vector = tf.TensorSpec([None], tf.int32)
        self.prefill = tf.function(self._prefill, input_signature=[
            tf.TensorSpec([None, None], tf.int32)])
        self.step = tf.function(self._step, input_signature=[
            int_vector, tf.TensorSpec([], tf.int32), int_vector,
            tf.TensorSpec([None, None], tf.bool), kv_specs * n, kv_specs * n])

    def _prefill(self, encoder_ids):
        context = self.encoder(encoder_ids)
        cross = []
        for layer in self.layers:
            cross += self._keys_values(layer[3], context)
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
        for i, (self_att, n1, n2, cross_att, n3, ffn) in enumerate(self.layers):
            o, k, v = self._self_attention(self_att, n1(x), caches[2 * i], caches[2 * i + 1],
                                           self_mask, bias)
            x = x + o
            new += [k, v]
            x = x + self._attend_to(cross_att, n2(x), cross[2 * i], cross[2 * i + 1],
                                    context_mask[:, None])
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
