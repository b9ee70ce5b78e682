"""The cached runner of T5 v1.1 / mT5 decoders: the encoder and the
cross-attention keys/values once per input, the decoder's self-attention
cached.

Public API:
    T5Runner(t5): see ``runner`` for the protocol; ``start`` also takes the
        decoder's first token, ``start(batch, width=None, new_tokens=1,
        start_id=0)``.
    t5_runner(t5): the shared one of a bert4keras T5 object.
"""
import numpy as np

from bert4keras_blog.compat import K, internals, tf
from bert4keras_blog.decoding import slots, speed
from bert4keras_blog.decoding.attention import live_columns, masked_attention
from bert4keras_blog.decoding.runner import CachedRunner, layer_blocks, shared_runner
from bert4keras_blog.errors import BlogError

__all__ = ['T5Runner', 't5_runner']


def t5_runner(t5):
    """The one ``T5Runner`` of a bert4keras T5 object."""
    return shared_runner(T5Runner, t5)


class T5Runner(CachedRunner):
    """Encoder once; decoder self-attention cached; cross K/V computed once."""

    def __init__(self, t5):
        if internals.t5_decoder(t5).cross_position_bias:
            raise BlogError('T5Decoder follows mesh TensorFlow: build the model without '
                            'cross_position_bias (the default once bert4keras_blog is imported)')
        self.encoder = t5.encoder
        get = t5.decoder.get_layer
        names = {layer.name for layer in t5.decoder.layers}
        self.token = get('Embedding-Token')
        self.mapping = get('Decoder-Embedding-Mapping') \
            if 'Decoder-Embedding-Mapping' in names else None
        self.layers = layer_blocks(t5.decoder, 'Decoder-Transformer-%d-', (
            'MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
            'MultiHeadCrossAttention-Norm', 'MultiHeadCrossAttention',
            'FeedForward-Norm', 'FeedForward'))
        self.use_sizes_of(self.layers[0][0])
        self.output_norm = get('Decoder-Output-Norm')
        self.output_scale = get('Decoder-Output-Scale')
        self.output_lm = get('Decoder-Output-LM') if 'Decoder-Output-LM' in names else None
        self.vocab_size = int(self.token.input_dim)
        # The decoder's bias depends only on key - query <= 0; beyond 256
        # back every bucket is the last one (T5's max_distance is 128).
        self.distances = 256
        self.position_bias = internals.relative_position_bias(
            get('Decoder-Embedding-Relative-Position'), self.distances)[:, -1]  # (h, offsets)
        int_vector = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None, None], K.floatx())
        n = len(self.layers)
        extra = self.attention.cache_specs(n) + [tf.TensorSpec([None, 1, None, 1], K.floatx())]
        self.write_extra = tf.function(self.write_graph, input_signature=[  # as ``write``
            extra, extra, int_vector, tf.TensorSpec([], tf.int32)])
        self.prefill = tf.function(self._prefill, input_signature=[
            tf.TensorSpec([None, None], tf.int32), int_vector, table])
        self.step = tf.function(self._step, input_signature=[
            self.attention.cache_specs(n), extra,
            table, int_vector, int_vector, tf.TensorSpec([], tf.int32), int_vector, int_vector])

    def _decode(self, x, self_attend, cross, context_mask, table):
        """The decoder blocks on x (b, d_model) of one token per row;
        cross = [(k, v)] per layer; context_mask (b, 1, encoder width)."""
        for i, (self_att, n1, n2, cross_att, n3, ffn) in enumerate(self.layers):
            x = x + self_attend(i, self_att, n1(x))
            k, v = cross[i]
            a = self.attention
            q = tf.reshape(cross_att.q_dense(n2(x)), [-1, a.heads, 1, a.key_size])
            x = x + cross_att.o_dense(masked_attention(q, k, v, context_mask, a.scale)[:, 0])
            x = x + ffn(n3(x))
        x = self.output_scale(self.output_norm(x))
        return speed.times_transposed(x, table) if self.output_lm is None else tf.matmul(x, table)

    def table(self):
        """The output layer's weights, taken once per search (``speed.weights_read``;
        a tied layer is the token embeddings)."""
        return speed.weights_read(self.token.embeddings if self.output_lm is None
                         else self.output_lm.kernel)

    def _embed(self, tokens, table):
        x = tf.gather(table, tokens) if self.output_lm is None else self.token(tokens)
        return self.mapping(x) if self.mapping is not None else x

    def _prefill(self, encoder_ids, start_tokens, table):
        """Encoder, cross keys/values, and the decoder's first step (its
        self-attention sees only itself). Returns logits, [self k, v per
        layer], [cross k, v per layer], the encoder mask."""
        context = self.encoder(encoder_ids)
        context_mask = (encoder_ids != 0)[:, None]
        cross = [self.attention.keys_values(layer[3], context) for layer in self.layers]
        caches = []
        bias = self.position_bias[None, :, None, -1:]

        def self_attend(i, attention, x):
            x = x[:, None]
            k, v = self.attention.keys_values(attention, x)
            caches.extend([k, v])
            return attention.o_dense(masked_attention(self.attention.query(attention, x), k, v,
                                             tf.ones_like(x[:, :, :1], tf.bool), None,
                                             bias)[:, 0])
        logits = self._decode(self._embed(start_tokens, table), self_attend, cross, context_mask,
                               table)
        return logits, caches, [t for kv in cross for t in kv], tf.cast(context_mask[:, 0],
                                                                       K.floatx())

    def _step(self, caches, extra, table, tokens, start, t, sources, targets):
        n = len(self.layers)
        copied = self.copy_graph(list(caches) + list(extra), sources, targets)
        caches, extra = copied[:len(caches)], copied[len(caches):]
        length = tf.shape(caches[0])[2]
        offsets = tf.clip_by_value(self.distances - 1 + tf.range(length) - t, 0,
                                   self.distances - 1)
        bias = tf.gather(self.position_bias, offsets, axis=1)[None, :, None]  # (1, h, 1, L)
        mask = live_columns(start, t, length)
        cross = [(extra[2 * i], extra[2 * i + 1]) for i in range(n)]
        context_mask = tf.cast(extra[2 * n][:, :, :, 0], tf.bool)  # (s, 1, width)

        def self_attend(i, attention, x):
            return self.attention.step(attention, x, caches, i, t, mask, bias)
        return self._decode(self._embed(tokens, table), self_attend, cross, context_mask,
                             table), caches, extra

    def run_step(self, state, fed):
        logits, state.self_kv, state.extra = self.call_step(
            self.step, state.self_kv, state.extra, state.table, fed, state.start,
            np.int32(state.t), *state.take_copies())
        return logits

    def extra_shapes(self, width):
        a = self.attention
        return [(a.heads, width, a.key_size), (a.heads, width, a.head_size)] * \
            len(self.layers) + [(1, width, 1)]

    def start(self, batch, width=None, new_tokens=1, start_id=0):
        """Encodes ``batch`` ([encoder_ids] per input) and runs the decoder's
        first step on ``start_id``; ``width``: the longest encoder input that
        will ever be admitted; ``new_tokens``: as ``BertRunner.start``."""
        width = max(width or 0, max(len(np.asarray(item[0]).reshape(-1)) for item in batch))
        state = self.new_state(slots.slot_bucket(len(batch)),
                               slots.first_length(1, new_tokens), 1)
        state.start_id, state.encoder_width, state.table = start_id, width, self.table()
        state.extra = self.zeros(state.slots, self.extra_shapes(width))
        return self.admit(state, batch), state

    def admit(self, state, batch):
        """Encodes new inputs into free slots; their rows follow the others."""
        ids = [np.asarray(item[0]).reshape(-1) for item in batch]
        width = state.encoder_width
        if max(len(s) for s in ids) > width:
            raise BlogError('an input of %d tokens is longer than the %d this search '
                            'was started for' % (max(len(s) for s in ids), width))
        slots.make_room(state, len(state.rows) + len(batch))
        free = state.free_slots()[:len(batch)].astype('int32')
        encoder_ids = np.array([np.pad(s, (0, width - len(s))) for s in ids], 'int32')
        logits, caches, cross, context_mask = self.prefill(
            encoder_ids, np.full(len(batch), state.start_id, 'int32'), state.table)
        state.self_kv = self.write(state.self_kv, caches, free, np.int32(state.t))
        state.extra = self.write_extra(state.extra, cross + [context_mask[:, None, :, None]],
                                        free, np.int32(width))
        state.start[free] = state.t - 1
        state.rows = np.concatenate([state.rows, free])
        return logits.numpy()
