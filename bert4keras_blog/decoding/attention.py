"""Attention over a key/value cache: the arithmetic a cached step adds to
the model's own layers.

A cache holds, per layer, keys and values of shape (slots, heads, length,
size). A step writes column ``t`` of every slot in place and attends over
the columns each slot may see.

Public API:
    CachedAttention(layer): the sizes of a bert4keras ``MultiHeadAttention``
        and its steps: keys_values(layer, x), query(layer, x),
        step(layer, x, caches, i, t, mask, bias=None, dense=apply_layer),
        cache_specs(n_pairs), cache_shapes(length, n_pairs).
    masked_attention(q, k, v, mask, scale, bias=None), split_heads(x, heads, size),
    update_rows(x, i, v, in_place=True), write_columns(cache, slots, end, values,
    in_place=True), live_columns(start, t, length),
    apply_layer(layer, x); NEG, the score of a masked column.
"""
from bert4keras_blog.compat import K, internals, tf

__all__ = ['CachedAttention', 'masked_attention', 'split_heads', 'update_rows', 'write_columns',
           'live_columns', 'apply_layer', 'NEG']

NEG = -1e12  # what bert4keras' attention masking amounts to after softmax


def apply_layer(layer, x):
    """``layer(x)``: how a step applies a dense layer unless told otherwise."""
    return layer(x)


def split_heads(x, heads, size):
    """(b, j, heads*size) -> (b, heads, j, size)."""
    shape = tf.shape(x)
    return tf.transpose(tf.reshape(x, [shape[0], shape[1], heads, size]), (0, 2, 1, 3))


def masked_attention(q, k, v, mask, scale, bias=None):
    """q (b, h, j, d), k/v (b, h, k, d), mask (b, j, k) bool -> (b, j, h*d)."""
    a = tf.matmul(q, k, transpose_b=True)
    if bias is not None:
        a = a + bias
    if scale:
        a = a / scale
    a = tf.where(mask[:, None], a, NEG)
    o = tf.transpose(tf.matmul(tf.nn.softmax(a, axis=-1), v), (0, 2, 1, 3))
    shape = tf.shape(o)
    return tf.reshape(o, [shape[0], shape[1], shape[2] * shape[3]])


def update_rows(x, i, v, in_place=True):
    """Rows ``i`` of the 2-D tensor ``x`` set to ``v``: in x's own buffer,
    or (``in_place=False``) as a scatter into a copy, which XLA compiles
    (it has no in-place op; a compiled step copies its small caches)."""
    if in_place:
        return internals.inplace_update(x, i, v)
    return tf.tensor_scatter_nd_update(x, i[:, None], v)


def write_columns(cache, slots, end, values, in_place=True):
    """Writes ``values`` (n, heads, width, size) into slots ``slots`` of
    ``cache`` (slots, heads, length, size), in the columns just before
    ``end``, in place (see ``update_rows``), and returns ``cache``.

    In place on purpose (``internals.inplace_update``): the state's tensor
    is held by nothing else. A tf.Variable would do it too, but a partial
    assignment switches a variable to copying all of itself on every later
    read, and so would a copy of the whole cache per step and layer.
    """
    shape = tf.shape(cache)
    heads, length, size = shape[1], shape[2], shape[3]
    width = tf.shape(values)[2]
    columns = end - width + tf.range(width)  # a range over shapes only: XLA compiles it once
    rows = (slots[:, None, None] * heads + tf.range(heads)[None, :, None]) * length + \
        columns[None, None, :]
    flat = update_rows(tf.reshape(cache, [-1, size]), tf.reshape(rows, [-1]),
                       tf.reshape(values, [-1, size]), in_place)
    return tf.reshape(flat, shape)


def live_columns(start, t, length):
    """(s, 1, length) bool: the columns each slot attends to at column t."""
    columns = tf.range(length)
    return ((columns[None] >= start[:, None]) & (columns[None] <= t))[:, None]


class CachedAttention(object):
    """The sizes of a model's attention layers, and its cached step."""

    def __init__(self, layer):
        self.heads, self.key_size, self.head_size = layer.heads, layer.key_size, layer.head_size
        self.scale = layer.key_size ** 0.5 if layer.attention_scale else None

    def keys_values(self, layer, x):
        return (split_heads(layer.k_dense(x), self.heads, self.key_size),
                split_heads(layer.v_dense(x), self.heads, self.head_size))

    def query(self, layer, x):
        return split_heads(layer.q_dense(x), self.heads, self.key_size)

    def step(self, layer, x, caches, i, t, mask, bias=None, dense=apply_layer, in_place=True):
        """One token per slot: writes its key and value at column ``t`` of
        the slot (``caches[2i]``, ``caches[2i + 1]``, replaced by the
        written ones), then attends over the slot's columns. x (s, hidden);
        ``dense(layer, x)`` applies the projections; ``in_place``: as
        ``update_rows``."""
        def heads(projection, size):
            return tf.reshape(dense(projection, x), [-1, self.heads, 1, size])
        slots = tf.range(tf.shape(x)[0])
        k = caches[2 * i] = write_columns(caches[2 * i], slots, t + 1,
                                          heads(layer.k_dense, self.key_size), in_place)
        v = caches[2 * i + 1] = write_columns(caches[2 * i + 1], slots, t + 1,
                                              heads(layer.v_dense, self.head_size), in_place)
        q = heads(layer.q_dense, self.key_size)
        return dense(layer.o_dense, masked_attention(q, k, v, mask, self.scale, bias)[:, 0])

    def cache_specs(self, n_pairs):
        """TensorSpecs of ``n_pairs`` (keys, values) caches: one trace for
        every slot and column count."""
        return [tf.TensorSpec([None, self.heads, None, self.key_size], K.floatx()),
                tf.TensorSpec([None, self.heads, None, self.head_size], K.floatx())] * n_pairs

    def cache_shapes(self, length, n_pairs):
        """Per-slot shapes of ``n_pairs`` (keys, values) caches ``length`` long."""
        return [(self.heads, length, self.key_size), (self.heads, length, self.head_size)] * \
            n_pairs
