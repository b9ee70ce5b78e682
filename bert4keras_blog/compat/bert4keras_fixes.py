"""bert4keras 0.11.5's own code made to work on tf_keras 2.21 (steps 4-6
and 8; step 7, the checked checkpoint loader, is installed by
``checkpoints.loading``). ``compat`` imports this module once, after
``environment``.

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
8. T5 decoders follow mesh TensorFlow (and Hugging Face, which is checked
   against it) instead of two bert4keras 0.11.5 defaults that change the
   outputs of released checkpoints: cross-attention gets no relative
   position bias (bert4keras reuses the self-attention bias there,
   ``cross_position_bias=True``), and the decoder output is not multiplied
   by d_model**-0.5 before an *untied* ``decoder/logits`` layer (t5.1.1,
   mt5.1.1; only tied T5 v1.0 scales). A config that sets
   ``cross_position_bias`` explicitly is obeyed. Set
   ``bert4keras_blog.compat.bert4keras_fixes.T5_BERT4KERAS_LEGACY = True`` before building to get
   bert4keras' behaviour back, e.g. for weights fine-tuned under it.

Public API:
    K: bert4keras' backend (tf_keras' ``K``), imported here first.
    T5_BERT4KERAS_LEGACY: set True before building to undo step 8.
"""
import sys

from bert4keras_blog.compat import internals
from bert4keras_blog.compat.environment import keras

__all__ = ['K', 'T5_BERT4KERAS_LEGACY']


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
from bert4keras import models  # noqa: E402

_import_bert4keras_optimizers()


def _adafactor_learning_rate(self):
    # Step 5: one learning-rate variable per optimizer, made on first use.
    rate = internals.adafactor_fixed_rate(self)
    if rate is None:
        return _adafactor_schedule.fget(self)
    if getattr(self, 'bert4keras_blog_learning_rate', None) is None:  # tracked by the optimizer
        with K.name_scope(self.__class__.__name__):
            self.bert4keras_blog_learning_rate = K.variable(rate, name='learning_rate')
    return self.bert4keras_blog_learning_rate


from bert4keras import optimizers  # noqa: E402

_adafactor_schedule = optimizers.AdaFactorBase.learning_rate
optimizers.AdaFactorBase.learning_rate = property(_adafactor_learning_rate)


def _fresh_unseeded_draws(random_generator_init):
    # Step 6: tf_keras initializers use a *stateless* generator whose seed is
    # fixed at the first call, so one unseeded instance repeats its values.
    # Unseeded generators draw from TensorFlow's stateful ops instead, as
    # Keras 2.3 did: fresh per call, reproducible under set_random_seed.
    def init_then_draw(self):
        if internals.unseeded_stateless(self):
            internals.use_legacy_stateful(self)
        return random_generator_init(self)
    return init_then_draw


internals.wrap_random_generator_init(_fresh_unseeded_draws)
# Its warning ("will return identical values each time") no longer holds.
internals.silence_initializer_reuse_warning()


T5_BERT4KERAS_LEGACY = False
_t5_decoder_init = models.T5_Decoder.__init__
_t5_decoder_apply = models.T5_Decoder.apply


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


models.T5_Decoder.__init__ = _t5_decoder_init_reference
models.T5_Decoder.apply = _t5_decoder_apply_unscaled
