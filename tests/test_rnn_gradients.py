"""Post 8: Jacobians by autodiff equal the formulas; rates follow the weights."""
import numpy as np
import pytest

from bert4keras_blog.compat import keras, tf
from bert4keras_blog.rnn_gradients import (
    analytic_step_jacobians, cell_of, fit_decay_rate, gradient_by_step, state_jacobian_norms,
    step_jacobians, unroll)


def random_layer(kind, units=5, features=4, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    layer = getattr(keras.layers, kind)(units, dtype='float64', **kwargs)
    layer.cell.build(tf.TensorShape([None, features]))
    for w in layer.cell.trainable_weights:
        w.assign(rng.normal(0, 0.6, w.shape))
    return layer


def inputs(batch=3, steps=9, features=4, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, steps, features))


@pytest.mark.parametrize('kind, kwargs', [
    ('SimpleRNN', {}), ('SimpleRNN', {'activation': 'linear'}), ('LSTM', {}),
    ('GRU', {}), ('GRU', {'reset_after': False}), ('LSTM', {'use_bias': False})])
def test_autodiff_equals_the_formulas(kind, kwargs):
    layer = random_layer(kind, **kwargs)
    x = inputs()
    autodiff = step_jacobians(layer, x)
    formula = analytic_step_jacobians(layer, x)
    n = 10 if kind == 'LSTM' else 5
    assert autodiff.shape == formula.shape == (9, 3, n, n)
    assert np.abs(autodiff - formula).max() <= 1e-5
    assert np.abs(formula).max() > 0.1  # not trivially zero


def test_tape_over_the_unroll_equals_the_product_of_steps():
    layer = random_layer('LSTM')
    x = inputs()
    steps = step_jacobians(layer, x)
    norms = state_jacobian_norms(layer, x)
    product = np.eye(10)[None].repeat(3, 0)
    for distance in range(1, 10):
        product = product @ steps[9 - distance]
        spectral = np.linalg.norm(product, 2, axis=(1, 2)).mean()
        np.testing.assert_allclose(norms['spectral'][distance - 1], spectral, rtol=1e-10)
    assert norms['step_spectra'].shape == (9, 3, 10)


def linear_rnn(rho, units=6, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(units, units)))
    layer = keras.layers.SimpleRNN(units, activation='linear', dtype='float64')
    layer.cell.build(tf.TensorShape([None, 3]))
    layer.cell.recurrent_kernel.assign(rho * q)
    return layer


def test_orthogonal_linear_rnn_keeps_the_norm():
    norms = state_jacobian_norms(linear_rnn(1.0), inputs(2, 40, 3))
    np.testing.assert_allclose(norms['spectral'], 1.0, atol=1e-9)
    np.testing.assert_allclose(norms['frobenius'], np.sqrt(6), atol=1e-9)


@pytest.mark.parametrize('rho', [0.8, 0.95, 1.07])
def test_decay_rate_is_the_spectral_radius(rho):
    norms = state_jacobian_norms(linear_rnn(rho), inputs(2, 30, 3))
    assert abs(fit_decay_rate(norms['spectral']) - rho) < 1e-6
    np.testing.assert_allclose(norms['spectral'], rho ** np.arange(1, 31), rtol=1e-8)


def test_gradient_is_the_sum_of_the_steps_shares():
    layer = random_layer('GRU')
    x = inputs()
    result = gradient_by_step(layer, x, lambda s: tf.reduce_sum(s ** 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(unroll(layer, x)[-1] ** 2)
    expected = tape.gradient(loss, layer.cell.trainable_weights)
    for total, g in zip(result['total'], expected):
        np.testing.assert_allclose(total, g.numpy(), atol=1e-10)
    assert len(result['per_step']) == 9 and result['norms'].shape == (9,)
    # The last step's share needs no long path; the first one's went through all 9.
    assert result['norms'][-1] > 0 and result['norms'][0] > 0
    # The cell's own weights are back after the copies were used.
    assert all(w is v for w, v in zip(layer.cell.trainable_weights,
                                       [layer.cell.kernel, layer.cell.recurrent_kernel,
                                        layer.cell.bias]))


class MinimalCell(keras.layers.Layer):
    """A user's own cell: h_t = tanh(x W + h U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name='w')
        self.u = self.add_weight(shape=(self.units, self.units), name='u',
                                 initializer='orthogonal')
        self.built = True

    def call(self, inputs, states, training=None):
        h = tf.tanh(tf.matmul(inputs, self.w) + tf.matmul(states[0], self.u))
        return h, [h]


def test_custom_cells_work_by_autodiff():
    layer = keras.layers.RNN(MinimalCell(4))
    x = inputs(2, 12, 3).astype('float32')
    norms = state_jacobian_norms(layer, x)
    assert norms['spectral'].shape == (12,) and np.all(norms['spectral'] > 0)
    cell = cell_of(layer)
    states = unroll(layer, x)
    expected = (1 - states[1].numpy() ** 2)[:, :, None] * cell.u.numpy().T[None]
    np.testing.assert_allclose(step_jacobians(layer, x)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match='no formula'):
        analytic_step_jacobians(layer, x)


def test_fit_decay_rate_recovers_a_geometric_sequence():
    assert abs(fit_decay_rate(3.0 * 0.7 ** np.arange(1, 50)) - 0.7) < 1e-12
    assert abs(fit_decay_rate(np.r_[[5, 9, 1], 0.5 ** np.arange(4, 30)], skip=3) - 0.5) < 1e-12
