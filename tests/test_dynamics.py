"""Post 2: the explicit gradient penalty and the measurements."""
import numpy as np
import pytest

from bert4keras_blog.compat import keras, tf
from bert4keras_blog.dynamics import (
    GradientNormHistory, GradientPenalty, igr_penalty, loss_and_gradient_norm, penalty_gradient,
    sharpness)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Dense(5, activation='tanh', input_shape=(3,),
                                                 dtype='float64'),
                              keras.layers.Dense(2, dtype='float64')])
    return model


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(20, 3)), rng.normal(size=(20, 2))


def mse(y, p):
    return tf.reduce_mean((y - p) ** 2, axis=-1)


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def test_penalty_gradient_matches_finite_differences():
    model, (x, y) = tiny_model(), data()
    analytic = flat(penalty_gradient(model, x, y, mse))
    rng = np.random.default_rng(1)
    direction = [rng.normal(size=v.shape) for v in model.trainable_variables]
    original = [v.numpy() for v in model.trainable_variables]
    eps = 1e-5

    def norm_at(sign):
        for v, o, d in zip(model.trainable_variables, original, direction):
            v.assign(o + sign * eps * d)
        return loss_and_gradient_norm(model, x, y, mse)[1]

    numeric = (norm_at(+1) - norm_at(-1)) / (2 * eps)
    for v, o in zip(model.trainable_variables, original):
        v.assign(o)
    assert abs(numeric - analytic @ flat(direction)) < 1e-6 * max(1, abs(numeric))
    assert abs(numeric) > 1e-3


def test_wrapper_step_is_loss_plus_penalty_gradient():
    model, (x, y) = tiny_model(), data()
    penalty = 0.3
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(mse(y, model(x)))
    plain = flat(tape.gradient(loss, model.trainable_variables))
    expected_step = plain + penalty * flat(penalty_gradient(model, x, y, mse))
    before = flat([v.numpy() for v in model.trainable_variables])
    trainer = GradientPenalty(model, penalty)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
    trainer.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    after = flat([v.numpy() for v in model.trainable_variables])
    # SGD runs its learning rate in float32: agreement to ~1e-9 here.
    np.testing.assert_allclose(before - after, 0.1 * expected_step, rtol=1e-5, atol=1e-9)


def test_penalty_lowers_the_gradient_norm_at_equal_steps():
    x, y = data()
    norms = {}
    for penalty in (0.0, igr_penalty(2.0)):
        model = tiny_model()
        trainer = GradientPenalty(model, penalty)
        trainer.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
        trainer.fit(x, y, batch_size=20, epochs=200, verbose=0)
        norms[penalty] = loss_and_gradient_norm(model, x, y, mse)[1]
    assert norms[0.5] < norms[0.0]
    assert igr_penalty(0.8) == pytest.approx(0.2)


def test_sharpness_is_the_top_hessian_eigenvalue():
    # L(w) = mean over two points of (a·w)²: Hessian = 2·mean(a aᵀ), known eigenvalues.
    model = keras.Sequential([keras.layers.Dense(1, use_bias=False, input_shape=(2,),
                                                 dtype='float64')])
    x = np.array([[3.0, 0.0], [0.0, 1.0]])
    y = np.zeros((2, 1))
    assert sharpness(model, x, y, mse, iterations=50) == pytest.approx(9.0, rel=1e-6)


def test_gradient_norm_history_records_each_epoch():
    model, (x, y) = tiny_model(), data()
    history = GradientNormHistory(x, y, mse)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
    model.fit(x, y, epochs=3, verbose=0, callbacks=[history])
    assert [h['epoch'] for h in history.history] == [0, 1, 2, 3]
    assert history.history[-1]['loss'] < history.history[0]['loss']
