"""The one place where the package touches private names of tf_keras,
TensorFlow, bert4keras or libc.

Everything else in ``bert4keras_blog`` uses their public API and the
functions here; ``tests/test_layers.py`` fails on a private attribute, a
``tf_keras.src`` import, ``tf.raw_ops`` or ``ctypes`` anywhere else. Each
function says which behaviour of bert4keras 0.11.5, tf_keras 2.21,
TensorFlow 2.21 or glibc it relies on, and ``tests/test_internals.py``
tests each one, so an upgrade that changes one fails there, not silently
in a decoder or a training loop.

Public API:
    Models: call_count(layer), t5_decoder(t5), relative_position_bias(layer,
        length), token_embeddings_replaced(transformer, vectors, record),
        cell_weights_replaced(cell, values).
    Tokenizers: special_tokens(tokenizer) -> SpecialTokens(start, end, mask, unk,
        vocab_size).
    bert4keras' optimizers: adafactor_fixed_rate(optimizer).
    tf_keras' private modules, for the compatibility layer only:
        TF_KERAS_BACKEND, DATA_ADAPTER, COMPILE_UTILS, TRAINING, ACTIVATIONS,
        CALLBACKS; and the hooks wrap_generator_batches,
        wrap_metric_resolution, wrap_metrics_build, wrap_layer_naming,
        wrap_class_weights, wrap_random_generator_init, conform_targets,
        output_names, compiled_losses_and_metrics, is_compiled, keras_layer_of,
        silence_initializer_reuse_warning, unseeded_stateless(generator),
        use_legacy_stateful(generator).
    TensorFlow: flat_caller(concrete_function), inplace_update(x, i, v),
        share_variable_buffer(variable).
    glibc: malloc_tune(mmap_threshold, trim_threshold), malloc_trim().
    argparse: parser_actions(parser).
"""
import argparse
import collections
import contextlib
import ctypes
import ctypes.util
import functools

from tf_keras.src import activations as ACTIVATIONS
from tf_keras.src import backend as TF_KERAS_BACKEND
from tf_keras.src import callbacks as CALLBACKS
from tf_keras.src.engine import base_layer as _base_layer
from tf_keras.src.engine import compile_utils as COMPILE_UTILS
from tf_keras.src.engine import data_adapter as DATA_ADAPTER
from tf_keras.src.engine import functional as _functional
from tf_keras.src.engine import training as TRAINING

from bert4keras_blog.compat.environment import keras, tf
from bert4keras_blog.errors import BlogError

__all__ = ['call_count', 't5_decoder', 'relative_position_bias', 'token_embeddings_replaced',
           'cell_weights_replaced', 'SpecialTokens', 'special_tokens', 'adafactor_fixed_rate',
           'TF_KERAS_BACKEND', 'DATA_ADAPTER', 'COMPILE_UTILS', 'TRAINING', 'ACTIVATIONS',
           'CALLBACKS', 'wrap_generator_batches', 'wrap_metric_resolution',
           'wrap_metrics_build', 'wrap_layer_naming', 'wrap_class_weights',
           'wrap_random_generator_init', 'conform_targets', 'output_names',
           'compiled_losses_and_metrics', 'is_compiled', 'keras_layer_of',
           'silence_initializer_reuse_warning',
           'unseeded_stateless', 'use_legacy_stateful', 'flat_caller', 'inplace_update',
           'share_variable_buffer', 'malloc_tune', 'malloc_trim', 'parser_actions']


def call_count(layer):
    """How many times ``layer`` is called in the functional graphs built so far.

    Relies on: tf_keras appends one node to ``layer._inbound_nodes`` per call
    on symbolic inputs (bert4keras' ALBERT calls its shared block once per
    layer of the config).
    """
    return len(layer._inbound_nodes)


def t5_decoder(t5):
    """The bert4keras ``T5_Decoder`` inside a ``T5`` object (its settings,
    such as ``cross_position_bias``, live there, not on the Keras model).

    Relies on: ``bert4keras.models.T5.__init__`` keeps it as ``self._decoder``.
    """
    decoder = getattr(t5, '_decoder', None)
    if decoder is None or not hasattr(t5, 'encoder'):
        raise BlogError('T5Decoder needs the bert4keras T5 object: build it with '
                        "build_transformer_model(..., model='mt5.1.1', return_keras_model=False)")
    return decoder


def relative_position_bias(layer, length):
    """(heads, length, length) bias of a ``RelativePositionEmbeddingT5`` layer.

    Relies on: the layer's ``call([queries, keys])`` reads only the two
    inputs' lengths and returns (q_len, k_len, heads). ``call`` and not
    ``__call__``: the layer's ``compute_mask`` expects Keras masks.
    """
    dummy = tf.zeros([1, length, 1])
    return tf.transpose(layer.call([dummy, dummy]), (2, 0, 1))


@contextlib.contextmanager
def token_embeddings_replaced(transformer, vectors=None, record=()):
    """Re-running ``transformer.call(transformer.inputs)`` inside the block
    builds the model's graph again, with the token lookup of ``Embedding-Token``
    replaced by ``vectors`` (batch, seq_len, embedding_size) when given; the
    output head's use of the same layer is kept. Yields a dict that receives
    the output of each layer named in ``record``.

    Relies on: bert4keras' ``Transformer.call`` runs every layer through
    ``self.apply(inputs, layer, arguments, name=...)``, and a tied output head
    calls ``Embedding-Token`` with ``arguments={'mode': 'dense'}``. An instance
    attribute named ``apply`` shadows the method for this object only, and is
    removed on leaving, whatever happens inside.
    """
    method = type(transformer).apply
    recorded = {}

    def apply(inputs=None, layer=None, arguments=None, **kwargs):
        name = kwargs.get('name')
        dense = (arguments or {}).get('mode') == 'dense'
        if vectors is not None and name == 'Embedding-Token' and not dense \
                and inputs is not None:
            return vectors
        output = method(transformer, inputs, layer, arguments, **kwargs)
        if name in record:
            recorded[name] = output
        return output

    transformer.apply = apply
    try:
        yield recorded
    finally:
        del transformer.apply


_CELL_WEIGHTS = ('kernel', 'recurrent_kernel', 'bias')


@contextlib.contextmanager
def cell_weights_replaced(cell, values):
    """Within the block, ``cell.call`` reads its weights from ``values`` (one
    tensor per entry of ``cell.trainable_weights``, in that order).

    Relies on: tf_keras' SimpleRNNCell, LSTMCell and GRUCell read
    ``self.kernel``, ``self.recurrent_kernel`` and ``self.bias`` when called;
    ``object.__setattr__`` skips Keras' attribute tracking, so the cell's list
    of weights is left as it was.
    """
    weights = list(cell.trainable_weights)
    names = []
    for weight in weights:
        name = next((n for n in _CELL_WEIGHTS if getattr(cell, n, None) is weight), None)
        if name is None:
            raise BlogError('only cells whose weights are kernel, recurrent_kernel and bias '
                            'are supported; %s has %s' % (type(cell).__name__, weight.name))
        names.append(name)
    for name, value in zip(names, values):
        object.__setattr__(cell, name, value)
    try:
        yield
    finally:
        for name, weight in zip(names, weights):
            object.__setattr__(cell, name, weight)


# ------------------------------------------------------------ tokenizers

SpecialTokens = collections.namedtuple('SpecialTokens', 'start end mask unk vocab_size')


def special_tokens(tokenizer):
    """The special token ids and vocabulary size of a bert4keras tokenizer.

    Relies on: ``Tokenizer`` and ``SpTokenizer`` of bert4keras 0.11.5 keep
    them as ``_token_start_id``, ``_token_end_id``, ``_token_mask_id``,
    ``_token_unk_id`` (None where the vocabulary has no such token) and
    ``_vocab_size``; there is no public accessor.
    """
    def get(name):
        return getattr(tokenizer, '_token_%s_id' % name, None)
    return SpecialTokens(get('start'), get('end'), get('mask'), get('unk'), tokenizer._vocab_size)


# ------------------------------------------------------ bert4keras' optimizers

def adafactor_fixed_rate(optimizer):
    """The fixed learning rate an ``AdaFactor`` was built with, or None for
    its own schedule. Relies on: ``AdaFactorBase.__init__`` stores it as
    ``self._learning_rate``."""
    return optimizer._learning_rate


# ------------------------------------------------- tf_keras' private hooks

def _wrap(owner, name, make_wrapper):
    setattr(owner, name, make_wrapper(getattr(owner, name)))


def wrap_generator_batches(make_wrapper):
    """Relies on: ``GeneratorDataAdapter._standardize_batch(self, data)``
    sees every batch a generator yields, before it is split into x, y, w."""
    _wrap(DATA_ADAPTER.GeneratorDataAdapter, '_standardize_batch', make_wrapper)


def wrap_metric_resolution(make_wrapper):
    """Relies on: ``MetricsContainer._get_metric_object(self, metric, y_t,
    y_p)`` turns a metric given to ``compile`` (such as 'accuracy') into a
    Metric, once per output, when the container is built."""
    _wrap(COMPILE_UTILS.MetricsContainer, '_get_metric_object', make_wrapper)


def wrap_metrics_build(make_wrapper):
    """Relies on: ``MetricsContainer.build(self, y_pred, y_true)`` runs
    before ``_get_metric_object`` with the model's outputs."""
    _wrap(COMPILE_UTILS.MetricsContainer, 'build', make_wrapper)


def wrap_layer_naming(make_wrapper):
    """Relies on: ``Layer._init_set_name(self, name, zero_based=True)`` (and
    ``Functional``'s own) picks a default name, counting from 0 unless
    ``zero_based`` is False."""
    for owner in (_base_layer.Layer, _functional.Functional):
        _wrap(owner, '_init_set_name', make_wrapper)


def wrap_class_weights(make_wrapper):
    """Relies on: ``data_adapter._make_class_weight_map_fn(class_weight)``
    returns the function ``fit`` maps over its batches (x, y[, w])."""
    _wrap(DATA_ADAPTER, '_make_class_weight_map_fn', make_wrapper)


def wrap_random_generator_init(make_wrapper):
    """Relies on: ``backend.RandomGenerator._maybe_init(self)`` runs before
    every draw, and picks the generator kind from ``_rng_type``."""
    _wrap(TF_KERAS_BACKEND.RandomGenerator, '_maybe_init', make_wrapper)


def unseeded_stateless(generator):
    """Whether a RandomGenerator not yet built has no seed and would draw
    from a stateless generator (the same values on every call).
    Relies on: its ``_built``, ``_seed`` and ``_rng_type`` attributes."""
    return (not generator._built and generator._seed is None
            and generator._rng_type == generator.RNG_STATELESS)


def use_legacy_stateful(generator):
    """Makes a RandomGenerator draw from TensorFlow's stateful random ops.
    Relies on: ``_maybe_init`` reads ``_rng_type`` to choose."""
    generator._rng_type = generator.RNG_LEGACY_STATEFUL


def silence_initializer_reuse_warning():
    """Relies on: ``Initializer._warn_reuse(self)`` only warns that an
    unseeded initializer repeats its values, which no longer holds once
    ``use_legacy_stateful`` applies."""
    keras.initializers.Initializer._warn_reuse = lambda self: None


def conform_targets(container, y_pred, y_true):
    """``y_true`` in the nesting of ``y_pred``. Relies on:
    ``LossesContainer`` / ``MetricsContainer._conform_to_outputs``."""
    return container._conform_to_outputs(y_pred, y_true)


def output_names(metrics_container):
    """The output names a MetricsContainer was built with (or None).
    Relies on: it keeps them as ``_output_names``."""
    return metrics_container._output_names


def compiled_losses_and_metrics(model):
    """(losses, metrics, weighted_metrics) exactly as given to ``compile``.
    Relies on: the containers keep them as ``_user_losses``,
    ``_user_metrics`` and ``_user_weighted_metrics``."""
    loss, metrics = model.compiled_loss, model.compiled_metrics
    return (loss._user_losses if loss else None, metrics._user_metrics if metrics else None,
            metrics._user_weighted_metrics if metrics else None)


def keras_layer_of(tensor):
    """The layer whose output a symbolic Keras tensor is, or None.
    Relies on: such tensors carry ``_keras_history`` (layer, node, index)."""
    history = getattr(tensor, '_keras_history', None)
    return history.layer if history is not None else None


def is_compiled(model):
    """Relies on: ``Model.compile`` sets ``_is_compiled``."""
    return getattr(model, '_is_compiled', False)


# ------------------------------------------------------------ TensorFlow

def flat_caller(concrete_function):
    """A function that runs ``concrete_function`` on a flat list of
    arguments that already have its traced types, skipping the matching of
    arguments against its signature (``docs/decoding.md`` measures it).

    Relies on: ``ConcreteFunction._call_flat(tensors, captured_inputs)``;
    where a later TensorFlow lacks it, the public call is used.
    """
    if not hasattr(concrete_function, '_call_flat'):
        return lambda *args: concrete_function(*args)
    call_flat, captured = concrete_function._call_flat, concrete_function.captured_inputs
    eager_tensor = type(tf.constant(0))

    def call(*args):
        flat = [a if type(a) is eager_tensor else tf.convert_to_tensor(a)  # most already are
                for a in tf.nest.flatten(args)]
        return call_flat(flat, captured)
    return call


def inplace_update(x, i, v):
    """Rows ``i`` of the 2-D tensor ``x`` set to ``v``, written into x's own
    buffer. Relies on: ``tf.raw_ops.InplaceUpdate`` updates in place when
    nothing else holds ``x`` (a raw op, deprecated in TensorFlow's API but
    kept in its kernels)."""
    return tf.raw_ops.InplaceUpdate(x=x, i=i, v=v)


def share_variable_buffer(variable):
    """The variable's value as a tensor that shares its buffer.

    Relies on: after any lookup TensorFlow copies a whole resource variable
    on every dense read ("copy on read"); ``tf.raw_ops.DisableCopyOnRead``
    turns that off, so the read is free, and a later lookup or update gives
    the variable a fresh buffer and leaves this one as it was.
    """
    if hasattr(tf.raw_ops, 'DisableCopyOnRead'):
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)
    return tf.identity(variable)


# ------------------------------------------------------------------ glibc

@functools.lru_cache(maxsize=None)
def _libc():
    """glibc, looked up once (``find_library`` runs an external lookup)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    except OSError:
        return None


def malloc_tune(mmap_threshold, trim_threshold):
    """glibc's ``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``;
    returns False where the C library is not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, 'mallopt'):
        return False
    libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD
    return True


def malloc_trim():
    """glibc's ``malloc_trim(0)``: free heap pages go back to the system.
    Returns whether it ran."""
    libc = _libc()
    if libc is None or not hasattr(libc, 'malloc_trim'):
        return False
    libc.malloc_trim(0)
    return True


# --------------------------------------------------------------- argparse

def parser_actions(parser):
    """[(action, kind)] for a parser's options, kind one of 'help', 'flag'
    (store_true / store_const) or 'value'. Relies on: argparse keeps them as
    ``parser._actions``, of its private action classes; it has no public
    list."""
    kinds = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            kind = 'help'
        elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction)):
            kind = 'flag'
        else:
            kind = 'value'
        kinds.append((action, kind))
    return kinds
