"""The one place where the library reaches into bert4keras' and tf_keras'
private parts.

``backend.py`` (with ``keras23.py``) patches bert4keras so that it runs on
TF 2.21; this module is what our own topic modules need beyond the public
API. Each function says which behaviour of bert4keras 0.11.5 or tf_keras 2.x it
relies on, and ``tests/test_internals.py`` has a test per behaviour, so an
upgrade that changes one fails there, not silently in a decoder.

Public API:
    call_count(layer) -> int: how many times a layer is called in the built
        model (ALBERT's one shared block runs num_hidden_layers times).
    t5_decoder(t5) -> the bert4keras ``T5_Decoder`` of a ``T5`` object.
    relative_position_bias(layer, length) -> (heads, length, length) tensor:
        a T5 relative-position layer's bias for every (query, key) pair.
    token_embeddings_replaced(transformer, vectors=None, record=()): context
        manager; ``transformer.call`` inside it rebuilds the graph with the
        ``Embedding-Token`` lookup replaced by ``vectors`` and yields a dict of
        the outputs of the layers named in ``record``.
    cell_weights_replaced(cell, values): context manager; a Keras RNN cell
        reads its kernel, recurrent kernel and bias from ``values``.
"""
import contextlib

from bert4keras_blog.backend import tf
from bert4keras_blog.errors import BlogError

__all__ = ['call_count', 't5_decoder', 'relative_position_bias',
           'token_embeddings_replaced', 'cell_weights_replaced']


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
