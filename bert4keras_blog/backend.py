"""Makes bert4keras 0.11.5 work on TensorFlow 2.21 + tf_keras (Keras 2 API).

This is the only module that touches environment variables, TensorFlow
internals or bert4keras quirks. Importing it (``import bert4keras_blog`` does)
is enough for plain bert4keras code to run unchanged.

Public API:
    keras, K, tf: the Keras 2 API (tf_keras), its backend, and TensorFlow.
    check_versions(): raise ``StackError`` if the wrong bert4keras or Keras
        is importable, naming the version found and the command that fixes it.
    stack_versions() -> dict: versions of the pieces that matter.
    use_graph_mode(): switch to Keras' graph-mode (v1) training loop (step 12).
    wants_graph_mode(script) -> bool: whether a script needs it.
    use_graph_mode_if_wanted(script) -> bool: switch if it does, saying why.
    tf1_graph_idioms(path) -> list of str: the idioms a file uses.
    TF1_GRAPH_IDIOMS, GRAPH_MODE_ENV: what is looked for, and the override.

What it does, in order (each step is needed, see ../shared/STACK_NOTES.md):
1. ``TF_KERAS=1`` and ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads, so
   bert4keras picks tf.keras and tf.keras is tf_keras, not Keras 3. Also
   ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1``: on CPUs where TensorFlow turns
   oneDNN on (AVX-512 VNNI/BF16, AMX), its CPU allocator is otherwise a pool
   that keeps every freed block, so loading mT5-small (1.2 GB of weights)
   left 2.6 GB resident, and a freed 256 MB tensor stayed resident; with
   malloc both go back. Set it to 0 before importing to keep the pool.
2. A ``distutils.util.strtobool`` stand-in on Python 3.12+, where
   ``distutils`` is gone (bert4keras' backend imports it).
3. ``tf.keras`` is resolved before bert4keras does
   ``sys.modules['keras'] = tf.keras``; TensorFlow's lazy loader otherwise
   recurses forever.
4. ``bert4keras.optimizers`` is imported while ``keras.optimizers.Optimizer``
   points at the legacy OptimizerV2 base it was written for (``_set_hyper``,
   ``_resource_apply_dense``); the name is restored right after, so tf_keras'
   own optimizers are untouched.
5. ``AdaFactor`` with a fixed learning rate: bert4keras tests
   ``hasattr(self, '__learning_rate')`` but stores a name-mangled attribute,
   so it makes a new variable on every call, which ``tf.function`` (every
   ``fit`` on TF 2) refuses. The variable is made once and kept.
6. Random initialisation: tf_keras 2.x initializers draw from a stateless
   generator seeded once, so an unseeded instance called twice returns the
   *same* values. bert4keras hands one instance to several weights (q, k and
   v kernels of ``MultiHeadAttention``, both kernels of ``FeedForward``, the
   two dense layers of ``EfficientGlobalPointer``), which then started
   identical or as rescaled copies. Unseeded initializers now draw fresh
   values per call, as Keras 2.3 did, reproducibly under
   ``keras.utils.set_random_seed``; seeded ones still repeat.
7. ``Transformer.load_weights_from_checkpoint`` reports a missing variable or
   a shape that disagrees with the config as ``CheckpointMismatchError``
   naming the layer, the variable and both shapes; a cut, corrupted or
   missing data file as ``CheckpointError`` naming the file; and it warns
   when the checkpoint holds layers the config leaves unused.
8. T5 decoders follow mesh TensorFlow (and Hugging Face, which is checked
   against it) instead of two bert4keras 0.11.5 defaults that change the
   outputs of released checkpoints: cross-attention gets no relative
   position bias (bert4keras reuses the self-attention bias there,
   ``cross_position_bias=True``), and the decoder output is not multiplied
   by d_model**-0.5 before an *untied* ``decoder/logits`` layer (t5.1.1,
   mt5.1.1; only tied T5 v1.0 scales). A config that sets
   ``cross_position_bias`` explicitly is obeyed. Set
   ``backend.T5_BERT4KERAS_LEGACY = True`` before building to get
   bert4keras' behaviour back, e.g. for weights fine-tuned under it.

Steps 9-13 make bert4keras' own examples, written for Keras 2.3.1, behave as
they did there:

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

Steps 14-22 (``keras23_backend.py``, audited function by function in
``docs/compat.md``) give Keras 2.3.1's backend functions and training API
where tf_keras differs: ``K.zeros``/``ones``/``eye`` inside a traced loss,
``K.arange`` of a tensor, bilinear ``resize_images``, ``ctc_decode``'s width,
the functions tf_keras dropped, layer names counted from 1,
``metrics_names`` after compile, HDF5 ``save_weights``, ``class_weight``
with generator sample weights, and ``EarlyStopping``'s restore.
"""
import os
import sys
import types
import warnings

os.environ.setdefault('TF_KERAS', '1')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ONEDNN_USE_SYSTEM_ALLOCATOR', '1')

from bert4keras_blog.errors import CheckpointMismatchError, StackError  # noqa: E402

REQUIRED_BERT4KERAS = '0.11.5'
FIX_BERT4KERAS = 'pip install --no-deps bert4keras==%s' % REQUIRED_BERT4KERAS
FIX_KERAS = 'pip install "tensorflow==2.21.*" "tf-keras==2.21.*"'

__all__ = ['keras', 'K', 'tf', 'check_versions', 'stack_versions', 'StackError',
           'use_graph_mode', 'use_graph_mode_if_wanted', 'wants_graph_mode', 'tf1_graph_idioms',
           'TF1_GRAPH_IDIOMS', 'GRAPH_MODE_ENV']


def _provide_distutils_strtobool():
    """bert4keras imports distutils.util.strtobool, removed in Python 3.12."""
    try:
        from distutils.util import strtobool  # noqa: F401
        return
    except ImportError:
        pass

    def strtobool(value):
        value = value.lower()
        if value in ('y', 'yes', 't', 'true', 'on', '1'):
            return 1
        if value in ('n', 'no', 'f', 'false', 'off', '0'):
            return 0
        raise ValueError('invalid truth value %r' % (value,))

    distutils = sys.modules.setdefault('distutils', types.ModuleType('distutils'))
    util = types.ModuleType('distutils.util')
    util.strtobool = strtobool
    distutils.util = util
    sys.modules['distutils.util'] = util


def _installed_version(distribution):
    from importlib import metadata
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_versions():
    """Raises StackError if bert4keras or Keras is not the version we need."""
    found = _installed_version('bert4keras')
    if found is None:
        raise StackError('bert4keras is not installed; run: %s' % FIX_BERT4KERAS)
    if found != REQUIRED_BERT4KERAS:
        raise StackError(
            'bert4keras %s is installed, bert4keras-blog needs %s '
            '(a plain `pip install bert4keras` picks 0.8.1 next to TensorFlow 2.21); '
            'run: %s' % (found, REQUIRED_BERT4KERAS, FIX_BERT4KERAS))
    tf_keras_version = _installed_version('tf-keras') or _installed_version('tf_keras')
    if tf_keras_version is None:
        raise StackError('tf_keras (the Keras 2 API) is not installed; run: %s' % FIX_KERAS)
    keras_version = _installed_version('keras')
    if keras_version is not None and int(keras_version.split('.')[0]) < 3:
        raise StackError(
            'keras %s is installed (bert4keras\' old keras<=2.3.1 pin pulls it in); '
            'TensorFlow 2.21 needs keras 3 beside tf_keras; run: %s'
            % (keras_version, FIX_KERAS))


_provide_distutils_strtobool()
check_versions()
_early = sys.modules.get('bert4keras.backend')
if _early is not None and not getattr(_early, 'is_tf_keras', False):
    raise StackError('bert4keras was imported before bert4keras_blog, so it bound itself to '
                     'Keras 3 and cannot work; put `import bert4keras_blog` before any '
                     'bert4keras import')


class _NativeLogsSilenced(object):
    """TensorFlow's C++ runtime prints start-up notes (oneDNN, CUDA probing)
    straight to file descriptor 2 while it loads, before any Python setting
    can stop them. They are hidden during the import only; Python errors
    still surface. BERT4KERAS_BLOG_TF_LOGS=1 shows them."""

    def __enter__(self):
        self.saved = None
        if os.environ.get('BERT4KERAS_BLOG_TF_LOGS') == '1':
            return self
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # no real stderr (some notebooks): nothing to hide
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


with _NativeLogsSilenced():
    import tensorflow as tf  # noqa: E402
    # Step 3: resolve the lazy module now; bert4keras then aliases a real module.
    keras = tf.keras
    keras.layers  # noqa: B018  (touching an attribute finishes the lazy import)
    tf.config.list_physical_devices()  # CUDA probing logs here, once
if not keras.__name__.startswith('tf_keras') and 'tf_keras' not in getattr(keras, '__file__', ''):
    raise StackError(
        'tf.keras resolved to %s instead of tf_keras; TF_USE_LEGACY_KERAS=1 must be '
        'set before TensorFlow is imported: import bert4keras_blog first' % keras.__name__)


def _import_bert4keras_optimizers():
    """Imports bert4keras.optimizers on the legacy OptimizerV2 base (step 4)."""
    if 'bert4keras.optimizers' in sys.modules:
        return
    current = keras.optimizers.Optimizer
    keras.optimizers.Optimizer = keras.optimizers.legacy.Optimizer
    try:
        import bert4keras.optimizers  # noqa: F401
    finally:
        keras.optimizers.Optimizer = current


import bert4keras.backend  # noqa: E402,F401  (does sys.modules['keras'] = tf.keras)
from bert4keras.backend import K  # noqa: E402
from bert4keras import models as _models  # noqa: E402

_import_bert4keras_optimizers()


def _adafactor_learning_rate(self):
    # Step 5: one learning-rate variable per optimizer, made on first use.
    if self._learning_rate is None:
        return _adafactor_schedule.fget(self)
    if getattr(self, '_fixed_learning_rate', None) is None:
        with K.name_scope(self.__class__.__name__):
            self._fixed_learning_rate = K.variable(self._learning_rate, name='learning_rate')
    return self._fixed_learning_rate


from bert4keras import optimizers as _optimizers  # noqa: E402

_adafactor_schedule = _optimizers.AdaFactorBase.learning_rate
_optimizers.AdaFactorBase.learning_rate = property(_adafactor_learning_rate)


def _fresh_unseeded_draws(random_generator_init):
    # Step 6: tf_keras initializers use a *stateless* generator whose seed is
    # fixed at the first call, so one unseeded instance repeats its values.
    # Unseeded generators draw from TensorFlow's stateful ops instead, as
    # Keras 2.3 did: fresh per call, reproducible under set_random_seed.
    def _maybe_init(self):
        if not self._built and self._seed is None and self._rng_type == self.RNG_STATELESS:
            self._rng_type = self.RNG_LEGACY_STATEFUL
        return random_generator_init(self)
    return _maybe_init


from tf_keras.src import backend as _tf_keras_backend  # noqa: E402

_tf_keras_backend.RandomGenerator._maybe_init = _fresh_unseeded_draws(
    _tf_keras_backend.RandomGenerator._maybe_init)
# Its warning ("will return identical values each time") no longer holds.
keras.initializers.Initializer._warn_reuse = lambda self: None


def _explain_checkpoint_failure(transformer, checkpoint, mapping):
    """Finds the first variable that is missing or has the wrong shape."""
    mapping = mapping or transformer.variable_mapping()
    for layer_name, names in mapping.items():
        layer = transformer.layers.get(transformer.prefixed(layer_name))
        if layer is None:
            continue
        for weight, name in zip(layer.trainable_weights, names):
            try:
                value = transformer.load_variable(checkpoint, name)
            except (KeyError, ValueError, tf.errors.NotFoundError):
                raise CheckpointMismatchError(
                    checkpoint, name, layer=layer.name, reason='missing') from None
            expected = tuple(K.int_shape(weight))
            if tuple(value.shape) != expected:
                raise CheckpointMismatchError(
                    checkpoint, name, layer=layer.name,
                    found=tuple(value.shape), expected=expected)
    return None


_load_weights_from_checkpoint = _models.Transformer.load_weights_from_checkpoint


def _checked_load_weights_from_checkpoint(self, checkpoint, mapping=None):
    # Runs bert4keras' own loader; only when it fails do we look for the
    # file or variable to blame, so a good checkpoint is read exactly once.
    from bert4keras_blog.checkpoints import integrity
    try:
        loaded = _load_weights_from_checkpoint(self, checkpoint, mapping)
    except (ValueError, KeyError, IndexError, tf.errors.OpError) as error:
        integrity.explain_load_failure(checkpoint, error)
        if not self.autoresize_weights and not self.ignore_invalid_weights:
            _explain_checkpoint_failure(self, checkpoint, mapping)
        raise
    if isinstance(checkpoint, str):
        try:  # fewer layers than the checkpoint holds is legal, but rarely meant
            integrity.check_layers(checkpoint, {'num_hidden_layers': self.num_hidden_layers})
        except CheckpointMismatchError as unused:
            warnings.warn(str(unused))
    return loaded


_models.Transformer.load_weights_from_checkpoint = _checked_load_weights_from_checkpoint

T5_BERT4KERAS_LEGACY = False
_t5_decoder_init = _models.T5_Decoder.__init__
_t5_decoder_apply = _models.T5_Decoder.apply


def _t5_decoder_init_reference(self, with_lm=True, cross_position_bias=None, **kwargs):
    # Step 8: no relative bias in cross-attention unless a config asks for it.
    if cross_position_bias is None:
        cross_position_bias = T5_BERT4KERAS_LEGACY
    _t5_decoder_init(self, with_lm=with_lm, cross_position_bias=cross_position_bias, **kwargs)


def _t5_decoder_apply_unscaled(self, inputs=None, layer=None, arguments=None, **kwargs):
    # Step 8: untied logits (t5.1.1, mt5.1.1) see the decoder output unscaled.
    if (kwargs.get('name') == 'Decoder-Output-Scale' and self.version != 't5.1.0'
            and not T5_BERT4KERAS_LEGACY):
        kwargs['scale'] = 1.0
    return _t5_decoder_apply(self, inputs, layer, arguments, **kwargs)


_models.T5_Decoder.__init__ = _t5_decoder_init_reference
_models.T5_Decoder.apply = _t5_decoder_apply_unscaled


# Steps 9-13 live beside this module (Keras 2.3 behaviour for bert4keras'
# examples); step 12's detection runs last, once everything is patched.
from bert4keras_blog.keras23 import (  # noqa: E402
    GRAPH_MODE_ENV, TF1_GRAPH_IDIOMS, tf1_graph_idioms, use_graph_mode, use_graph_mode_if_wanted,
    wants_graph_mode)
import bert4keras_blog.keras23_backend  # noqa: E402,F401 (steps 14-22)

use_graph_mode_if_wanted(getattr(sys.modules.get('__main__'), '__file__', None))


def stack_versions():
    """Returns {name: version} for Python, TensorFlow, tf_keras, bert4keras, numpy."""
    import platform
    import numpy
    import bert4keras
    return {
        'python': platform.python_version(),
        'tensorflow': tf.__version__,
        'tf_keras': keras.__version__ if hasattr(keras, '__version__') else
        _installed_version('tf-keras'),
        'bert4keras': bert4keras.__version__,
        'numpy': numpy.__version__,
    }
