"""The cached runner of T5 v1.1 / mT5 decoders: the encoder and the
cross-attention keys/values once per input, the decoder's self-attention
cached.

Public API:
    T5Runner(t5, precision='float32'): see ``runner`` for the protocol;
        ``start`` also takes the decoder's first token, ``start(batch,
        width=None, new_tokens=1, start_id=0, rows=None)``.
    t5_runner(t5, precision='float32'): the shared one of a bert4keras T5 object.

Steps of at most ``speed.COMPILED_SLOTS`` slots (float32; bfloat16: one)
run as one XLA program, with the speed-ups on; larger ones op by op, in
place. ``precision='bfloat16'``: every step's products, the output layer's included, on
bfloat16 copies of the kernels (``speed.KernelCopies``); the encoder and
the first step stay float32.
"""
import functools

import numpy as np

from bert4keras_blog.compat import K, internals, tf
from bert4keras_blog.decoding import slots, speed
from bert4keras_blog.decoding.attention import apply_layer, live_columns, masked_attention
from bert4keras_blog.decoding.bert import apply_feed_forward, feed_forward_dense
from bert4keras_blog.decoding.runner import CachedRunner, layer_blocks, shared_runner
from bert4keras_blog.errors import BlogError

__all__ = ['T5Runner', 't5_runner']


def t5_runner(t5, precision='float32'):
    """The one ``T5Runner`` of a bert4keras T5 object and precision."""
    return shared_runner(T5Runner, t5, precision)


class T5Runner(CachedRunner):
    """Encoder once; decoder self-attention cached; cross K/V computed once."""

    def __init__(self, t5, precision='float32'):
        if precision not in ('float32', 'bfloat16'):
            raise BlogError("precision must be 'float32' or 'bfloat16', not %r" % (precision,))
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
        self.copies = speed.KernelCopies(list(self._dense_layers()), tf.bfloat16) \
            if precision == 'bfloat16' else None
        int_vector = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None, None], K.floatx())
        n = len(self.layers)
        extra = self.attention.cache_specs(n) + [tf.TensorSpec([None, 1, None, 1], K.floatx())]
        self.write_extra = tf.function(self.write_graph, input_signature=[  # as ``write``
            extra, extra, int_vector, tf.TensorSpec([], tf.int32)])
        # Steps read ``extra`` and never return it (a compiled step would
        # copy all of it); it is copied here, in place, between the slots
        # of different inputs only: a beam's rows share their input's.
        self.copy_extra = tf.function(lambda extra, sources, targets: self.copy_graph(
            extra, sources, targets), input_signature=[extra, int_vector, int_vector])
        self.prefill = tf.function(self._prefill, input_signature=[
            tf.TensorSpec([None, None], tf.int32), int_vector, table])
        kernels = [self.copies.spec()] * len(self.copies.layers) if self.copies else []
        step_signature = [self.attention.cache_specs(n), extra, table, kernels, int_vector,
                          int_vector, tf.TensorSpec([], tf.int32), int_vector, int_vector]
        self.step = tf.function(functools.partial(self._step, True), input_signature=step_signature)
        # Steps of few slots, one XLA program each: a few hundred small
        # kernels fused into fewer, dispatched once (docs/decoding.md).
        # bfloat16 only at one slot: at more, XLA's bfloat16 products were
        # slower than TensorFlow's own (0.79 s against 0.36, beam 3).
        self.compiled_slots = speed.COMPILED_SLOTS if precision == 'float32' else 1
        self.compiled_step = tf.function(
            functools.partial(self._step, False), input_signature=step_signature,
            jit_compile=True) if speed.enabled() else None

    def _dense_layers(self):
        """The Dense layers a step multiplies by, then the output layer (if untied)."""
        for self_att, _, _, cross_att, _, ffn in self.layers:
            yield from (self_att.q_dense, self_att.k_dense, self_att.v_dense, self_att.o_dense,
                        cross_att.q_dense, cross_att.o_dense)
            yield from feed_forward_dense(ffn)
        if self.output_lm is not None:
            yield self.output_lm

    def _decode(self, x, self_attend, cross, context_mask, table, dense=apply_layer):
        """The decoder blocks on x (b, d_model) of one token per row;
        cross = [(k, v)] per layer; context_mask (b, 1, encoder width);
        ``dense(layer, x)`` applies the products."""
        for i, (self_att, n1, n2, cross_att, n3, ffn) in enumerate(self.layers):
            x = x + self_attend(i, self_att, n1(x))
            k, v = cross[i]
            a = self.attention
            q = tf.reshape(dense(cross_att.q_dense, n2(x)), [-1, a.heads, 1, a.key_size])
            x = x + dense(cross_att.o_dense,
                          masked_attention(q, k, v, context_mask, a.scale)[:, 0])
            x = x + apply_feed_forward(ffn, n3(x), dense)
        x = self.output_scale(self.output_norm(x))
        if self.output_lm is None:
            return speed.times_transposed(x, table)
        if dense is apply_layer:
            return tf.matmul(x, table)
        return dense(self.output_lm, x, activate=False)  # the product; no softmax

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

    def _step(self, in_place, caches, extra, table, kernels, tokens, start, t, sources, targets):
        n = len(self.layers)
        dense = self.copies.dense(kernels) if kernels else apply_layer
        caches = self.copy_graph(list(caches), sources, targets, in_place)
        length = tf.shape(caches[0])[2]
        offsets = tf.clip_by_value(self.distances - 1 + tf.range(length) - t, 0,
                                   self.distances - 1)
        bias = tf.gather(self.position_bias, offsets, axis=1)[None, :, None]  # (1, h, 1, L)
        mask = live_columns(start, t, length)
        cross = [(extra[2 * i], extra[2 * i + 1]) for i in range(n)]
        context_mask = tf.cast(extra[2 * n][:, :, :, 0], tf.bool)  # (s, 1, width)

        def self_attend(i, attention, x):
            return self.attention.step(attention, x, caches, i, t, mask, bias, dense,
                                       in_place)
        return self._decode(self._embed(tokens, table), self_attend, cross, context_mask,
                             table, dense), caches

    def run_step(self, state, fed):
        step = self.compiled_step if self.compiled_step is not None and \
            state.slots <= self.compiled_slots else self.step
        sources, targets = state.take_copies()
        moved = state.extra_copies(sources, targets)
        if len(moved[0]):
            state.extra = self.call_step(self.copy_extra, state.extra, *moved)
        logits, state.self_kv = self.call_step(
            step, state.self_kv, state.extra, state.table, state.kernels, fed, state.start,
            np.int32(state.t), sources, targets)
        return logits

    def extra_shapes(self, width):
        a = self.attention
        return [(a.heads, width, a.key_size), (a.heads, width, a.head_size)] * \
            len(self.layers) + [(1, width, 1)]

    def start(self, batch, width=None, new_tokens=1, start_id=0, rows=None):
        """Encodes ``batch`` ([encoder_ids] per input) and runs the decoder's
        first step on ``start_id``; ``width``: the longest encoder input that
        will ever be admitted; ``new_tokens``, ``rows``: as ``BertRunner.start``."""
        width = max(width or 0, max(len(np.asarray(item[0]).reshape(-1)) for item in batch))
        if self.compiled_step is not None:
            width = slots.column_bucket(width)  # one compiled step per bucket, not per length
        state = self.new_state(slots.slot_bucket(max(len(batch), rows or 0)),
                               slots.first_length(1, new_tokens), 1)
        state.start_id, state.encoder_width, state.table = start_id, width, self.table()
        state.kernels = self.copies.current() if self.copies is not None else []
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
        # numbers no slot holds (one of an input no slot holds any more may recur)
        state.extra_of[free] = state.extra_of.max(initial=-1) + 1 + np.arange(len(batch))
        state.start[free] = state.t - 1
        state.rows = np.concatenate([state.rows, free])
        return logits.numpy()
