"""Keras 2.3.1's behaviour where tf_keras 2.21 differs, for scripts written
like bert4keras' own examples: steps 9-13 of ``backend.py``, whose docstring
says what each fixes and why. ``backend`` imports this module once, after
bert4keras; nothing else should.

Public API (re-exported by ``backend``):
    TF1_GRAPH_IDIOMS, GRAPH_MODE_ENV: what marks a script for graph mode,
        and the environment variable that overrides the detection.
    tf1_graph_idioms(path) -> list of str: the idioms a file uses.
    wants_graph_mode(script) -> bool: whether running ``script`` needs graph mode.
    use_graph_mode(): switch to Keras' graph-mode (v1) training loop.
    use_graph_mode_if_wanted(script) -> bool: switch if ``script`` wants it,
        naming the idioms found on stderr.
"""
import contextlib
import os
import sys

import tensorflow as tf
from bert4keras import snippets as _snippets
from tf_keras.src import backend as _tf_keras_backend
from tf_keras.src.engine import compile_utils as _compile_utils
from tf_keras.src.engine import data_adapter as _data_adapter

keras = tf.keras

__all__ = ['TF1_GRAPH_IDIOMS', 'GRAPH_MODE_ENV', 'tf1_graph_idioms', 'wants_graph_mode',
           'use_graph_mode', 'use_graph_mode_if_wanted']


def _pack_x_y_sample_weight(x, y=None, sample_weight=None):
    # Step 9: tf_keras tests ``isinstance(x, tuple or list)``, which is
    # ``isinstance(x, tuple)``: a generator's ``[token_ids, segment_ids], None``
    # came back as a bare list and was unpacked again as (x, y).
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def _generator_batches_as_in_keras_2(standardize_batch):
    # Step 9 too: in Keras 2.3 only a tuple from a generator was (x, y[, w]);
    # a list was the inputs. tf_keras reads ``[token_ids, segment_ids]`` from
    # a predict/evaluate generator as x = token_ids, y = segment_ids.
    def standardize(self, data):
        return standardize_batch(self, (data,) if isinstance(data, list) else data)
    return standardize


_data_adapter.pack_x_y_sample_weight = _pack_x_y_sample_weight
_data_adapter.GeneratorDataAdapter._standardize_batch = _generator_batches_as_in_keras_2(
    _data_adapter.GeneratorDataAdapter._standardize_batch)


def _targets_in_output_dtypes(y_true, y_pred):
    """Integer or boolean targets cast to the dtype of the output they match."""
    outputs = tf.nest.flatten(y_pred)
    targets = tf.nest.flatten(y_true)
    if len(targets) != len(outputs):
        return y_true

    def cast(target, output):
        if target is None or not tf.is_tensor(target) or not output.dtype.is_floating:
            return target
        if target.dtype.is_integer or target.dtype == tf.bool:
            return tf.cast(target, output.dtype)
        return target
    return tf.nest.pack_sequence_as(y_true, [cast(t, o) for t, o in zip(targets, outputs)])


def _with_float_targets(method):
    # Step 10: Keras 2.3.1 fed targets through placeholders of the output's
    # dtype; tf_keras passes a generator's int64 labels on, and losses written
    # for Keras 2.3 (``y_true * y_pred``) fail on the dtype mismatch.
    def call(self, y_true, y_pred, sample_weight=None, **kwargs):
        if y_true is not None:
            y_true = _targets_in_output_dtypes(self._conform_to_outputs(y_pred, y_true), y_pred)
        return method(self, y_true, y_pred, sample_weight, **kwargs)
    return call


_compile_utils.LossesContainer.__call__ = _with_float_targets(
    _compile_utils.LossesContainer.__call__)
_compile_utils.MetricsContainer.update_state = _with_float_targets(
    _compile_utils.MetricsContainer.update_state)

_ACCURACY_FOR_LOSS = {
    'binary_crossentropy': 'binary_accuracy',
    'sparse_categorical_crossentropy': 'sparse_categorical_accuracy',
    'categorical_crossentropy': 'categorical_accuracy',
}


def _loss_of_output(metrics_container, output):
    """The loss compiled for ``output``: one for all, or by position or name."""
    losses = getattr(metrics_container, '_blog_losses', None)
    if not isinstance(losses, (dict, list, tuple)):
        return losses
    outputs = getattr(metrics_container, '_blog_outputs', [])
    index = next((i for i, o in enumerate(outputs) if o is output), None)
    if isinstance(losses, dict):
        names = metrics_container._output_names or []
        return losses.get(names[index]) if index is not None and index < len(names) else None
    return losses[index] if index is not None and index < len(losses) else None


def _loss_name(loss):
    """The name of a built-in loss given as a string, function or Loss object."""
    if loss is None:
        return None
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    loss = getattr(loss, 'fn', loss)  # LossFunctionWrapper (SparseCategoricalCrossentropy...)
    return getattr(loss, '__name__', None)


def _accuracy_from_loss(get_metric_object):
    # Step 11: tf_keras resolves 'accuracy' from the label's shape, which a
    # DataGenerator leaves unknown, so sparse labels were scored with
    # categorical accuracy (logged 1.0 while the true accuracy was 0.5).
    # Keras 2.3.1 resolved it from the loss; where the loss says, so do we.
    def resolve(self, metric, y_t, y_p):
        if isinstance(metric, str) and metric.lower() in ('accuracy', 'acc'):
            accuracy = _ACCURACY_FOR_LOSS.get(_loss_name(_loss_of_output(self, y_p)))
            if accuracy is not None:
                return keras.metrics.MeanMetricWrapper(keras.metrics.get(accuracy), name=metric)
        return get_metric_object(self, metric, y_t, y_p)
    return resolve


def _remember_outputs(build):
    def remember(self, y_pred, y_true):
        self._blog_outputs = tf.nest.flatten(y_pred)
        return build(self, y_pred, y_true)
    return remember


def _remember_losses(compile_model):
    def compile_and_remember(self, optimizer='rmsprop', loss=None, *args, **kwargs):
        result = compile_model(self, optimizer, loss, *args, **kwargs)
        if getattr(self, 'compiled_metrics', None) is not None:
            self.compiled_metrics._blog_losses = loss
        return result
    return compile_and_remember


_compile_utils.MetricsContainer._get_metric_object = _accuracy_from_loss(
    _compile_utils.MetricsContainer._get_metric_object)
_compile_utils.MetricsContainer.build = _remember_outputs(_compile_utils.MetricsContainer.build)
keras.Model.compile = _remember_losses(keras.Model.compile)


class _EagerGraph(object):
    """What ``WebServing`` enters around each request; nothing to enter in TF 2."""
    as_default = staticmethod(contextlib.nullcontext)


def _web_serving_init(self, host='0.0.0.0', port=8000, server='paste'):
    # Step 13: bert4keras' WebServing keeps TF1's default graph and session
    # (``tf.get_default_graph``, ``K.get_session``, gone from TF 2's API) to
    # call the model from bottle's threads. Eager TF 2 needs neither; graph
    # mode (step 12) gets them from tf.compat.v1.
    import bottle
    self.host, self.port, self.server, self.bottle = host, port, server, bottle
    if tf.executing_eagerly():
        self.graph, self.sess, self.set_session = _EagerGraph(), None, lambda session: None
    else:
        self.graph = tf.compat.v1.get_default_graph()
        self.sess = _tf_keras_backend.get_session()
        self.set_session = _tf_keras_backend.set_session


_snippets.WebServing.__init__ = _web_serving_init

GRAPH_MODE_ENV = 'BERT4KERAS_BLOG_GRAPH_MODE'
# What only Keras 2.3's graph (TF1) training loop offers: examples that
# build their own train function (adversarial training), or take
# K.gradients of symbolic tensors (gradient penalty, integrated gradients).
TF1_GRAPH_IDIOMS = ('_make_train_function', 'K.gradients(', 'tf.gradients(',
                    '.total_loss', '_feed_inputs', '_feed_targets')


def tf1_graph_idioms(path):
    """Returns the TF1-graph idioms that the Python file at ``path`` uses."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            source = f.read()
    except OSError:
        return []
    return [idiom for idiom in TF1_GRAPH_IDIOMS if idiom in source]


def use_graph_mode():
    """Step 12: run Keras' graph-mode (v1) training loop, as Keras 2.3 did.

    Call it before the first model is built. ``model._make_train_function``,
    ``model.total_loss``, ``model._feed_inputs`` and ``K.gradients`` of a
    model's symbolic outputs exist there; eager code (``tf.function``,
    ``GradientTape``) does not run in this mode.
    """
    tf.compat.v1.disable_eager_execution()
    # TF1's tf.cond (Switch/Merge), as under Keras 2.3: a gradient of a
    # gradient through dropout's cond (the gradient penalty) fails on cond_v2
    # ("Connecting to invalid output 1 of source node ... StatelessIf").
    tf.compat.v1.disable_control_flow_v2()


def wants_graph_mode(script):
    """Whether running ``script`` needs the graph-mode loop (step 12's switch).

    ``BERT4KERAS_BLOG_GRAPH_MODE=1`` or ``0`` decides; unset, the script is
    read for ``TF1_GRAPH_IDIOMS``.
    """
    setting = os.environ.get(GRAPH_MODE_ENV, '').strip()
    if setting in ('0', '1'):
        return setting == '1'
    return bool(script and script.endswith('.py') and tf1_graph_idioms(script))


def use_graph_mode_if_wanted(script):
    """Step 12 for ``script``: graph mode if it wants it, saying why on stderr.

    Returns:
        bool, whether graph mode is now on.
    """
    if not wants_graph_mode(script):
        return False
    idioms = tf1_graph_idioms(script) if script else []
    if idioms and os.environ.get(GRAPH_MODE_ENV, '').strip() != '1':
        print('bert4keras_blog: %s uses %s; it runs in graph mode (set %s=0 to refuse)'
              % (os.path.basename(script), ', '.join(idioms), GRAPH_MODE_ENV), file=sys.stderr)
    use_graph_mode()
    return True
