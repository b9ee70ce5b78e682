"""Post 2: why the learning rate should not be too small.

Gradient descent with step h does not follow the gradient flow of L but,
to first order in h, that of L + (h/4)·|∇L|² (Barrett & Dherin, "Implicit
Gradient Regularization", 2020): a finite step penalises large gradients,
which favours flat minima. This module makes the penalty explicit and
measures the quantities involved.

Public API:
    GradientPenalty(model, penalty): keras.Model training ``model`` on
        L + penalty·|∇θL|² (double backprop in ``train_step``).
    igr_penalty(learning_rate) -> h/4, the coefficient gradient descent implies.
    loss_and_gradient_norm(model, x, y, loss_fn) -> (L, |∇θL|²) on the full data
    penalty_gradient(model, x, y, loss_fn) -> ∇θ|∇θL|², by double backprop
    sharpness(model, x, y, loss_fn, iterations=20) -> largest Hessian
        eigenvalue (power iteration on Hessian-vector products)
    GradientNormHistory(x, y, loss_fn, every=1): callback recording L and
        |∇L|² on the full training data
"""
import numpy as np

from bert4keras_blog.compat import keras, tf

__all__ = ['GradientPenalty', 'igr_penalty', 'loss_and_gradient_norm', 'penalty_gradient',
           'sharpness', 'GradientNormHistory']


def igr_penalty(learning_rate):
    """λ = h/4: the gradient penalty that plain gradient descent with step h implies."""
    return learning_rate / 4.0


def _loss(model, x, y, loss_fn, training=False):
    return tf.reduce_mean(loss_fn(y, model(x, training=training)))


def loss_and_gradient_norm(model, x, y, loss_fn):
    """(L, |∇θL|²) over the given data, both as floats."""
    with tf.GradientTape() as tape:
        loss = _loss(model, x, y, loss_fn)
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), float(sum(tf.reduce_sum(g ** 2) for g in grads))


def penalty_gradient(model, x, y, loss_fn):
    """∇θ |∇θL|², the extra gradient an explicit penalty adds (per unit λ)."""
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = _loss(model, x, y, loss_fn)
        grads = inner.gradient(loss, model.trainable_variables)
        norm = tf.add_n([tf.reduce_sum(g ** 2) for g in grads])
    return [g.numpy() for g in outer.gradient(norm, model.trainable_variables)]


def sharpness(model, x, y, loss_fn, iterations=20, seed=0):
    """Largest eigenvalue of the loss Hessian, by power iteration on
    Hessian-vector products (a sharpness measure of the minimum)."""
    variables = model.trainable_variables
    rng = np.random.default_rng(seed)
    vector = [tf.constant(rng.normal(size=v.shape), v.dtype) for v in variables]
    eigenvalue = 0.0
    for _ in range(iterations):
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(v ** 2) for v in vector]))
        vector = [v / norm for v in vector]
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = _loss(model, x, y, loss_fn)
            grads = inner.gradient(loss, variables)
            product = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vector)])
        hv = outer.gradient(product, variables)
        eigenvalue = float(tf.add_n([tf.reduce_sum(h * v) for h, v in zip(hv, vector)]))
        vector = hv
    return eigenvalue


class GradientPenalty(keras.Model):
    """Trains ``model`` on L + penalty·|∇θL|², L the compiled loss.

    Args:
        model: any Keras model.
        penalty: float. λ; ``igr_penalty(h)`` = h/4 is the implicit one of
            step h. 0 trains on L alone.

    Compile and fit the wrapper as you would the model; ``model`` shares the
    weights. Metrics: 'loss' (L), 'gradient_norm' (|∇L|² on the batch).

    Example:
    ```python
    import numpy as np
    from bert4keras_blog.compat import keras
    from bert4keras_blog.dynamics import GradientPenalty, igr_penalty
    net = keras.Sequential([keras.layers.Dense(8, activation='tanh', input_shape=(4,)),
                            keras.layers.Dense(1)])
    trainer = GradientPenalty(net, igr_penalty(0.5))
    trainer.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
    trainer.fit(np.ones((16, 4)), np.zeros((16, 1)), epochs=2, verbose=0)
    ```
    """

    def __init__(self, model, penalty, **kwargs):
        super().__init__(**kwargs)
        self.model, self.penalty = model, float(penalty)
        self.gradient_norm_tracker = keras.metrics.Mean(name='gradient_norm')

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.model.trainable_variables
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                prediction = self.model(x, training=True)
                loss = self.compiled_loss(y, prediction, sample_weight)
            grads = inner.gradient(loss, variables)
            norm = tf.add_n([tf.reduce_sum(g ** 2) for g in grads])
            total = loss + self.penalty * norm
        self.optimizer.apply_gradients(zip(outer.gradient(total, variables), variables))
        self.compiled_metrics.update_state(y, prediction, sample_weight)
        self.gradient_norm_tracker.update_state(norm)
        results = {m.name: m.result() for m in self.metrics}
        results['gradient_norm'] = self.gradient_norm_tracker.result()
        return results


class GradientNormHistory(keras.callbacks.Callback):
    """Records L and |∇L|² on the full training data every ``every`` epochs.

    ``history``: list of dicts with 'epoch', 'loss', 'gradient_norm'.
    Works on plain models and on ``GradientPenalty`` (measures its model).
    """

    def __init__(self, x, y, loss_fn, every=1):
        super().__init__()
        self.x, self.y, self.loss_fn, self.every = x, y, loss_fn, every
        self.history = []

    def _record(self, epoch):
        model = getattr(self.model, 'model', self.model)
        loss, norm = loss_and_gradient_norm(model, self.x, self.y, self.loss_fn)
        self.history.append({'epoch': epoch, 'loss': loss, 'gradient_norm': norm})

    def on_train_begin(self, logs=None):
        if not self.history:
            self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._record(epoch + 1)
