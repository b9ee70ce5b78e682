"""Post 5: stop-gradient, BYOL's EMA, the collapse measurements, text encoders."""
import numpy as np
import pytest

from bert4keras_blog.compat import keras, tf
from bert4keras_blog.simsiam import (
    BYOL, CollapseMonitor, MomentumSchedule, SimSiam, effective_rank, knn_accuracy,
    negative_cosine, output_std, projection_head, symmetric_loss)


def small_encoder(features=6, out=8):
    inputs = keras.Input((features,))
    return keras.Model(inputs, keras.layers.Dense(out, activation='relu')(inputs))


def noisy(x):
    return x + tf.random.normal(tf.shape(x), stddev=0.1)


def test_stop_gradient_branch_gets_zero_gradient():
    p1, p2 = tf.Variable(np.random.randn(4, 5)), tf.Variable(np.random.randn(4, 5))
    z1, z2 = tf.Variable(np.random.randn(4, 5)), tf.Variable(np.random.randn(4, 5))
    with tf.GradientTape(persistent=True) as tape:
        stopped = symmetric_loss(p1, p2, z1, z2, stop_gradient=True)
        flowing = symmetric_loss(p1, p2, z1, z2, stop_gradient=False)
    for z in (z1, z2):
        g = tape.gradient(stopped, z)
        assert g is None or np.all(g.numpy() == 0)
        assert np.abs(tape.gradient(flowing, z).numpy()).max() > 1e-3
    assert np.abs(tape.gradient(stopped, p1).numpy()).max() > 1e-3
    # D is the negative cosine: -1 for identical directions.
    np.testing.assert_allclose(negative_cosine(p1, 3.0 * p1).numpy(), -1.0, rtol=1e-12)


def test_simsiam_updates_online_networks_through_p_only():
    """The loss's gradient equals the gradient with z1, z2 replaced by
    constants: nothing flows back through the targets, all through p."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    v1, v2 = (tf.constant(rng.normal(size=(16, 6)), 'float32') for _ in range(2))

    def gradients(model, constant_targets):
        variables = model.trainable_online_variables()
        z1, z2 = model.online(v1)[0], model.online(v2)[0]  # computed outside the tape
        with tf.GradientTape() as tape:
            if constant_targets:
                p1, p2 = model.online(v1)[1], model.online(v2)[1]
                loss = symmetric_loss(p1, p2, tf.constant(z1), tf.constant(z2))
            else:
                loss = model.compute_loss_pair(v1, v2)
        return [g.numpy() for g in tape.gradient(loss, variables)]

    for stop_gradient in (True, False):
        model = SimSiam(small_encoder(), noisy, projection_head(8, 8),
                        stop_gradient=stop_gradient)
        model.online(v1)  # builds the predictor too
        ours, through_p = gradients(model, False), gradients(model, True)
        same = all(np.allclose(a, b, atol=1e-7) for a, b in zip(ours, through_p))
        assert same == stop_gradient  # the ablation's gradient also flows through z
        assert max(np.abs(g).max() for g in ours) > 1e-4
    keras.utils.set_random_seed(0)
    model = SimSiam(small_encoder(), noisy, projection_head(8, 8))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = rng.normal(size=(32, 6)).astype('float32')
    history = model.fit(x, epochs=3, batch_size=16, verbose=0).history['loss']
    assert all(-1.0 <= v <= 1.0 for v in history) and history[-1] < history[0]


def test_byol_target_follows_the_ema_formula_exactly():
    keras.utils.set_random_seed(0)
    model = BYOL(small_encoder(), noisy, projection_head(8, 8), base_momentum=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x = np.random.default_rng(0).normal(size=(16, 6)).astype('float32')
    model.start(x[:2])
    for t, o in zip(model.target_variables(), model.online_variables()):
        np.testing.assert_array_equal(t.numpy(), o.numpy())  # target starts as online
    before_target = [v.numpy().copy() for v in model.target_variables()]
    model.fit(x, epochs=1, batch_size=16, verbose=0)  # one step
    online = [v.numpy() for v in model.online_variables()]
    changed = 0
    for t_old, t_new, o in zip(before_target, model.target_variables(), online):
        np.testing.assert_allclose(t_new.numpy(), 0.9 * t_old + 0.1 * o, rtol=1e-6, atol=1e-7)
        changed += not np.allclose(t_old, o)
    assert changed > 0  # the online network moved, so the formula was really exercised


def test_momentum_schedule_is_cosine_to_one():
    schedule = MomentumSchedule(0.99, total_steps=100)
    assert schedule.value(0) == pytest.approx(0.99)
    assert schedule.value(50) == pytest.approx(0.995)
    assert schedule.value(100) == pytest.approx(1.0)


def test_collapse_measures():
    rng = np.random.default_rng(0)
    d = 64
    constant = np.tile(rng.normal(size=(1, d)), (500, 1))
    assert output_std(constant) < 1e-9 and effective_rank(constant) == 0.0
    spread = rng.normal(size=(5000, d))
    assert abs(output_std(spread) - 1 / np.sqrt(d)) < 0.002
    assert effective_rank(spread) > 0.9 * d
    low_rank = rng.normal(size=(500, 3)) @ rng.normal(size=(3, d))
    assert 1.5 < effective_rank(low_rank) < 3.01
    labels = np.arange(100) % 2
    features = np.stack([labels, 1 - labels], 1) + 0.01 * rng.normal(size=(100, 2))
    assert knn_accuracy(features, labels, features, labels, k=3) == 1.0


def test_monitor_sees_a_constant_encoder_as_collapsed():
    inputs = keras.Input((6,))
    zero = keras.layers.Lambda(lambda x: 0.0 * x[:, :4] + 1.0)(inputs)
    model = SimSiam(keras.Model(inputs, zero), noisy, projection_head(8, 8))
    x = np.random.default_rng(0).normal(size=(40, 6)).astype('float32')
    y = np.arange(40) % 4
    measured = CollapseMonitor(x, y, x, y, verbose=False).measure(model)
    assert measured['std'] < 1e-4 and measured['std_reference'] == pytest.approx(1 / np.sqrt(8))


@pytest.mark.slow
def test_bert4keras_text_encoder_with_two_dropout_views():
    """SimSiam on a bert4keras encoder: the two views are two dropout masks
    of the same sentences (augment is the identity)."""
    from bert4keras.tokenizers import Tokenizer
    from bert4keras.snippets import sequence_padding
    from bert4keras_blog.checkpoints import build_model, tiny
    from bert4keras_blog.corpora import peoples_daily
    keras.utils.set_random_seed(1)
    paths = tiny('bert')
    bert = build_model('bert', paths, dropout_rate=0.1)
    cls = keras.layers.Lambda(lambda h: h[:, 0])(bert.output)
    encoder = keras.Model(bert.inputs, cls)
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    texts = peoples_daily(limit=64)
    token_ids = sequence_padding([tokenizer.encode(t, maxlen=32)[0] for t in texts])
    x = [token_ids, np.zeros_like(token_ids)]
    model = SimSiam(encoder, lambda batch: batch, projection_head(32, 32))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    v1 = model.online(x, training=True)[0].numpy()
    v2 = model.online(x, training=True)[0].numpy()
    assert np.abs(v1 - v2).max() > 1e-3  # dropout makes two different views
    # x is [token_ids, segment_ids] with no targets: both inputs reach the encoder
    losses = model.fit(x, epochs=8, batch_size=32, verbose=0).history['loss']
    assert losses[-1] < losses[0] - 0.1, losses  # seeds 0-3 measured: falls by 0.13-0.43
    assert model.embed(x).shape == (64, 48)
