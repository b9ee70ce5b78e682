"""Keras 2.3.1's behaviour where tf_keras 2.21 differs, for scripts written
like bert4keras' own examples (steps 9-13). ``compat`` imports this module
once, after bert4keras; nothing else should.

9. A generator yielding ``[token_ids, segment_ids], None`` (every seq2seq
   and language-model example): tf_keras' ``pack_x_y_sample_weight`` tests
   ``isinstance(x, tuple or list)``, which is ``isinstance(x, tuple)``, so
   the list came back bare and was unpacked as (x, y): "expects 2 input(s),
   but it received 1". Lists are kept together now, and, as in Keras 2.3, a
   generator's batch is (x, y[, sample_weight]) only when it is a tuple: a
   bare list ``[token_ids, segment_ids]`` given to ``predict`` is the inputs.
10. Integer targets reach compiled losses and metrics in the dtype of the
    output they belong to, as Keras 2.3's target placeholders had them;
    tf_keras passed a generator's int64 labels on (``y_true * y_pred``
    failed in the relation-extraction example).
11. ``metrics=['accuracy']`` (or ``'acc'``) follows the loss when the loss
    is a built-in cross-entropy: sparse, binary or categorical accuracy, as
    in Keras 2.3. tf_keras guessed from the label's shape, which a
    ``DataGenerator`` leaves unknown, and scored sparse labels with
    categorical accuracy (logged 1.0 at chance level). Other losses keep
    tf_keras' shape rule.
12. TF1-graph idioms (``model._make_train_function``, ``model.total_loss``,
    ``model._feed_inputs``, ``K.gradients`` of a model's symbolic tensors, as
    in adversarial training, gradient penalty, virtual adversarial training
    and integrated gradients) exist only in Keras' graph-mode training loop.
    A script that uses them is detected: the ``__main__`` file (or the script
    given to ``bert4keras-blog run``) is read for ``TF1_GRAPH_IDIOMS`` and,
    if one is there, ``use_graph_mode()`` switches TensorFlow to graph mode
    before any model is built. ``BERT4KERAS_BLOG_GRAPH_MODE=1`` forces it,
    ``=0`` refuses it.
13. ``bert4keras.snippets.WebServing`` (the simbert serving example) asked
    for TF1's default graph and session, which TF 2's API no longer has; in
    eager mode it needs neither, in graph mode it takes them from tf.compat.v1.

Public API (re-exported by ``compat``):
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

import weakref

from bert4keras import snippets

from bert4keras_blog.compat import internals
from bert4keras_blog.compat.environment import tf

keras = tf.keras
_OUTPUTS = weakref.WeakKeyDictionary()  # MetricsContainer -> its outputs (flat)
_LOSSES = weakref.WeakKeyDictionary()  # MetricsContainer -> the loss given to compile

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


internals.DATA_ADAPTER.pack_x_y_sample_weight = _pack_x_y_sample_weight
internals.wrap_generator_batches(_generator_batches_as_in_keras_2)


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
            y_true = _targets_in_output_dtypes(
                internals.conform_targets(self, y_pred, y_true), y_pred)
        return method(self, y_true, y_pred, sample_weight, **kwargs)
    return call


_containers = internals.COMPILE_UTILS
_containers.LossesContainer.__call__ = _with_float_targets(_containers.LossesContainer.__call__)
_containers.MetricsContainer.update_state = _with_float_targets(
    _containers.MetricsContainer.update_state)

_ACCURACY_FOR_LOSS = {
    'binary_crossentropy': 'binary_accuracy',
    'sparse_categorical_crossentropy': 'sparse_categorical_accuracy',
    'categorical_crossentropy': 'categorical_accuracy',
}


def _loss_of_output(metrics_container, output):
    """The loss compiled for ``output``: one for all, or by position or name."""
    losses = _LOSSES.get(metrics_container)
    if not isinstance(losses, (dict, list, tuple)):
        return losses
    outputs = _OUTPUTS.get(metrics_container, [])
    index = next((i for i, o in enumerate(outputs) if o is output), None)
    if isinstance(losses, dict):
        names = internals.output_names(metrics_container) or []
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
        _OUTPUTS[self] = tf.nest.flatten(y_pred)
        return build(self, y_pred, y_true)
    return remember


def _remember_losses(compile_model):
    def compile_and_remember(self, optimizer='rmsprop', loss=None, *args, **kwargs):
        result = compile_model(self, optimizer, loss, *args, **kwargs)
        if getattr(self, 'compiled_metrics', None) is not None:
            _LOSSES[self.compiled_metrics] = loss
        return result
    return compile_and_remember


internals.wrap_metric_resolution(_accuracy_from_loss)
internals.wrap_metrics_build(_remember_outputs)
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
        self.sess = internals.TF_KERAS_BACKEND.get_session()
        self.set_session = internals.TF_KERAS_BACKEND.set_session


snippets.WebServing.__init__ = _web_serving_init

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
