"""The cached runner of BERT-family models (BERT, RoBERTa, ALBERT, ELECTRA
with an MLM head) as UniLM seq2seq or GPT-style language models.

The model's own layers (embeddings, dense, feed-forward, layer norms, output
head) do the arithmetic; only attention over the cache is ours
(``attention``), and, for steps of up to ``speed.FEW_ROWS`` rows on CPU, the
dense products read kernel copies (``speed.KernelCopies``).

Public API:
    BertRunner(model, lm, precision='float32'): see ``runner`` for the protocol.
    bert_runner(model, lm, precision='float32'): the shared one of a model.
    apply_feed_forward(layer, x, dense): bert4keras' FeedForward, its Dense
        layers applied by ``dense``; feed_forward_dense(layer): those layers.
"""
import numpy as np

from bert4keras_blog.compat import K, internals, tf
from bert4keras_blog.decoding import slots, speed
from bert4keras_blog.decoding.attention import (
    apply_layer, live_columns, masked_attention, split_heads)
from bert4keras_blog.decoding.runner import CachedRunner, keras_model, layer_blocks, \
    shared_runner
from bert4keras_blog.errors import BlogError

__all__ = ['BertRunner', 'bert_runner', 'apply_feed_forward', 'feed_forward_dense']


def bert_runner(model, lm, precision='float32'):
    """The one ``BertRunner`` of ``model`` (a Keras model or bert4keras object)."""
    return shared_runner(BertRunner, keras_model(model), lm, precision)


def feed_forward_dense(layer):
    """The Dense layers of bert4keras' FeedForward: its inputs', then its output's."""
    return [getattr(layer, 'i%d_dense' % i) for i in range(len(layer.activation))] + \
        [layer.o_dense]


def apply_feed_forward(layer, x, dense):
    """bert4keras' FeedForward with its Dense layers applied by ``dense``."""
    if dense is apply_layer:
        return layer(x)
    h = dense(layer.i0_dense, x)
    for i in range(1, len(layer.activation)):
        h = h * dense(getattr(layer, 'i%d_dense' % i), x)
    return dense(layer.o_dense, h)


class BertRunner(CachedRunner):
    """Cached forward pass of a BERT-family model with an MLM head; ``lm``:
    a language model (True) or UniLM (False)."""

    def __init__(self, model, lm, precision='float32'):
        if precision not in ('float32', 'bfloat16'):
            raise BlogError("precision must be 'float32' or 'bfloat16', not %r" % (precision,))
        self.lm = lm
        model = keras_model(model)
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
        self.max_position = int(self.position.input_dim)
        self.embedding_norm = get('Embedding-Norm')
        self.mapping = get('Embedding-Mapping') if 'Embedding-Mapping' in names else None
        parts = ('MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
                 'FeedForward', 'FeedForward-Norm')
        if 'Transformer-MultiHeadSelfAttention' in names:  # ALBERT: one shared block
            shared = [tuple(get('Transformer-' + part) for part in parts)]
            self.layers = shared * internals.call_count(shared[0][0])
        else:
            self.layers = layer_blocks(model, 'Transformer-%d-', parts)
        self.use_sizes_of(self.layers[0][0])
        self.mlm = [get('MLM-Dense'), get('MLM-Norm')]
        self.mlm_bias = get('MLM-Bias')
        self.vocab_size = int(self.token.input_dim)
        dense = list({id(layer): layer for layer in self._dense_layers()}.values())
        if precision == 'bfloat16':
            self.copies = speed.KernelCopies(dense, tf.bfloat16)
        elif speed.enabled() and 'CPU' in self.token.embeddings.device.upper():
            self.copies = speed.KernelCopies(dense)
        else:
            self.copies = None
        int_matrix = tf.TensorSpec([None, None], tf.int32)
        int_vector = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None, None], K.floatx())
        self.prefill = tf.function(self._prefill, input_signature=[
            int_vector, int_vector, int_matrix, table])
        rest = [table, int_vector, int_vector, int_vector, int_vector,
                tf.TensorSpec([], tf.int32), int_vector, int_vector]
        caches = self.attention.cache_specs(len(self.layers))
        self.step = tf.function(self._step, input_signature=[caches, []] + rest)
        self.step_on_copies = tf.function(self._step, input_signature=[
            caches, [self.copies.spec()] * len(dense)] + rest) \
            if self.copies is not None else None

    def _dense_layers(self):
        """The Dense layers a step multiplies by, block by block, then the head's."""
        for attention, _, feed_forward, _ in self.layers:
            yield from (attention.q_dense, attention.k_dense, attention.v_dense,
                        attention.o_dense)
            yield from feed_forward_dense(feed_forward)
        yield self.mlm[0]

    def _embed(self, token_ids, segment_ids, positions, table):
        x = tf.gather(table, token_ids)  # the token embeddings (see ``table``)
        if self.segment is not None:
            x = x + self.segment(segment_ids)
        x = x + tf.gather(self.position.embeddings, positions)
        x = self.embedding_norm(x)
        return self.mapping(x) if self.mapping is not None else x

    def _block(self, x, layer, attend, dense=apply_layer):
        attention, attention_norm, feed_forward, feed_forward_norm = layer
        x = attention_norm(x + attend(attention, x))
        return feed_forward_norm(x + apply_feed_forward(feed_forward, x, dense))

    def _head(self, x, table, dense=apply_layer):
        """The MLM head on x (b, hidden); ``table``: the token embeddings."""
        mlm_dense, mlm_norm = self.mlm
        return self.mlm_bias(speed.times_transposed(mlm_norm(dense(mlm_dense, x)), table))

    def table(self):
        """The token embeddings, taken once per search (``speed.weights_read``): the
        tied output layer reads all of them at every step."""
        return speed.weights_read(self.token.embeddings)

    def _prefill(self, token_ids, segment_ids, grid, table):
        """Prompts packed end to end (token_ids, segment_ids: (n,), no
        padding) -> logits at each prompt's last token, keys/values (b,
        heads, width, size) per layer. ``grid`` (b, width): where each
        token sits once the prompts are left-padded to a common width (n
        for a padding cell). Dense layers see only real tokens (padding is
        an eighth of the work for prompts of 48-64 tokens); only attention
        works on the padded grid."""
        n = tf.shape(token_ids)[0]
        b, width = tf.shape(grid)[0], tf.shape(grid)[1]
        real = grid < n  # (b, width)
        starts = width - tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        padded_cells = tf.cast(tf.where(tf.reshape(real, [-1]))[:, 0], tf.int32)  # (n,)
        positions = padded_cells % width - tf.gather(starts, padded_cells // width)
        x = self._embed(token_ids, segment_ids, positions, table)
        columns = tf.range(width)
        if self.lm:
            allowed = (columns[None, :] <= columns[:, None])[None]  # (1, j, k)
        else:  # UniLM: attend within the same or an earlier segment block
            idxs = tf.cumsum(self._on_grid(segment_ids[:, None], grid)[..., 0], axis=1)
            allowed = idxs[:, None, :] <= idxs[:, :, None]
        mask = tf.logical_and(allowed, real[:, None, :])
        caches = []

        def attend(attention, x):
            q, k, v = [split_heads(self._on_grid(dense(x), grid), self.attention.heads, size)
                       for dense, size in ((attention.q_dense, self.attention.key_size),
                                           (attention.k_dense, self.attention.key_size),
                                           (attention.v_dense, self.attention.head_size))]
            caches.extend([k, v])
            o = masked_attention(q, k, v, mask, self.attention.scale)  # (b, width, heads * size)
            return attention.o_dense(tf.gather(tf.reshape(o, [b * width, -1]), padded_cells))
        for layer in self.layers:
            x = self._block(x, layer, attend)
        return self._head(tf.gather(x, grid[:, -1]), table), caches  # each prompt's last token

    @staticmethod
    def _on_grid(x, grid):
        """Packed rows x (n, d) -> (b, width, d) on the padded grid, zeros in padding."""
        return tf.gather(tf.concat([x, tf.zeros_like(x[:1])], 0), grid)

    def _step(self, caches, kernels, table, tokens, positions, segments, start, t, sources,
              targets):
        """One token per slot. ``kernels``: copies of the dense kernels
        (``speed.KernelCopies``), or none to use the layers as they are."""
        dense = self.copies.dense(kernels) if kernels else apply_layer
        caches = self.copy_graph(caches, sources, targets)
        x = self._embed(tokens, segments, positions, table)
        mask = live_columns(start, t, tf.shape(caches[0])[2])
        for i, layer in enumerate(self.layers):
            x = self._block(x, layer, lambda attention, x: self.attention.step(
                attention, x, caches, i, t, mask, dense=dense), dense)
        return self._head(x, table, dense), caches

    def run_step(self, state, fed):
        if state.position[state.rows].max(initial=0) >= self.max_position:
            raise BlogError('the sequence is longer than the model\'s %d positions'
                            % self.max_position)
        kernels = state.kernels if self.copies and self.copies.serves(state.slots) else []
        logits, state.self_kv = self.call_step(
            self.step_on_copies if kernels else self.step, state.self_kv, kernels,
            state.table, fed, state.position, state.segment, state.start, np.int32(state.t),
            *state.take_copies())
        return logits

    def start(self, batch, width=None, new_tokens=1, rows=None):
        """Prefills ``batch`` (``[token_ids]`` or ``[token_ids, segment_ids]``
        per input); ``width``: the longest prompt that will ever be admitted;
        ``new_tokens``: how many tokens the search may add to a row;
        ``rows``: the most rows it will hold (``runner``)."""
        width = max(width or 0, max(len(np.asarray(item[0]).reshape(-1)) for item in batch))
        state = self.new_state(slots.slot_bucket(max(len(batch), rows or 0)),
                               slots.first_length(width, new_tokens), width)
        state.table = self.table()
        state.kernels = []
        if self.copies is not None:
            if self.copies.serves(state.slots):
                state.kernels = self.copies.current()
            else:  # a float32 batch of more slots: the copies would only hold memory
                self.copies.drop()
        return self.admit(state, batch), state

    def admit(self, state, batch):
        """Prefills new inputs into free slots; their rows follow the others."""
        token_ids = [np.asarray(item[0]).reshape(-1) for item in batch]
        if self.lm:
            segment_ids = [np.zeros_like(t) for t in token_ids]
        else:
            segment_ids = [np.asarray(item[1]).reshape(-1) for item in batch]
        lengths = np.array([len(t) for t in token_ids], 'int32')
        width = int(lengths.max())
        if width > state.t:
            raise BlogError('a prompt of %d tokens is longer than the %d this search '
                            'was started for' % (width, state.t))
        slots.make_room(state, len(state.rows) + len(batch))
        free = state.free_slots()[:len(batch)]
        logits, caches = self.prefill(np.concatenate(token_ids).astype('int32'),
                                      np.concatenate(segment_ids).astype('int32'),
                                      slots.packed_grid(lengths, width), state.table)
        state.self_kv = self.write(state.self_kv, caches, free.astype('int32'),
                                    np.int32(state.t))
        state.start[free] = state.t - lengths
        state.position[free] = lengths
        state.segment[free] = 0 if self.lm else 1
        state.rows = np.concatenate([state.rows, free])
        return logits.numpy()
