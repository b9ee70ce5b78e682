"""Cached forward passes: each prompt once, then one token per row per step.

Keys and values live in preallocated tensors of shape (slots, heads,
length, size), one pair per layer, updated in place: a step writes column
``t`` of every slot and reads the columns each slot may attend to. Every
slot's content ends at column ``t``, so prompts of different lengths sit
side by side (left-padded) and a slot freed by a finished row can take a
new prompt between two steps. A row that branches (a beam with several
children) is copied to a free slot; other rows keep their slot, so greedy
decoding and sampling never move the cache. The model's own layers
(embeddings, dense, feed-forward, layer norms, output head) do the
arithmetic; only attention over the cache is written here, and, for
steps of up to 16 rows on CPU, the dense products with copies of the
kernels in blocks (``_KernelCopies``). Each graph
(prefill, step, write, copy) is traced for the first shapes it meets and
once more for any others, not per step.

Public API (used by ``decoding.search`` and ``xiangqi.player``):
    BertCache(model, lm): UniLM (lm=False) or LM (lm=True) on BERT-family models.
    T5Cache(t5): T5 v1.1 / mT5 decoders; encoder and cross keys/values once.
    shared_cache(cls, model, *args): one cache (and its traced graphs) per model.
    reuse_freed_memory(): glibc keeps freed blocks for reuse (see its docstring).
    release_freed_memory(): gives them back when a search ends.
    cache.start(batch, width=None, new_tokens=1) -> (logits, state)
    cache.admit(state, batch) -> logits of the new rows (appended after the others)
    cache.advance(state, rows, tokens) -> (logits, state); ``rows[j]`` is the
        row that new row ``j`` continues.
"""
import ctypes
import ctypes.util
import functools
import os
import weakref

import numpy as np

from bert4keras_blog.compat import K, tf
from bert4keras_blog.errors import BlogError
from bert4keras_blog.compat.internals import call_count, relative_position_bias, t5_decoder

__all__ = ['BertCache', 'T5Cache', 'shared_cache', 'reuse_freed_memory', 'release_freed_memory']

_NEG = -1e12  # what bert4keras' attention masking amounts to after softmax
_COLUMNS = 16  # column counts are rounded up to a multiple of this
_PLANNED_STEPS = 64  # columns a search reserves at its start, at most, for its steps
_FEW_ROWS = 16  # float32 steps of at most this many slots read kernel copies (BERT, CPU)


def _slot_bucket(n):
    """Slot counts: powers of two up to 16, then multiples of 16."""
    return 1 << max(n - 1, 0).bit_length() if n <= 16 else -(-n // 16) * 16


def _column_bucket(n):
    return -(-n // _COLUMNS) * _COLUMNS


def _first_length(used, new_tokens):
    """Columns a search starts with: ``used`` now and one per token it may
    add, up to ``_PLANNED_STEPS`` (the buffers grow past that). Every step
    attends over all the columns, so fewer than the search needs would make
    it grow (a copy) and double, and many more would be read at every step
    of a search that ends early."""
    return _column_bucket(used + min(max(new_tokens, 1), _PLANNED_STEPS))


def _split_heads(x, heads, size):
    """(b, j, heads*size) -> (b, heads, j, size)."""
    shape = tf.shape(x)
    return tf.transpose(tf.reshape(x, [shape[0], shape[1], heads, size]), (0, 2, 1, 3))


def _attend(q, k, v, mask, scale, bias=None):
    """q (b, h, j, d), k/v (b, h, k, d), mask (b, j, k) bool -> (b, j, h*d)."""
    a = tf.matmul(q, k, transpose_b=True)
    if bias is not None:
        a = a + bias
    if scale:
        a = a / scale
    a = tf.where(mask[:, None], a, _NEG)
    o = tf.transpose(tf.matmul(tf.nn.softmax(a, axis=-1), v), (0, 2, 1, 3))
    shape = tf.shape(o)
    return tf.reshape(o, [shape[0], shape[1], shape[2] * shape[3]])


def _put(cache, slots, end, values):
    """Writes ``values`` (n, heads, width, size) into slots ``slots`` of
    ``cache`` (slots, heads, length, size), in the columns just before
    ``end``, in place, and returns ``cache``.

    In place on purpose: ``InplaceUpdate`` writes into its input's buffer
    (the state's tensor, which nothing else holds). A tf.Variable would do
    it too, but a partial assignment switches a variable to copying all of
    itself on every later read, and so would a copy of the whole cache per
    step and layer.
    """
    shape = tf.shape(cache)
    heads, length, size = shape[1], shape[2], shape[3]
    width = tf.shape(values)[2]
    columns = tf.range(end - width, end)
    rows = (slots[:, None, None] * heads + tf.range(heads)[None, :, None]) * length + \
        columns[None, None, :]
    flat = tf.raw_ops.InplaceUpdate(x=tf.reshape(cache, [-1, size]), i=tf.reshape(rows, [-1]),
                                    v=tf.reshape(values, [-1, size]))
    return tf.reshape(flat, shape)


@functools.lru_cache(maxsize=None)
def _libc():
    """glibc, looked up once (``find_library`` runs an external lookup)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    except OSError:
        return None


def reuse_freed_memory():
    """Asks glibc to serve large blocks from its heap and keep up to 512 MB
    of freed memory, so the per-step buffers of a search (logits, copied
    rows) reuse pages instead of mapping fresh ones and faulting them in
    (a third of a batch-16 beam search's time at base size). Process-wide,
    so it runs once when the first cached model is built; set
    ``BERT4KERAS_BLOG_MALLOC=default`` to leave malloc alone. Each search
    hands what it freed back when it ends (``release_freed_memory``)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get('BERT4KERAS_BLOG_MALLOC') == 'default':
        return
    libc = _libc()
    if libc is None or not hasattr(libc, 'mallopt'):  # not glibc: nothing to tune
        return
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    _MALLOC_TUNED = True


def release_freed_memory():
    """Returns the heap's free pages to the system (glibc ``malloc_trim``),
    so a process does not keep a finished search's buffers. Only after
    ``reuse_freed_memory`` has tuned malloc; returns whether it ran."""
    libc = _libc() if _MALLOC_TUNED else None
    if libc is None or not hasattr(libc, 'malloc_trim'):
        return False
    libc.malloc_trim(0)
    return True


_MALLOC_TUNED = False
_CACHES = weakref.WeakKeyDictionary()
_EAGER_TENSOR = type(tf.constant(0))


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


def _apply(layer, x):
    return layer(x)


def _buffer(tensor):
    """The address of a CPU tensor's data (numpy shares it)."""
    return np.asarray(tensor).ctypes.data


class _KernelCopies(object):
    """Copies of the dense kernels in the layout a step multiplies fastest,
    for the steps of a search (never the prompts).

    float32 (the default, on CPU): blocks of 32 output columns, (out/32,
    in, 32), one batched matmul per kernel (``_times_blocks``). From Keras'
    (in, out) layout oneDNN repacks the kernel on every call; from blocks
    it reads each one as it lies. The 73 products of a base-size step
    (microbenchmark, forms interleaved) take 13.8 against 17.2 ms at one
    row, 13.9 against 17.9 at 4 and 20.8 against 28.5 at 16; at 64 both
    take 54-56 ms, so steps of up to 16 slots use the copies. bfloat16
    (``precision``, an opt-in): (out, in), every step, multiplied as
    ``x kernel^T`` in bfloat16 (15-21 ms at 1-16 rows), at the cost of
    rounding (docs/decoding.md).

    The copies are kept between searches (building them takes 35 ms, or
    250 ms while the memory is new to the process), next to a snapshot of
    each kernel that shares the variable's buffer. A variable whose buffer
    is shared cannot be updated in place: any assignment, optimizer step
    or ``set_weights`` gives it a fresh buffer, so a search that finds a
    kernel in another buffer rebuilds the copies. While the model trains
    between searches, the snapshots hold the kernels' earlier buffers
    until the next search. ``drop`` frees both; a float32 search of more
    rows calls it."""

    def __init__(self, layers, dtype=None):
        self.layers = layers
        self.dtype = tf.as_dtype(dtype or K.floatx())
        self.blocked = self.dtype == K.floatx()
        self.rows = _FEW_ROWS if self.blocked else None  # None: every step
        self.index = {id(layer): i for i, layer in enumerate(layers)}
        self.snapshots = self.kernels = None
        self._copy = tf.function(_blocks if self.blocked else functools.partial(
            _transposed, dtype=self.dtype), autograph=False)

    def serves(self, slots):
        """Whether steps of ``slots`` slots use the copies."""
        return self.rows is None or slots <= self.rows

    def spec(self):
        """The copies' TensorSpec, for a step's signature."""
        return tf.TensorSpec([None] * (3 if self.blocked else 2), self.dtype)

    def current(self):
        """The copies, built again if any kernel was updated."""
        reads = [_snapshot(layer.kernel) for layer in self.layers]
        if self.snapshots is None or any(
                _buffer(a) != _buffer(b) for a, b in zip(reads, self.snapshots)):
            self.drop()
            self.kernels = self._copy(reads)
            self.snapshots = reads
        return self.kernels

    def drop(self):
        self.snapshots = self.kernels = None

    def dense(self, kernels):
        """``dense(layer, x)`` for a traced step: ``layer(x)``, with the
        kernel read from ``kernels``, the traced copies."""
        def apply(layer, x):
            kernel = kernels[self.index[id(layer)]]
            if self.blocked:
                y = _times_blocks(x, kernel)
            else:
                y = tf.cast(tf.matmul(tf.cast(x, self.dtype), kernel, transpose_b=True), x.dtype)
            if layer.use_bias:
                y = tf.nn.bias_add(y, layer.bias)
            return layer.activation(y)
        return apply


def _transposed(kernels, dtype):
    return [tf.cast(tf.transpose(kernel), dtype) for kernel in kernels]


def _blocks(kernels):
    """(in, out) kernels -> (out/b, in, b): blocks of ``b`` output columns,
    ``b`` the largest of 32, 16, ..., 1 that divides ``out``."""
    copies = []
    for kernel in kernels:
        size_in, size_out = kernel.shape
        block = next(b for b in (32, 16, 8, 4, 2, 1) if size_out % b == 0)
        copies.append(tf.transpose(tf.reshape(kernel, [size_in, size_out // block, block]),
                                   (1, 0, 2)))
    return copies


def _times_blocks(x, blocks):
    """x (rows, in) @ the kernel whose (out/b, in, b) blocks are ``blocks``."""
    y = tf.matmul(x[None], blocks)  # (out/b, rows, b)
    return tf.reshape(tf.transpose(y, (1, 0, 2)), [tf.shape(x)[0], -1])


def _feed_forward(layer, x, dense):
    """bert4keras' FeedForward with its Dense layers applied by ``dense``."""
    if dense is _apply:
        return layer(x)
    h = dense(layer.i0_dense, x)
    for i in range(1, len(layer.activation)):
        h = h * dense(getattr(layer, 'i%d_dense' % i), x)
    return dense(layer.o_dense, h)


class _State(object):
    """One search's caches and bookkeeping.

    ``self_kv``: per layer (keys, values) tensors (slots, heads, length, size);
    ``extra``: per-slot tensors a model keeps besides (T5: cross keys/values
    and the encoder mask); ``rows``: the slot of each row, in order;
    ``start``: each slot's first live column; ``t``: the next column.
    """

    def __init__(self, slots, length, t):
        self.slots, self.length, self.t = slots, length, t
        self.reserve = t  # columns kept before t for prompts admitted later
        self.rows = np.zeros(0, int)
        self.start = np.full(slots, t, 'int32')
        self.position = np.zeros(slots, 'int32')  # next position id (BERT)
        self.segment = np.zeros(slots, 'int32')  # next segment id (BERT)
        self.self_kv, self.extra = [], []
        self.copies = None  # (sources, targets) of rows that branched

    def take_copies(self):
        """The pending row copies, cleared: the step's graph makes them."""
        copies, self.copies = self.copies, None
        return copies or (np.zeros(0, 'int32'), np.zeros(0, 'int32'))

    def free_slots(self):
        return np.setdiff1d(np.arange(self.slots), self.rows)


class _CachedModel(object):
    """What both caches share: sizes, buffers, and the slot bookkeeping."""

    def _blocks(self, model, prefix, parts):
        """[(layer per part) for block 0, 1, ...] named ``prefix % i + part``."""
        names = {layer.name for layer in model.layers}
        blocks = []
        while prefix % len(blocks) + parts[0] in names:
            blocks.append(tuple(model.get_layer(prefix % len(blocks) + part) for part in parts))
        return blocks

    def _use_sizes_of(self, attention):
        reuse_freed_memory()
        self.heads, self.key_size, self.head_size = \
            attention.heads, attention.key_size, attention.head_size
        self.scale = attention.key_size ** 0.5 if attention.attention_scale else None
        # One trace for every slot, column and prompt count (shapes left
        # open): a search starts with as many columns as it may use, so
        # searches of different lengths would otherwise trace again.
        caches = self._cache_specs(len(self.layers))
        slots, end = tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)
        self._write = tf.function(self._write_graph,
                                  input_signature=[caches, caches, slots, end])
        self._traces = {}  # step function -> its concrete function (``_call_step``)

    def _call_step(self, step, *args):
        """Runs ``step``'s one trace (made on first use). Its arguments
        already have the traced types, so they go in as a flat list of
        tensors: matching ~70 arguments against the signature took about
        0.5 ms of every step's Python time."""
        if step not in self._traces:
            self._traces[step] = step.get_concrete_function()
        trace = self._traces[step]
        if not hasattr(trace, '_call_flat'):  # a later TensorFlow: the public way
            return trace(*args)
        flat = [a if type(a) is _EAGER_TENSOR else tf.convert_to_tensor(a)  # most already are
                for a in tf.nest.flatten(args)]
        return trace._call_flat(flat, trace.captured_inputs)

    def _keys_values(self, attention, x):
        return (_split_heads(attention.k_dense(x), self.heads, self.key_size),
                _split_heads(attention.v_dense(x), self.heads, self.head_size))

    def _query(self, attention, x):
        return _split_heads(attention.q_dense(x), self.heads, self.key_size)

    def _step_attention(self, attention, x, caches, i, t, mask, bias=None, dense=_apply):
        """One token per slot: writes its key and value at column ``t`` of
        the slot (``caches[2i]``, ``caches[2i + 1]``, replaced by the
        written ones), then attends over the slot's columns. x (s, hidden);
        ``dense(layer, x)`` applies the projections."""
        def heads(layer, size):
            return tf.reshape(dense(layer, x), [-1, self.heads, 1, size])
        slots = tf.range(tf.shape(x)[0])
        k = caches[2 * i] = _put(caches[2 * i], slots, t + 1,
                                 heads(attention.k_dense, self.key_size))
        v = caches[2 * i + 1] = _put(caches[2 * i + 1], slots, t + 1,
                                     heads(attention.v_dense, self.head_size))
        q = heads(attention.q_dense, self.key_size)
        return dense(attention.o_dense, _attend(q, k, v, mask, self.scale, bias)[:, 0])

    @staticmethod
    def _live_columns(start, t, length):
        """(s, 1, length) bool: the columns each slot attends to at column t."""
        columns = tf.range(length)
        return ((columns[None] >= start[:, None]) & (columns[None] <= t))[:, None]

    def _zeros(self, slots, shapes):
        return [tf.zeros((slots,) + shape, K.floatx()) for shape in shapes]

    def _cache_specs(self, n_pairs):
        """TensorSpecs of ``n_pairs`` (keys, values) caches: one trace for
        every slot and column count."""
        return [tf.TensorSpec([None, self.heads, None, self.key_size], K.floatx()),
                tf.TensorSpec([None, self.heads, None, self.head_size], K.floatx())] * n_pairs

    def _self_shapes(self, length):
        return [(self.heads, length, self.key_size), (self.heads, length, self.head_size)] * \
            len(self.layers)

    def _write_graph(self, caches, values, slots, end):
        return [_put(c, slots, end, v) for c, v in zip(caches, values)]

    def _copy_graph(self, caches, sources, targets):
        """Slots ``targets`` become copies of slots ``sources``, in place."""
        copied = []
        for cache in caches:
            shape = tf.shape(cache)
            flat = tf.reshape(cache, [shape[0], -1])
            rows = tf.gather(flat, sources)  # read before the same buffer is written
            copied.append(tf.reshape(tf.raw_ops.InplaceUpdate(x=flat, i=targets, v=rows),
                                     shape))
        return copied

    @staticmethod
    def _resized(caches, slots, offset, length):
        """New tensors: ``slots`` slots, columns from ``offset`` on, ``length`` long."""
        resized = []
        for cache in caches:
            part = cache[:, :, offset:offset + length]
            resized.append(tf.pad(part, [[0, slots - part.shape[0]], [0, 0],
                                         [0, length - part.shape[2]], [0, 0]]))
        return resized

    def _state(self, slots, length, t):
        state = _State(slots, length, t)
        state.self_kv = self._zeros(slots, self._self_shapes(length))
        return state

    def _make_room(self, state, slots):
        """At least ``slots`` slots and a free column at ``t``. Columns no
        live slot reads are dropped from the left; the buffers grow when
        less than half of them would be free."""
        grow_slots, shift = slots > state.slots, state.t >= state.length
        if not grow_slots and not shift:
            return
        offset = 0
        if shift:
            live = state.start[state.rows]
            offset = min(int(live.min()) if len(live) else state.t, state.t - state.reserve)
        used = state.t - offset + 1
        length = state.length if 2 * used <= state.length else _column_bucket(2 * used)
        slots = _slot_bucket(slots) if grow_slots else state.slots
        state.self_kv = self._resized(state.self_kv, slots, offset, length)
        state.extra = self._resized(state.extra, slots, 0, state.extra[0].shape[2]) \
            if state.extra else []
        pad = np.zeros(slots - state.slots, 'int32')
        state.start = np.maximum(np.concatenate([state.start - offset, pad]), 0)
        state.position = np.concatenate([state.position, pad])
        state.segment = np.concatenate([state.segment, pad])
        state.t -= offset
        state.slots, state.length = slots, length

    def _place_rows(self, state, rows):
        """Slots for new rows continuing ``rows``: the first child of a row
        keeps its slot, later children get a copy in a free slot."""
        parents = state.rows[np.asarray(rows, int)]
        targets = parents.copy()
        seen = set()
        branch = []
        for j, slot in enumerate(parents):
            if slot in seen:
                branch.append(j)
            seen.add(slot)
        if branch:
            self._make_room(state, len(seen) + len(branch))
            free = np.setdiff1d(np.arange(state.slots), parents)[:len(branch)]
            targets[branch] = free
            sources = parents[branch].astype('int32')
            state.copies = sources, free.astype('int32')  # done by the next step's graph
            for array in (state.start, state.position, state.segment):
                array[free] = array[sources]
        state.rows = targets

    def advance(self, state, rows, tokens):
        """Feeds ``tokens[j]`` to the row that continues ``rows[j]``."""
        if not len(rows):
            state.rows = np.zeros(0, int)
            return np.zeros((0, self.vocab_size), K.floatx()), state
        self._place_rows(state, rows)
        self._make_room(state, state.slots)
        fed = np.zeros(state.slots, 'int32')
        fed[state.rows] = tokens
        idle = state.free_slots()
        state.start[idle] = state.t  # an idle slot attends to itself only
        state.position[idle] = 0
        logits = self._run_step(state, fed)
        state.position[state.rows] += 1
        state.t += 1
        return logits.numpy()[state.rows], state

    def cache_bytes(self, batch_size, length):
        """Bytes of keys and values for ``batch_size`` rows of ``length`` positions."""
        itemsize = np.dtype(K.floatx()).itemsize
        return int(_slot_bucket(batch_size) * _column_bucket(length) * self.heads *
                   (self.key_size + self.head_size) * itemsize * len(self.layers))


def _times_transposed(x, weights):
    """x @ weights^T for x (rows, in), weights (out, in): a tied output
    layer (the token table). Written as
    (weights @ x^T)^T: a matmul with a transposed second operand repacks
    all of it for more than one row (10x slower at 2-4 rows, base size)."""
    return tf.transpose(tf.matmul(weights, x, transpose_b=True))


def _snapshot(variable):
    """The variable's value as a tensor that shares its buffer. After any
    lookup (a predict or fit does one) TensorFlow copies the whole variable
    on every dense read; turning that mode off makes this read free, and a
    later lookup or update gives the variable a fresh buffer and leaves
    this one as it was. Our graphs look tokens up in the snapshot, so they
    do not turn the mode back on."""
    if hasattr(tf.raw_ops, 'DisableCopyOnRead'):
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)
    return tf.identity(variable)


def _packed_grid(lengths, width):
    """(b, width): the index of each prompt's tokens in the packed sequence
    of all prompts, left-padded (padding: the total token count)."""
    total = int(np.sum(lengths))
    grid = np.full((len(lengths), width), total, 'int32')
    offset = 0
    for row, length in enumerate(lengths):
        grid[row, width - length:] = np.arange(offset, offset + length)
        offset += length
    return grid


# ------------------------------------------------------------ BERT family

class BertCache(_CachedModel):
    """Cached forward pass of a BERT-family model with an MLM head."""

    def __init__(self, model, lm, precision='float32'):
        if precision not in ('float32', 'bfloat16'):
            raise BlogError("precision must be 'float32' or 'bfloat16', not %r" % (precision,))
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
        self.max_position = int(self.position.input_dim)
        self.embedding_norm = get('Embedding-Norm')
        self.mapping = get('Embedding-Mapping') if 'Embedding-Mapping' in names else None
        parts = ('MultiHeadSelfAttention', 'MultiHeadSelfAttention-Norm',
                 'FeedForward', 'FeedForward-Norm')
        if 'Transformer-MultiHeadSelfAttention' in names:  # ALBERT: one shared block
            shared = [tuple(get('Transformer-' + part) for part in parts)]
            self.layers = shared * call_count(shared[0][0])
        else:
            self.layers = self._blocks(model, 'Transformer-%d-', parts)
        self._use_sizes_of(self.layers[0][0])
        self.mlm = [get('MLM-Dense'), get('MLM-Norm')]
        self.mlm_bias = get('MLM-Bias')
        self.vocab_size = int(self.token.input_dim)
        dense = list({id(layer): layer for layer in self._dense_layers()}.values())
        if precision == 'bfloat16':
            self.copies = _KernelCopies(dense, tf.bfloat16)
        elif 'CPU' in self.token.embeddings.device.upper():
            self.copies = _KernelCopies(dense)
        else:
            self.copies = None
        int_matrix = tf.TensorSpec([None, None], tf.int32)
        int_vector = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None, None], K.floatx())
        self.prefill = tf.function(self._prefill, input_signature=[
            int_vector, int_vector, int_matrix, table])
        rest = [table, int_vector, int_vector, int_vector, int_vector,
                tf.TensorSpec([], tf.int32), int_vector, int_vector]
        caches = self._cache_specs(len(self.layers))
        self.step = tf.function(self._step, input_signature=[caches, []] + rest)
        self.step_on_copies = tf.function(self._step, input_signature=[
            caches, [self.copies.spec()] * len(dense)] + rest) \
            if self.copies is not None else None

    def _dense_layers(self):
        """The Dense layers a step multiplies by, block by block, then the head's."""
        for attention, _, feed_forward, _ in self.layers:
            yield from (attention.q_dense, attention.k_dense, attention.v_dense,
                        attention.o_dense)
            yield from (getattr(feed_forward, 'i%d_dense' % i)
                        for i in range(len(feed_forward.activation)))
            yield feed_forward.o_dense
        yield self.mlm[0]

    def _embed(self, token_ids, segment_ids, positions, table):
        x = tf.gather(table, token_ids)  # the token embeddings (see ``table``)
        if self.segment is not None:
            x = x + self.segment(segment_ids)
        x = x + tf.gather(self.position.embeddings, positions)
        x = self.embedding_norm(x)
        return self.mapping(x) if self.mapping is not None else x

    def _block(self, x, layer, attend, dense=_apply):
        attention, attention_norm, feed_forward, feed_forward_norm = layer
        x = attention_norm(x + attend(attention, x))
        return feed_forward_norm(x + _feed_forward(feed_forward, x, dense))

    def _head(self, x, table, dense=_apply):
        """The MLM head on x (b, hidden); ``table``: the token embeddings."""
        mlm_dense, mlm_norm = self.mlm
        return self.mlm_bias(_times_transposed(mlm_norm(dense(mlm_dense, x)), table))

    def table(self):
        """The token embeddings, taken once per search (``_snapshot``): the
        tied output layer reads all of them at every step."""
        return _snapshot(self.token.embeddings)

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
            q, k, v = [_split_heads(self._on_grid(dense(x), grid), self.heads, size)
                       for dense, size in ((attention.q_dense, self.key_size),
                                           (attention.k_dense, self.key_size),
                                           (attention.v_dense, self.head_size))]
            caches.extend([k, v])
            o = _attend(q, k, v, mask, self.scale)  # (b, width, heads * size)
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
        (``_KernelCopies``), or none to use the layers as they are."""
        dense = self.copies.dense(kernels) if kernels else _apply
        caches = self._copy_graph(caches, sources, targets)
        x = self._embed(tokens, segments, positions, table)
        mask = self._live_columns(start, t, tf.shape(caches[0])[2])
        for i, layer in enumerate(self.layers):
            x = self._block(x, layer, lambda attention, x: self._step_attention(
                attention, x, caches, i, t, mask, dense=dense), dense)
        return self._head(x, table, dense), caches

    def _run_step(self, state, fed):
        if state.position[state.rows].max(initial=0) >= self.max_position:
            raise BlogError('the sequence is longer than the model\'s %d positions'
                            % self.max_position)
        kernels = state.kernels if self.copies and self.copies.serves(state.slots) else []
        logits, state.self_kv = self._call_step(
            self.step_on_copies if kernels else self.step, state.self_kv, kernels,
            state.table, fed, state.position, state.segment, state.start, np.int32(state.t),
            *state.take_copies())
        return logits

    def start(self, batch, width=None, new_tokens=1):
        """Prefills ``batch`` (``[token_ids]`` or ``[token_ids, segment_ids]``
        per input); ``width``: the longest prompt that will ever be admitted;
        ``new_tokens``: how many tokens the search may add to a row."""
        width = max(width or 0, max(len(np.asarray(item[0]).reshape(-1)) for item in batch))
        state = self._state(_slot_bucket(len(batch)), _first_length(width, new_tokens), width)
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
        self._make_room(state, len(state.rows) + len(batch))
        slots = state.free_slots()[:len(batch)]
        logits, caches = self.prefill(np.concatenate(token_ids).astype('int32'),
                                      np.concatenate(segment_ids).astype('int32'),
                                      _packed_grid(lengths, width), state.table)
        state.self_kv = self._write(state.self_kv, caches, slots.astype('int32'),
                                    np.int32(state.t))
        state.start[slots] = state.t - lengths
        state.position[slots] = lengths
        state.segment[slots] = 0 if self.lm else 1
        state.rows = np.concatenate([state.rows, slots])
        return logits.numpy()


# ------------------------------------------------------------------ T5

class T5Cache(_CachedModel):
    """Encoder once; decoder self-attention cached; cross K/V computed once."""

    def __init__(self, t5):
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
        # The decoder's bias depends only on key - query <= 0; beyond 256
        # back every bucket is the last one (T5's max_distance is 128).
        self.distances = 256
        self.position_bias = relative_position_bias(
            get('Decoder-Embedding-Relative-Position'), self.distances)[:, -1]  # (h, offsets)
        int_vector = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None, None], K.floatx())
        n = len(self.layers)
        extra = self._cache_specs(n) + [tf.TensorSpec([None, 1, None, 1], K.floatx())]
        self._write_extra = tf.function(self._write_graph, input_signature=[  # as ``_write``
            extra, extra, int_vector, tf.TensorSpec([], tf.int32)])
        self.prefill = tf.function(self._prefill, input_signature=[
            tf.TensorSpec([None, None], tf.int32), int_vector, table])
        self.step = tf.function(self._step, input_signature=[
            self._cache_specs(n), extra,
            table, int_vector, int_vector, tf.TensorSpec([], tf.int32), int_vector, int_vector])

    def _decode(self, x, self_attend, cross, context_mask, table):
        """The decoder blocks on x (b, d_model) of one token per row;
        cross = [(k, v)] per layer; context_mask (b, 1, encoder width)."""
        for i, (self_att, n1, n2, cross_att, n3, ffn) in enumerate(self.layers):
            x = x + self_attend(i, self_att, n1(x))
            k, v = cross[i]
            q = tf.reshape(cross_att.q_dense(n2(x)), [-1, self.heads, 1, self.key_size])
            x = x + cross_att.o_dense(_attend(q, k, v, context_mask, self.scale)[:, 0])
            x = x + ffn(n3(x))
        x = self.output_scale(self.output_norm(x))
        return _times_transposed(x, table) if self.output_lm is None else tf.matmul(x, table)

    def table(self):
        """The output layer's weights, taken once per search (``_snapshot``;
        a tied layer is the token embeddings)."""
        return _snapshot(self.token.embeddings if self.output_lm is None
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
        cross = [self._keys_values(layer[3], context) for layer in self.layers]
        caches = []
        bias = self.position_bias[None, :, None, -1:]

        def self_attend(i, attention, x):
            x = x[:, None]
            k, v = self._keys_values(attention, x)
            caches.extend([k, v])
            return attention.o_dense(_attend(self._query(attention, x), k, v,
                                             tf.ones_like(x[:, :, :1], tf.bool), None,
                                             bias)[:, 0])
        logits = self._decode(self._embed(start_tokens, table), self_attend, cross, context_mask,
                               table)
        return logits, caches, [t for kv in cross for t in kv], tf.cast(context_mask[:, 0],
                                                                       K.floatx())

    def _step(self, caches, extra, table, tokens, start, t, sources, targets):
        n = len(self.layers)
        copied = self._copy_graph(list(caches) + list(extra), sources, targets)
        caches, extra = copied[:len(caches)], copied[len(caches):]
        length = tf.shape(caches[0])[2]
        offsets = tf.clip_by_value(self.distances - 1 + tf.range(length) - t, 0,
                                   self.distances - 1)
        bias = tf.gather(self.position_bias, offsets, axis=1)[None, :, None]  # (1, h, 1, L)
        mask = self._live_columns(start, t, length)
        cross = [(extra[2 * i], extra[2 * i + 1]) for i in range(n)]
        context_mask = tf.cast(extra[2 * n][:, :, :, 0], tf.bool)  # (s, 1, width)

        def self_attend(i, attention, x):
            return self._step_attention(attention, x, caches, i, t, mask, bias)
        return self._decode(self._embed(tokens, table), self_attend, cross, context_mask,
                             table), caches, extra

    def _run_step(self, state, fed):
        logits, state.self_kv, state.extra = self._call_step(
            self.step, state.self_kv, state.extra, state.table, fed, state.start,
            np.int32(state.t), *state.take_copies())
        return logits

    def _extra_shapes(self, width):
        return [(self.heads, width, self.key_size), (self.heads, width, self.head_size)] * \
            len(self.layers) + [(1, width, 1)]

    def start(self, batch, start_id, width=None, new_tokens=1):
        """Encodes ``batch`` ([encoder_ids] per input) and runs the decoder's
        first step on ``start_id``; ``width``: the longest encoder input that
        will ever be admitted; ``new_tokens``: as ``BertCache.start``."""
        width = max(width or 0, max(len(np.asarray(item[0]).reshape(-1)) for item in batch))
        state = self._state(_slot_bucket(len(batch)), _first_length(1, new_tokens), 1)
        state.start_id, state.encoder_width, state.table = start_id, width, self.table()
        state.extra = self._zeros(state.slots, self._extra_shapes(width))
        return self.admit(state, batch), state

    def admit(self, state, batch):
        """Encodes new inputs into free slots; their rows follow the others."""
        ids = [np.asarray(item[0]).reshape(-1) for item in batch]
        width = state.encoder_width
        if max(len(s) for s in ids) > width:
            raise BlogError('an input of %d tokens is longer than the %d this search '
                            'was started for' % (max(len(s) for s in ids), width))
        self._make_room(state, len(state.rows) + len(batch))
        slots = state.free_slots()[:len(batch)].astype('int32')
        encoder_ids = np.array([np.pad(s, (0, width - len(s))) for s in ids], 'int32')
        logits, caches, cross, context_mask = self.prefill(
            encoder_ids, np.full(len(batch), state.start_id, 'int32'), state.table)
        state.self_kv = self._write(state.self_kv, caches, slots, np.int32(state.t))
        state.extra = self._write_extra(state.extra, cross + [context_mask[:, None, :, None]],
                                        slots, np.int32(width))
        state.start[slots] = state.t - 1
        state.rows = np.concatenate([state.rows, slots])
        return logits.numpy()
