"""Post 5: SimSiam and BYOL, with the collapse measured.

SimSiam (Chen & He, 2020) trains an encoder f and projector g so that a
predictor h maps one view's output to the other's, with no negative pairs:
loss ½D(p1, sg(z2)) + ½D(p2, sg(z1)), D the negative cosine, sg the
stop-gradient. BYOL (Grill et al., 2020) does the same with a target network
that is an exponential moving average (EMA) of the online one. The post
explains through the dynamics of gradient descent why these do not collapse to
a constant; the ablations here (no stop-gradient, no predictor, a fixed
predictor) let you watch when they do.

Public API:
    projection_head(dim=64, hidden=64, layers=2, output_bn=True) -> keras.Sequential
    prediction_head(dim=64, hidden=16) -> keras.Sequential (bottleneck MLP)
    negative_cosine(p, z, stop_gradient=True) -> (batch,) tensor
    symmetric_loss(p1, p2, z1, z2, stop_gradient=True) -> scalar
    SimSiam(encoder, augment, projector=None, predictor='learned',
            stop_gradient=True): keras.Model with its own train_step
    BYOL(encoder, augment, projector=None, base_momentum=0.99): EMA target
    MomentumSchedule(base_momentum, total_steps): callback, cosine 0.99 -> 1
    CollapseMonitor(embed, x_train, y_train, x_test, y_test): per-epoch
        output std (vs 1/sqrt(d)), effective rank, kNN accuracy
    output_std(z), effective_rank(z), knn_accuracy(...): the measurements
"""
import numpy as np

from bert4keras_blog.compat import keras, tf
from bert4keras_blog.errors import BlogError, SettingError

__all__ = ['projection_head', 'prediction_head', 'negative_cosine', 'symmetric_loss', 'SimSiam',
           'BYOL', 'MomentumSchedule', 'CollapseMonitor', 'output_std', 'effective_rank',
           'knn_accuracy']


def projection_head(dim=64, hidden=64, layers=2, output_bn=True, name='projector'):
    """SimSiam's projector: (Dense, BN, ReLU) x (layers-1), then Dense (+ BN).

    ``output_bn=False`` drops the last BN. SimSiam still works without it (its
    paper, Table 4), while a batch-normalised output can never be one
    constant over a batch, which hides the complete collapse of the ablations.
    """
    blocks = []
    for _ in range(layers - 1):
        blocks += [keras.layers.Dense(hidden, use_bias=False), keras.layers.BatchNormalization(),
                   keras.layers.ReLU()]
    blocks.append(keras.layers.Dense(dim, use_bias=not output_bn))
    if output_bn:
        blocks.append(keras.layers.BatchNormalization())
    return keras.Sequential(blocks, name=name)


def prediction_head(dim=64, hidden=16, name='predictor'):
    """SimSiam's predictor: a bottleneck Dense-BN-ReLU, then Dense."""
    return keras.Sequential([keras.layers.Dense(hidden, use_bias=False),
                             keras.layers.BatchNormalization(), keras.layers.ReLU(),
                             keras.layers.Dense(dim)], name=name)


def _output_units(head):
    """Width of a head's last Dense layer (its output size)."""
    for layer in reversed(head.layers):
        if hasattr(layer, 'units'):
            return layer.units
    raise SettingError('cannot tell the output size of %s; pass a predictor' % head.name)


def _first(x, n=2):
    """The first n examples of an array or of each array in a list/tuple."""
    if isinstance(x, (list, tuple)):
        return [a[:n] for a in x]
    return x[:n]


class _Identity(keras.layers.Layer):
    """A fixed identity predictor (the 'identity' ablation)."""

    def call(self, inputs):
        return inputs


def negative_cosine(p, z, stop_gradient=True):
    """D(p, z) = -cos(p, z) per example; z is a constant when stop_gradient."""
    if stop_gradient:
        z = tf.stop_gradient(z)
    return -tf.reduce_sum(tf.math.l2_normalize(p, -1) * tf.math.l2_normalize(z, -1), -1)


def symmetric_loss(p1, p2, z1, z2, stop_gradient=True):
    """½D(p1, z2) + ½D(p2, z1), averaged over the batch."""
    return 0.5 * tf.reduce_mean(negative_cosine(p1, z2, stop_gradient)) + \
        0.5 * tf.reduce_mean(negative_cosine(p2, z1, stop_gradient))


class SimSiam(keras.Model):
    """SimSiam around any Keras encoder.

    Args:
        encoder: keras.Model, inputs -> (batch, features).
        augment: callable(x) -> a random view of the batch (called twice per
            step, in training mode).
        projector: keras.Model or None. Defaults to ``projection_head()``.
        predictor: 'learned' (default), 'none' (ablation), 'identity' (fixed
            identity) or a keras.Model (e.g. a frozen random one).
        stop_gradient: bool. The ablation sets False. Defaults to True.

    Fit it with ``fit(x, epochs=...)``; ``embed(x)`` gives the encoder's
    features, ``project(x)`` the projector's outputs. Subclass and override
    ``views`` or ``compute_loss_pair`` to change how views or losses are made.
    """

    def __init__(self, encoder, augment, projector=None, predictor='learned',
                 stop_gradient=True, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.augment = encoder, augment
        self.projector = projector or projection_head()
        if predictor == 'learned':
            predictor = prediction_head(_output_units(self.projector))
        elif predictor == 'identity':
            predictor = _Identity()
        elif predictor == 'none':
            predictor = None
        self.predictor, self.stop_gradient = predictor, stop_gradient
        self.loss_tracker = keras.metrics.Mean(name='loss')

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x, training=False):
        return self.projector(self.encoder(x, training=training), training=training)

    def views(self, x):
        return self.augment(x), self.augment(x)

    def online(self, view, training=True):
        z = self.projector(self.encoder(view, training=training), training=training)
        p = z if self.predictor is None else self.predictor(z, training=training)
        return z, p

    def targets(self, v1, v2, z1, z2):
        """The z each prediction is pulled towards: SimSiam's own outputs."""
        return z1, z2

    def compute_loss_pair(self, v1, v2):
        z1, p1 = self.online(v1)
        z2, p2 = self.online(v2)
        t1, t2 = self.targets(v1, v2, z1, z2)
        return symmetric_loss(p1, p2, t1, t2, self.stop_gradient)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        v1, v2 = self.views(x)
        with tf.GradientTape() as tape:
            loss = self.compute_loss_pair(v1, v2)
        variables = self.trainable_online_variables()
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.after_step()
        self.loss_tracker.update_state(loss)
        return {'loss': self.loss_tracker.result()}

    def trainable_online_variables(self):
        variables = self.encoder.trainable_variables + self.projector.trainable_variables
        if self.predictor is not None:
            variables += self.predictor.trainable_variables
        return variables

    def after_step(self):
        """Called after each update (BYOL moves its target here)."""

    def embed(self, x, batch_size=256):
        """Encoder features, in batches (inference mode)."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)

    def project(self, x, batch_size=256):
        """Projector outputs, in batches (inference mode)."""
        return self.predict(x, batch_size=batch_size, verbose=0)


class BYOL(SimSiam):
    """BYOL: the target is an EMA of the online encoder and projector.

    Args:
        encoder, augment, projector: as SimSiam.
        base_momentum: float. τ at the start; ``MomentumSchedule`` raises it
            towards 1. Defaults to 0.99.

    After every update: target ← τ·target + (1 − τ)·online, for every
    trainable weight of encoder and projector.
    """

    def __init__(self, encoder, augment, projector=None, base_momentum=0.99, **kwargs):
        super().__init__(encoder, augment, projector, predictor='learned', stop_gradient=True,
                         **kwargs)
        self.target_encoder = keras.models.clone_model(encoder)
        self.target_projector = keras.models.clone_model(self.projector)
        self.momentum = tf.Variable(base_momentum, trainable=False, dtype='float32',
                                    name='momentum')
        self._targets_synced = False

    def start(self, sample):
        """Builds online and target networks on ``sample`` and copies online
        into target. ``fit`` calls it with the first two examples of ``x``;
        call it yourself before fitting on a generator."""
        if self._targets_synced:
            return
        self.online(sample, training=False)
        self.target_projector(self.target_encoder(sample, training=False), training=False)
        for target, online in ((self.target_encoder, self.encoder),
                               (self.target_projector, self.projector)):
            target.set_weights(online.get_weights())
        self._targets_synced = True

    def fit(self, x=None, *args, **kwargs):
        if not self._targets_synced:
            if x is None or not hasattr(x, '__getitem__'):
                raise BlogError('call BYOL.start(sample_batch) before fitting on a generator')
            self.start(_first(x))
        return super().fit(x, *args, **kwargs)

    def targets(self, v1, v2, z1, z2):
        t1 = self.target_projector(self.target_encoder(v1, training=True), training=True)
        t2 = self.target_projector(self.target_encoder(v2, training=True), training=True)
        return t1, t2

    def target_variables(self):
        # Trainable weights only: batch-norm statistics of the target come from
        # its own forward passes in training mode and are not averaged.
        return self.target_encoder.trainable_weights + self.target_projector.trainable_weights

    def online_variables(self):
        return self.encoder.trainable_weights + self.projector.trainable_weights

    def after_step(self):
        tau = self.momentum
        for target, online in zip(self.target_variables(), self.online_variables()):
            target.assign(tau * target + (1.0 - tau) * online)


class MomentumSchedule(keras.callbacks.Callback):
    """BYOL's schedule: τ = 1 − (1 − τ_base)(cos(π k / K) + 1) / 2 at step k of K."""

    def __init__(self, base_momentum, total_steps):
        super().__init__()
        self.base, self.total, self.step = base_momentum, total_steps, 0

    def value(self, step):
        return 1 - (1 - self.base) * (np.cos(np.pi * min(step, self.total) / self.total) + 1) / 2

    def on_train_batch_begin(self, batch, logs=None):
        self.model.momentum.assign(self.value(self.step))
        self.step += 1


# ------------------------------------------------------------ measurements

def output_std(z):
    """Mean over dimensions of the std of the l2-normalised outputs.

    About 1/sqrt(d) for outputs spread over the sphere, 0 when collapsed.
    """
    z = np.asarray(z, dtype=float)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return float(z.std(axis=0).mean())


def effective_rank(z):
    """exp(entropy) of the normalised singular values of the centred outputs."""
    z = np.asarray(z, dtype=float)
    s = np.linalg.svd(z - z.mean(axis=0), compute_uv=False)
    if s.max() <= 1e-8 * max(1.0, np.abs(z).max()) * np.sqrt(len(z)):
        return 0.0  # all rows equal: rounding noise is not rank
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def knn_accuracy(train_features, train_labels, test_features, test_labels, k=5):
    """Cosine k-nearest-neighbour accuracy (majority vote)."""
    def unit(x):
        x = np.asarray(x, dtype=float)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = unit(test_features) @ unit(train_features).T
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    votes = np.asarray(train_labels)[neighbours]
    predicted = np.array([np.bincount(v).argmax() for v in votes])
    return float((predicted == np.asarray(test_labels)).mean())


class CollapseMonitor(keras.callbacks.Callback):
    """Records, after every epoch, how collapsed the representation is.

    Args:
        x_train, y_train: labelled data for the kNN probe's memory.
        x_test, y_test: labelled held-out data.
        k: int. Neighbours. Defaults to 5.

    Uses the model's ``project`` (std and rank of the projector outputs) and
    ``embed`` (kNN on the encoder features). ``history`` is a list of dicts
    with 'epoch', 'std', 'std_reference' (1/sqrt(d)), 'rank', 'knn'.
    """

    def __init__(self, x_train, y_train, x_test, y_test, k=5, verbose=True):
        super().__init__()
        self.data = (x_train, y_train, x_test, y_test)
        self.k, self.verbose, self.history = k, verbose, []

    def measure(self, model):
        x_train, y_train, x_test, y_test = self.data
        z = model.project(x_test)
        return {'std': output_std(z), 'std_reference': 1 / np.sqrt(z.shape[1]),
                'rank': effective_rank(z),
                'knn': knn_accuracy(model.embed(x_train), y_train, model.embed(x_test), y_test,
                                    self.k)}

    def on_train_begin(self, logs=None):
        if not self.history:
            self.history.append(dict(self.measure(self.model), epoch=0))

    def on_epoch_end(self, epoch, logs=None):
        record = dict(self.measure(self.model), epoch=epoch + 1,
                      loss=float((logs or {}).get('loss', np.nan)))
        self.history.append(record)
        if self.verbose:
            print('epoch %d: loss %.4f, output std %.4f (1/sqrt(d) = %.4f), rank %.1f, kNN %.3f'
                  % (record['epoch'], record['loss'], record['std'], record['std_reference'],
                     record['rank'], record['knn']))
