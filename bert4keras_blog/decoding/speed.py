"""What makes cached steps fast without changing their numbers: copies of
the dense kernels in the layout a step multiplies fastest, reads of the
weights that copy nothing, flat calls of the traced steps, and glibc's
malloc kept from returning a search's buffers too early. ``docs/decoding.md``
measures each.

All of it can be switched off (``set_enabled(False)``, or
``BERT4KERAS_BLOG_DECODING_SPEEDUPS=0`` before the first decoder is made):
the steps then use the layers as they are, read weights plainly and call
the traced functions through TensorFlow's public API, with the same ids.
bfloat16 steps (``precision='bfloat16'``) are a choice of precision, not a
speed-up, and keep their kernel copies either way.

Public API:
    enabled() -> bool; set_enabled(flag).
    KernelCopies(layers, dtype=None): the copies, rebuilt when a kernel changes.
    weights_read(variable): the value of a weight for one search.
    traced_call(concrete_function): a caller of a traced step.
    times_transposed(x, weights): x @ weights^T for a tied output layer.
    reuse_freed_memory(), release_freed_memory().
    FEW_ROWS: float32 steps of at most this many slots read kernel copies.
    COMPILED_SLOTS: T5 steps of at most this many slots run as one XLA program.
"""
import functools
import os

import numpy as np

from bert4keras_blog.compat import K, internals, tf

__all__ = ['enabled', 'set_enabled', 'KernelCopies', 'weights_read', 'traced_call',
           'times_transposed', 'reuse_freed_memory', 'release_freed_memory', 'FEW_ROWS',
           'COMPILED_SLOTS']

FEW_ROWS = 16  # float32 steps of at most this many slots read kernel copies (BERT, CPU)
COMPILED_SLOTS = 4  # T5 steps of at most this many slots run XLA-compiled (batch 1, beam 3)
_SETTINGS = {'enabled': os.environ.get('BERT4KERAS_BLOG_DECODING_SPEEDUPS', '1') != '0',
             'malloc_tuned': False}


def enabled():
    """Whether the speed-ups are on (the default)."""
    return _SETTINGS['enabled']


def set_enabled(flag):
    """Turns the speed-ups on or off for decoders made from now on."""
    _SETTINGS['enabled'] = bool(flag)


def traced_call(concrete_function):
    """A caller of a traced step whose arguments already have the traced
    types: as a flat list of tensors (matching ~70 arguments against the
    signature is most of a step's Python time otherwise), or through the
    public call when the speed-ups are off."""
    if enabled():
        return internals.flat_caller(concrete_function)
    return lambda *args: concrete_function(*args)


def weights_read(variable):
    """The variable's value for one search. With the speed-ups, a tensor
    that shares the variable's buffer (``internals.share_variable_buffer``):
    after any lookup (a predict or fit does one) TensorFlow would copy the
    whole variable on every dense read. Our graphs look tokens up in this
    read, so they do not turn copying back on."""
    if enabled():
        return internals.share_variable_buffer(variable)
    return tf.convert_to_tensor(variable)


def times_transposed(x, weights):
    """x @ weights^T for x (rows, in), weights (out, in): a tied output
    layer (the token table). Written as (weights @ x^T)^T: a matmul with a
    transposed second operand repacks all of it for more than one row."""
    return tf.transpose(tf.matmul(weights, x, transpose_b=True))


def reuse_freed_memory():
    """Asks glibc to serve large blocks from its heap and keep up to 512 MB
    of freed memory, so the per-step buffers of a search (logits, copied
    rows) reuse pages instead of mapping fresh ones and faulting them in.
    Process-wide, so it runs once when the first cached model is built; set
    ``BERT4KERAS_BLOG_MALLOC=default`` (or switch the speed-ups off) to leave
    malloc alone. Each search hands what it freed back when it ends
    (``release_freed_memory``)."""
    if _SETTINGS['malloc_tuned'] or not enabled() or \
            os.environ.get('BERT4KERAS_BLOG_MALLOC') == 'default':
        return
    _SETTINGS['malloc_tuned'] = internals.malloc_tune(1 << 30, 512 << 20)


def release_freed_memory():
    """Returns the heap's free pages to the system (glibc ``malloc_trim``),
    so a process does not keep a finished search's buffers. Only after
    ``reuse_freed_memory`` has tuned malloc; returns whether it ran."""
    return _SETTINGS['malloc_tuned'] and internals.malloc_trim()


def _buffer(tensor):
    """The address of a CPU tensor's data (numpy shares it)."""
    return np.asarray(tensor).ctypes.data


class KernelCopies(object):
    """Copies of the dense kernels in the layout a step multiplies fastest,
    for the steps of a search (never the prompts).

    float32 (on CPU, with the speed-ups): blocks of 32 output columns,
    (out/32, in, 32), one batched matmul per kernel (``_times_blocks``).
    From Keras' (in, out) layout oneDNN repacks the kernel on every call;
    from blocks it reads each one as it lies, which pays at up to
    ``FEW_ROWS`` slots. bfloat16 (``precision``, an opt-in): (out, in),
    every step, multiplied as ``x kernel^T`` in bfloat16, at the cost of
    rounding (docs/decoding.md).

    The copies are kept between searches, next to a snapshot of each kernel
    that shares the variable's buffer. A variable whose buffer is shared
    cannot be updated in place: any assignment, optimizer step or
    ``set_weights`` gives it a fresh buffer, so a search that finds a
    kernel in another buffer rebuilds the copies. While the model trains
    between searches, the snapshots hold the kernels' earlier buffers until
    the next search. ``drop`` frees both; a float32 search of more rows
    calls it."""

    def __init__(self, layers, dtype=None):
        self.layers = layers
        self.dtype = tf.as_dtype(dtype or K.floatx())
        self.blocked = self.dtype == K.floatx()
        self.rows = FEW_ROWS if self.blocked else None  # None: every step
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
        reads = [internals.share_variable_buffer(layer.kernel) for layer in self.layers]
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
        def apply(layer, x, activate=True):
            kernel = kernels[self.index[id(layer)]]
            if self.blocked:
                y = _times_blocks(x, kernel)
            else:
                y = tf.cast(tf.matmul(tf.cast(x, self.dtype), kernel, transpose_b=True), x.dtype)
            if not activate:
                return y
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
