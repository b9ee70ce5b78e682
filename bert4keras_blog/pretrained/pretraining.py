"""One pre-training step as a Keras ``train_step``: ELECTRA (generator MLM
plus replaced-token detection) and the masked-LM baseline.

Public API: ElectraPretraining, MaskedLMPretraining (see ``pretrained``).
"""
from bert4keras_blog.compat import K, keras, tf

__all__ = ['ElectraPretraining', 'MaskedLMPretraining']


def _mask_tokens(token_ids, mask_id, special_ids, rate):
    """Chooses ``rate`` of the real tokens (not padding, not ``special_ids``)
    and puts ``mask_id`` there. Returns (masked ids, chosen positions)."""
    token_ids = tf.cast(token_ids, 'int32')
    candidates = token_ids > 0
    for special in special_ids:
        candidates = tf.logical_and(candidates, token_ids != special)
    chosen = tf.logical_and(candidates, tf.random.uniform(tf.shape(token_ids)) < rate)
    return tf.where(chosen, mask_id, token_ids), chosen


def _masked_lm_loss(probabilities, token_ids, chosen):
    loss = K.sparse_categorical_crossentropy(token_ids, probabilities)
    weights = tf.cast(chosen, loss.dtype)
    return tf.reduce_sum(loss * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


class _Pretraining(keras.Model):
    """Shared train_step: ``losses_for(token_ids, segment_ids)`` gives a dict
    with 'loss' (optimised) and whatever else to report."""

    def __init__(self, mask_id, special_ids, rate, **kwargs):
        super().__init__(**kwargs)
        self.mask_id, self.special_ids, self.rate = mask_id, tuple(special_ids), rate
        self.trackers = {}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        token_ids, segment_ids = tf.cast(x[0], 'int32'), x[1]
        with tf.GradientTape() as tape:
            losses = self.losses_for(token_ids, segment_ids)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses['loss'], variables), variables))
        for name, value in losses.items():
            if name not in self.trackers:
                self.trackers[name] = keras.metrics.Mean(name=name)
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


class ElectraPretraining(_Pretraining):
    """One ELECTRA step per batch of ``[token_ids, segment_ids]``.

    ``rate`` of the tokens are masked; the generator (an MLM, a quarter of
    the discriminator's size in Google's recipe) predicts them; its samples
    (no gradient through sampling) replace the masked tokens; the
    discriminator tells, at every real position, whether the token was
    replaced. Loss = generator MLM + ``rtd_weight`` x discriminator binary
    cross-entropy (50 in the paper). Both networks share their embeddings
    (``build_electra_pair``).

    Args:
        discriminator, generator: from ``build_electra_pair``.
        mask_id: int. ``[MASK]``.
        special_ids: ids never masked (``[CLS]``, ``[SEP]``).
        rate: float. Share of tokens masked. Defaults to 0.15.
        rtd_weight: float. Defaults to 50.

    Compile with an optimizer and ``fit`` on ``[token_ids, segment_ids]``.
    Metrics: loss, mlm_loss, rtd_loss, rtd_accuracy.
    """

    def __init__(self, discriminator, generator, mask_id, special_ids=(), rate=0.15,
                 rtd_weight=50.0, **kwargs):
        super().__init__(mask_id, special_ids, rate, **kwargs)
        self.discriminator_model, self.generator_model = discriminator.model, generator.model
        self.rtd_weight = rtd_weight

    def losses_for(self, token_ids, segment_ids):
        masked, chosen = _mask_tokens(token_ids, self.mask_id, self.special_ids, self.rate)
        probabilities = self.generator_model([masked, segment_ids], training=True)
        mlm = _masked_lm_loss(probabilities, token_ids, chosen)
        log_probabilities = tf.math.log(
            tf.reshape(probabilities, [-1, tf.shape(probabilities)[-1]]) + 1e-9)
        sampled = tf.reshape(tf.random.categorical(log_probabilities, 1, dtype='int32'),
                             tf.shape(token_ids))
        corrupted = tf.stop_gradient(tf.where(chosen, sampled, token_ids))
        replaced = tf.cast(tf.not_equal(corrupted, token_ids), 'float32')
        logits = self.discriminator_model([corrupted, segment_ids], training=True)[..., 0]
        real = tf.cast(token_ids > 0, 'float32')
        bce = tf.nn.sigmoid_cross_entropy_with_logits(replaced, logits)
        rtd = tf.reduce_sum(bce * real) / tf.reduce_sum(real)
        right = tf.cast(tf.equal(tf.cast(logits > 0, 'float32'), replaced), 'float32')
        return {'loss': mlm + self.rtd_weight * rtd, 'mlm_loss': mlm, 'rtd_loss': rtd,
                'rtd_accuracy': tf.reduce_sum(right * real) / tf.reduce_sum(real)}


class MaskedLMPretraining(_Pretraining):
    """The MLM-only baseline (BERT's objective) with the same masking.

    Args: ``transformer`` (bert4keras object built with ``with_mlm=True``),
    then as ``ElectraPretraining``. Metrics: loss, mlm_loss.
    """

    def __init__(self, transformer, mask_id, special_ids=(), rate=0.15, **kwargs):
        super().__init__(mask_id, special_ids, rate, **kwargs)
        self.mlm_model = transformer.model

    def losses_for(self, token_ids, segment_ids):
        masked, chosen = _mask_tokens(token_ids, self.mask_id, self.special_ids, self.rate)
        probabilities = self.mlm_model([masked, segment_ids], training=True)
        mlm = _masked_lm_loss(probabilities, token_ids, chosen)
        return {'loss': mlm, 'mlm_loss': mlm}
