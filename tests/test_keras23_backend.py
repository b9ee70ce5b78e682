"""Keras 2.3.1's backend functions and training API on tf_keras: the rows of
docs/compat.md that differ (steps 14-22 of backend.py), each checked against
numbers worked out independently (numpy, an adjoint identity, TensorFlow's
own op), and a property check that every audited function runs inside a
traced ``fit`` on tensors whose batch and length are unknown."""
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from bert4keras_blog.compat import keras, K, tf
from bert4keras_blog.compat.keras23_backend import EagerOnlyError
from bert4keras.layers import Loss

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RNG = np.random.RandomState(0)
X = RNG.randn(6, 5, 4).astype('float32')
I = RNG.randint(0, 4, (6, 5)).astype('int32')


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# -- step 14: the in-batch-negatives loss of SimBERT/SimCSE ------------------

class InBatchNegatives(Loss):
    """Rows 2k and 2k+1 are a pair; every other row of the batch is a negative."""
    use_k_eye = True

    def compute_loss(self, inputs, mask=None):
        y_pred = K.l2_normalize(inputs, axis=1)
        similarities = K.dot(y_pred, K.transpose(y_pred))
        eye = K.eye(K.shape(y_pred)[0]) if self.use_k_eye else tf.eye(tf.shape(y_pred)[0])
        similarities = (similarities - eye * 1e12) * 20
        rows = K.arange(0, K.shape(y_pred)[0])
        partners = rows + 1 - rows % 2 * 2
        y_true = K.cast(K.equal(rows[None, :], partners[:, None]), K.floatx())
        return K.mean(K.categorical_crossentropy(y_true, similarities, from_logits=True))


def pair_encoder(use_k_eye):
    keras.utils.set_random_seed(1)
    x = keras.layers.Input(shape=(8,))
    h = keras.layers.Dense(6)(x)
    loss_layer = InBatchNegatives(0)
    loss_layer.use_k_eye = use_k_eye
    model = keras.models.Model(x, loss_layer(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def paired_batch(pairs=8):
    anchors = RNG.randn(pairs, 8).astype('float32')
    both = np.stack([anchors, anchors + 0.8 * RNG.randn(pairs, 8).astype('float32')], 1)
    return both.reshape(2 * pairs, 8)


def test_k_eye_in_batch_negatives_loss_trains_and_has_tf_eye_gradient():
    data = paired_batch()
    with_k, with_tf = pair_encoder(True), pair_encoder(False)
    with_tf.set_weights(with_k.get_weights())
    gradients = []
    for model in (with_k, with_tf):
        with tf.GradientTape() as tape:
            model(data, training=True)
            loss = tf.add_n(model.losses)
        gradients.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    history = with_k.fit(data, epochs=30, batch_size=16, shuffle=False, verbose=0).history['loss']
    assert history[-1] < 0.5 * history[0]


def test_zeros_ones_eye_are_tensors_inside_a_trace_and_variables_outside():
    assert isinstance(K.zeros((2, 3)), tf.Variable) and isinstance(K.ones((2,)), tf.Variable)
    np.testing.assert_array_equal(K.eval(K.eye((2, 3))), np.eye(2, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, None])])
    def traced(x):
        n = tf.shape(x)[0]
        return x + K.zeros(tf.shape(x)) + K.ones((3,)) + K.eye(n)[:, :3] + K.eye((n, 3))

    x = RNG.randn(3, 3).astype('float32')
    np.testing.assert_allclose(traced(x).numpy(), x + 1 + 2 * np.eye(3), rtol=1e-6)


# -- steps 15-17 ---------------------------------------------------------------

def test_arange_of_a_tensor_inside_a_trace_is_numpys_range():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def upto(n):
        return K.arange(n)
    for n in (4, 0, -3):
        np.testing.assert_array_equal(upto(tf.constant(n)).numpy(), np.arange(max(n, 0)))
    np.testing.assert_array_equal(K.eval(K.arange(1, 7, 2, dtype='float32')), [1., 3., 5.])


def tf1_bilinear(image, factor):
    """Bilinear upsampling as TF1 did it: output pixel i reads source i / factor,
    between its two neighbours, clamped at the edge (no half-pixel centres)."""
    def axis_weights(size):
        source = np.arange(size * factor) / factor
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, size - 1)
        return low, high, source - low
    b, h, w, c = image.shape
    rl, rh, rf = axis_weights(h)
    cl, ch, cf = axis_weights(w)
    rows = image[:, rl] * (1 - rf)[None, :, None, None] + image[:, rh] * rf[None, :, None, None]
    return rows[:, :, cl] * (1 - cf)[None, None, :, None] + rows[:, :, ch] * cf[None, None, :, None]


def test_bilinear_resize_and_upsampling_give_keras_2_numbers():
    image = RNG.randn(2, 3, 4, 2).astype('float32')
    expected = tf1_bilinear(image, 2)
    image = tf.constant(image)
    np.testing.assert_allclose(K.eval(K.resize_images(image, 2, 2, 'channels_last', 'bilinear')),
                               expected, rtol=1e-5, atol=1e-6)
    channels_first = K.resize_images(tf.transpose(image, (0, 3, 1, 2)), 2, 2, 'channels_first',
                                     'bilinear')
    np.testing.assert_allclose(np.transpose(K.eval(channels_first), (0, 2, 3, 1)), expected,
                               rtol=1e-5, atol=1e-6)
    layer = keras.layers.UpSampling2D(2, interpolation='bilinear')
    np.testing.assert_allclose(layer(image).numpy(), expected, rtol=1e-5, atol=1e-6)
    nearest = K.eval(K.resize_images(image, 2, 2, 'channels_last'))  # unchanged path
    np.testing.assert_array_equal(nearest, image.numpy().repeat(2, 1).repeat(2, 2))


def test_ctc_decode_is_as_wide_as_the_longest_decoded_sequence():
    # Greedy paths: row 0 reads 1,1,blank,2 -> [1, 2]; row 1 reads 3,blank,blank,blank -> [3].
    blank = 4
    best = np.array([[1, 1, blank, 2], [3, blank, blank, blank]])
    scores = np.full((2, 4, 5), -5.0, 'float32')
    scores[np.arange(2)[:, None], np.arange(4)[None], best] = 5.0
    decoded, _ = K.ctc_decode(softmax(scores), np.array([4, 4]))
    np.testing.assert_array_equal(K.eval(decoded[0]), [[1, 2], [3, -1]])


# -- step 18: the functions tf_keras dropped -----------------------------------

def test_dropped_functions_are_back_with_keras_2_meaning():
    x = tf.constant(X)
    np.testing.assert_array_equal(K.identity(x).numpy(), X)
    assert int(K.size(x)) == X.size
    np.testing.assert_array_equal(K.slice(x, (0, 1, 0), (2, 3, 4)).numpy(), X[:2, 1:4])
    assert K.is_tensor(x) and not K.is_tensor(X)
    assert K.is_variable(K.variable(1.0)) and not K.is_variable(x)
    inputs = keras.layers.Input((3,))
    assert K.is_placeholder(inputs) and not K.is_placeholder(keras.layers.Dense(2)(inputs))
    assert K.is_symbolic(inputs) and not K.is_symbolic(x)
    assert K.get_variable_shape(K.variable(np.zeros((2, 5)))) == (2, 5)
    assert K.normalize_data_format(None) == 'channels_last'
    assert K.normalize_data_format('Channels_First') == 'channels_first'
    with pytest.raises(ValueError, match='channels_middle'):
        K.normalize_data_format('channels_middle')
    with K.control_dependencies([tf.constant(1)]):
        assert int(K.identity(tf.constant(2))) == 2
    assert K.eager(len) is len
    K.v1_variable_initialization()  # eager variables are initialised: nothing to do


def test_separable_conv1d_is_depthwise_then_pointwise():
    depthwise = RNG.randn(2, 4, 2).astype('float32')  # width 2, 4 channels, multiplier 2
    pointwise = RNG.randn(1, 8, 3).astype('float32')
    out = K.eval(K.separable_conv1d(X, depthwise, pointwise))
    windows = np.stack([X[:, t:t + 2] for t in range(X.shape[1] - 1)], 1)  # (b, t, 2, 4)
    per_channel = np.einsum('btkc,kcm->btcm', windows, depthwise).reshape(6, 4, 8)
    np.testing.assert_allclose(out, per_channel @ pointwise[0], rtol=1e-4, atol=1e-5)
    channels_first = K.separable_conv1d(np.transpose(X, (0, 2, 1)), depthwise, pointwise,
                                        data_format='channels_first')
    if tf.config.list_physical_devices('GPU'):  # NCHW convolutions run only there
        np.testing.assert_allclose(np.transpose(K.eval(channels_first), (0, 2, 1)), out,
                                   rtol=1e-4, atol=1e-5)


def test_conv3d_transpose_is_the_adjoint_of_conv3d():
    kernel = RNG.randn(2, 2, 2, 2, 3).astype('float32')  # 2 in, 3 out channels
    x = RNG.randn(2, 4, 4, 4, 2).astype('float32')
    y = RNG.randn(2, 2, 2, 2, 3).astype('float32')  # the shape of conv3d(x) at stride 2
    forward = K.eval(K.conv3d(x, kernel, strides=(2, 2, 2)))
    back = K.eval(K.conv3d_transpose(y, kernel, (None, 4, 4, 4, 2), strides=(2, 2, 2)))
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(forward * y), np.sum(x * back), rtol=1e-4)


def test_get_session_in_eager_names_the_idiom_and_the_way_out():
    with pytest.raises(EagerOnlyError, match=r'K\.get_session\(\).*BERT4KERAS_BLOG_GRAPH_MODE'):
        K.get_session()
    with pytest.raises(EagerOnlyError, match=r'K\.set_session'):
        K.set_session(None)


def test_get_session_works_in_graph_mode():
    code = ('import bert4keras_blog\nfrom bert4keras.backend import K\n'
            'v = K.variable([1.0, 2.0]); K.v1_variable_initialization()\n'
            'print(K.get_session().run(v * 2).tolist())\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env=dict(os.environ, BERT4KERAS_BLOG_GRAPH_MODE='1'), cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '[2.0, 4.0]'


# -- steps 19-22: the training API ----------------------------------------------

def classifier(outputs=1):
    x = keras.layers.Input((3,))
    h = keras.layers.Dense(4)(x)
    heads = [keras.layers.Dense(2, activation='softmax')(h) for _ in range(outputs)]
    return keras.models.Model(x, heads if outputs > 1 else heads[0])


def test_layers_and_models_are_named_from_one_as_in_keras_2():
    K.clear_session()
    model = classifier()
    assert [layer.name for layer in model.layers] == ['input_1', 'dense_1', 'dense_2']
    assert model.name == 'model_1'
    assert model.get_layer('dense_1') is model.layers[1]


@pytest.mark.parametrize('outputs,metrics,weighted', [
    (1, ['accuracy'], None), (1, ['acc', 'mae'], None), (2, ['accuracy'], None),
    (2, {'dense_2': ['mae']}, None), (1, ['accuracy'], ['accuracy', 'mae']), (2, ['acc'], ['acc'])])
def test_metrics_names_after_compile_are_the_names_after_evaluate(outputs, metrics, weighted):
    K.clear_session()
    model = classifier(outputs)
    model.compile('adam', 'sparse_categorical_crossentropy', metrics=metrics,
                  weighted_metrics=weighted)
    before = list(model.metrics_names)
    x, y = RNG.rand(8, 3).astype('float32'), RNG.randint(0, 2, 8)
    model.evaluate(x, [y] * outputs if outputs > 1 else y, verbose=0)
    assert before == model.metrics_names and before[0] == 'loss' and len(before) > 1


def test_save_weights_without_a_suffix_writes_hdf5_that_loads_by_name(tmp_path):
    model = classifier()
    path = str(tmp_path / 'best_model.weights')
    model.save_weights(path)
    assert os.listdir(tmp_path) == ['best_model.weights'] and h5py.is_hdf5(path)
    other = classifier()
    for layer_from, layer_to in zip(model.layers, other.layers):
        layer_to._name = layer_from.name  # same names, fresh weights
    other.load_weights(path, by_name=True)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save_weights(str(tmp_path / 'tf_format.ckpt'))  # a name that asks for TF's format
    assert any(name.startswith('tf_format.ckpt.index') for name in os.listdir(tmp_path))


def test_class_weight_multiplies_a_generators_sample_weights():
    keras.utils.set_random_seed(2)
    model = classifier()
    model.compile(keras.optimizers.SGD(0.0), 'sparse_categorical_crossentropy')
    x, y = RNG.rand(8, 3).astype('float32'), RNG.randint(0, 2, 8)
    sample_weight = RNG.rand(8).astype('float32')
    class_weight = {0: 1.0, 1: 3.0}

    def batches():
        while True:
            yield x, y, sample_weight
    logged = model.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0,
                       class_weight=class_weight).history['loss'][0]
    p = model.predict(x, verbose=0)
    per_example = -np.log(p[np.arange(8), y])
    weights = sample_weight * np.array([class_weight[c] for c in y])
    assert logged == pytest.approx(np.mean(weights * per_example), rel=1e-5)


def early_stopping_run(epochs):
    """A monitored score that is best after epoch 0 and worse after every
    later one: with patience 2, a run of 5 epochs stops early (after epoch
    2), a run of 2 reaches its end first."""
    keras.utils.set_random_seed(3)
    model = classifier()
    model.compile(keras.optimizers.SGD(0.5), 'sparse_categorical_crossentropy')
    x, y = RNG.rand(16, 3).astype('float32'), RNG.randint(0, 2, 16)
    stop = keras.callbacks.EarlyStopping('score', patience=2, restore_best_weights=True)

    class ScoreAndSnapshot(keras.callbacks.Callback):
        weights = []

        def on_epoch_end(self, epoch, logs=None):
            logs['score'] = float(epoch)  # read by EarlyStopping, which runs next
            self.weights.append(self.model.get_weights())
    snapshots = ScoreAndSnapshot()
    snapshots.weights = []
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=[snapshots, stop])
    return model.get_weights(), snapshots.weights, stop


def test_early_stopping_restores_only_when_it_stopped_training():
    final, seen, stop = early_stopping_run(2)  # reached its last epoch
    assert stop.stopped_epoch == 0
    for a, b in zip(final, seen[-1]):
        np.testing.assert_array_equal(a, b)
    final, seen, stop = early_stopping_run(5)
    assert stop.stopped_epoch > 0
    best = seen[stop.best_epoch]
    assert any(not np.array_equal(a, b) for a, b in zip(best, seen[-1]))
    for a, b in zip(final, best):
        np.testing.assert_array_equal(a, b)


# -- the property check ------------------------------------------------------------

# Each audited function as a script would call it on a float tensor x
# (batch, length, 4) and an int tensor i (batch, length), both of unknown
# batch and length, with the value numpy gives for the same call.
CALLS = {
    'zeros': (lambda x, i: x + K.zeros(K.shape(x)) + K.zeros((4,)), lambda x, i: x),
    'ones': (lambda x, i: x * K.ones(K.shape(x)) * K.ones((4,)), lambda x, i: x),
    'eye': (lambda x, i: K.dot(x, K.eye(4)), lambda x, i: x),
    'arange': (lambda x, i: x * K.cast(K.arange(K.shape(x)[1]), 'float32')[None, :, None],
               lambda x, i: x * np.arange(x.shape[1])[None, :, None]),
    'constant': (lambda x, i: x * K.constant(2.0, shape=(4,)), lambda x, i: 2 * x),
    'zeros_like': (lambda x, i: x + K.zeros_like(x), lambda x, i: x),
    'ones_like': (lambda x, i: x * K.ones_like(x), lambda x, i: x),
    'identity': (lambda x, i: K.identity(x), lambda x, i: x),
    'cast': (lambda x, i: x * K.cast(i, 'float32')[:, :, None], lambda x, i: x * i[:, :, None]),
    'sum': (lambda x, i: x * K.cast(K.sum(i, 1, keepdims=True), 'float32')[:, :, None],
            lambda x, i: x * i.sum(1, keepdims=True)[:, :, None]),
    'mean': (lambda x, i: x * K.mean(K.greater(x, 0.5), 2, keepdims=True),
             lambda x, i: x * (x > 0.5).mean(2, keepdims=True)),
    'max': (lambda x, i: K.max(x, 1, keepdims=True) + 0 * x,
            lambda x, i: x.max(1, keepdims=True) + 0 * x),
    'min': (lambda x, i: K.min(x, 1), lambda x, i: x.min(1)),
    'prod': (lambda x, i: K.prod(x, -1), lambda x, i: x.prod(-1)),
    'cumsum': (lambda x, i: K.cumsum(x, 1), lambda x, i: x.cumsum(1)),
    'cumprod': (lambda x, i: K.cumprod(x, 1), lambda x, i: x.cumprod(1)),
    'var': (lambda x, i: K.var(x, 1), lambda x, i: x.var(1)),
    'std': (lambda x, i: K.std(x, -1), lambda x, i: x.std(-1)),
    'any': (lambda x, i: x * K.cast(K.any(K.greater(x, 1.0), -1, True), 'float32'),
            lambda x, i: x * (x > 1).any(-1, keepdims=True)),
    'all': (lambda x, i: x * K.cast(K.all(K.greater(x, -1.0), -1, True), 'float32'),
            lambda x, i: x * (x > -1).all(-1, keepdims=True)),
    'argmax': (lambda x, i: x * K.cast(K.argmax(x), 'float32')[..., None],
               lambda x, i: x * x.argmax(-1)[..., None]),
    'argmin': (lambda x, i: x * K.cast(K.argmin(x, 1), 'float32')[:, None],
               lambda x, i: x * x.argmin(1)[:, None]),
    'square': (lambda x, i: K.square(x), lambda x, i: x ** 2),
    'abs': (lambda x, i: K.abs(x), np.abs and (lambda x, i: np.abs(x))),
    'sqrt': (lambda x, i: K.sqrt(K.abs(x) + 1), lambda x, i: np.sqrt(np.abs(x) + 1)),
    'exp': (lambda x, i: K.exp(x), lambda x, i: np.exp(x)),
    'log': (lambda x, i: K.log(K.abs(x) + 1), lambda x, i: np.log(np.abs(x) + 1)),
    'logsumexp': (lambda x, i: K.logsumexp(x, -1), lambda x, i: np.log(np.exp(x).sum(-1))),
    'round': (lambda x, i: x * K.round(x), lambda x, i: x * np.round(x)),
    'sign': (lambda x, i: x * K.sign(x), lambda x, i: x * np.sign(x)),
    'pow': (lambda x, i: K.pow(x, 2), lambda x, i: x ** 2),
    'clip': (lambda x, i: K.clip(x, -0.5, 0.5), lambda x, i: np.clip(x, -0.5, 0.5)),
    'comparisons': (lambda x, i: x * K.cast(K.equal(i, 1), 'float32')[..., None] *
                    K.cast(K.not_equal(i, 2), 'float32')[..., None] +
                    K.cast(K.greater_equal(x, 0), 'float32') - K.cast(K.less(x, 0), 'float32') +
                    K.cast(K.less_equal(x, 0), 'float32'),
                    lambda x, i: x * (i == 1)[..., None] + (x >= 0) - (x < 0) + (x <= 0)),
    'maximum': (lambda x, i: K.maximum(x, 0.0) + K.minimum(x, 0.0), lambda x, i: x),
    'sin': (lambda x, i: K.sin(x) + K.cos(x), lambda x, i: np.sin(x) + np.cos(x)),
    'dot': (lambda x, i: K.dot(x, K.constant(np.eye(4, 3))), lambda x, i: x @ np.eye(4, 3)),
    'batch_dot': (lambda x, i: K.batch_dot(x, x, axes=(2, 2)),
                  lambda x, i: np.einsum('bik,bjk->bij', x, x)),
    'transpose': (lambda x, i: K.transpose(x[:, 0]), lambda x, i: x[:, 0].T),
    'gather': (lambda x, i: K.gather(x[0], i[0]), lambda x, i: x[0][i[0]]),
    'one_hot': (lambda x, i: x * K.one_hot(i, 4), lambda x, i: x * np.eye(4)[i]),
    'reshape': (lambda x, i: K.reshape(x, (-1, 2)), lambda x, i: x.reshape(-1, 2)),
    'permute_dimensions': (lambda x, i: K.permute_dimensions(x, (0, 2, 1)),
                           lambda x, i: x.transpose(0, 2, 1)),
    'concatenate': (lambda x, i: K.concatenate([x, 2 * x], 1),
                    lambda x, i: np.concatenate([x, 2 * x], 1)),
    'stack': (lambda x, i: K.stack([x, -x], 1), lambda x, i: np.stack([x, -x], 1)),
    'repeat_elements': (lambda x, i: K.repeat_elements(x, 2, 2), lambda x, i: x.repeat(2, 2)),
    'repeat': (lambda x, i: K.repeat(x[:, 0], 3), lambda x, i: np.repeat(x[:, :1], 3, 1)),
    'tile': (lambda x, i: K.tile(x, (1, 2, 1)), lambda x, i: np.tile(x, (1, 2, 1))),
    'flatten': (lambda x, i: K.batch_flatten(x), lambda x, i: x.reshape(len(x), -1)),
    'expand_dims': (lambda x, i: K.squeeze(K.expand_dims(x, 1), 1), lambda x, i: x),
    'temporal_padding': (lambda x, i: K.temporal_padding(x, (1, 2)),
                         lambda x, i: np.pad(x, ((0, 0), (1, 2), (0, 0)))),
    'reverse': (lambda x, i: K.reverse(x, 1), lambda x, i: x[:, ::-1]),
    'switch': (lambda x, i: K.switch(K.greater(x, 0), x, -x), lambda x, i: np.abs(x)),
    'l2_normalize': (lambda x, i: K.l2_normalize(x, -1),
                     lambda x, i: x / np.sqrt((x ** 2).sum(-1, keepdims=True))),
    'stop_gradient': (lambda x, i: x + K.stop_gradient(x), lambda x, i: 2 * x),
    'softmax': (lambda x, i: K.softmax(x), lambda x, i: softmax(x)),
    'activations': (lambda x, i: K.relu(x, 0.1, 0.5) + K.elu(x) + K.softplus(x) + K.softsign(x) +
                    K.sigmoid(x) + K.tanh(x) + K.hard_sigmoid(x),
                    lambda x, i: (np.minimum(np.where(x > 0, x, 0.1 * x), 0.5) +
                                  np.where(x > 0, x, np.exp(x) - 1) + np.log1p(np.exp(x)) +
                                  x / (1 + np.abs(x)) + 1 / (1 + np.exp(-x)) + np.tanh(x) +
                                  np.clip(0.2 * x + 0.5, 0, 1))),
    'categorical_crossentropy': (
        lambda x, i: K.categorical_crossentropy(K.one_hot(i, 4), x, from_logits=True),
        lambda x, i: -np.log(softmax(x))[np.arange(6)[:, None], np.arange(5)[None], i]),
    'sparse_categorical_crossentropy': (
        lambda x, i: K.sparse_categorical_crossentropy(i, K.softmax(x)),
        lambda x, i: -np.log(softmax(x))[np.arange(6)[:, None], np.arange(5)[None], i]),
    'binary_crossentropy': (
        lambda x, i: K.binary_crossentropy(K.cast(K.greater(x, 0), 'float32'), x, from_logits=True),
        lambda x, i: np.log1p(np.exp(-np.abs(x)))),
    'in_top_k': (lambda x, i: x[:, 0] * K.cast(K.in_top_k(x[:, 0], i[:, 0], 2), 'float32')[:, None],
                 lambda x, i: x[:, 0] * (np.argsort(-x[:, 0], 1)[:, :2] == i[:, :1])
                 .any(1)[:, None]),
    'bias_add': (lambda x, i: K.bias_add(x, K.constant([1., 2., 3., 4.])),
                 lambda x, i: x + [1, 2, 3, 4]),
    'conv1d': (lambda x, i: K.conv1d(x, K.ones((2, 4, 1))),
               lambda x, i: (x[:, :-1] + x[:, 1:]).sum(-1, keepdims=True)),
    'pool2d': (lambda x, i: K.pool2d(x[..., None], (1, 4), (1, 4))[..., 0],
               lambda x, i: x.max(-1, keepdims=True)),
    'map_fn': (lambda x, i: K.map_fn(lambda row: row * 2, x), lambda x, i: 2 * x),
    'foldl': (lambda x, i: K.foldl(lambda a, row: a + row, x), lambda x, i: x.sum(0)),
    'foldr': (lambda x, i: K.foldr(lambda a, row: a + row, x), lambda x, i: x.sum(0)),
    'rnn': (lambda x, i: K.rnn(lambda step, states: (step + states[0], [step + states[0]]), x,
                               [K.zeros_like(x[:, 0])])[1], lambda x, i: x.cumsum(1)),
    'in_train_phase': (lambda x, i: K.in_train_phase(2 * x, x), lambda x, i: x),  # predict: test
    'in_test_phase': (lambda x, i: K.in_test_phase(2 * x, x), lambda x, i: 2 * x),
    'dropout': (lambda x, i: K.in_train_phase(K.dropout(x, 0.5), x), lambda x, i: x),
    'random': (lambda x, i: x + 0 * (K.random_uniform(K.shape(x)) + K.random_normal(K.shape(x)) +
                                     K.truncated_normal(K.shape(x)) +
                                     K.random_binomial(K.shape(x), 0.5)), lambda x, i: x),
    'print_tensor': (lambda x, i: K.print_tensor(x, ''), lambda x, i: x),
    'ctc_batch_cost': (
        lambda x, i: K.ctc_batch_cost(i[:, :2], K.softmax(K.concatenate([x, x[..., :1]])),
                                      K.ones_like(i[:, :1]) * K.shape(x)[1],
                                      K.ones_like(i[:, :1]) * 2), None),
}


def test_every_audited_function_traces_in_fit_and_gives_numpys_numbers():
    x_in = keras.layers.Input((None, 4))
    i_in = keras.layers.Input((None,), dtype='int32')
    h = keras.layers.Dense(4, kernel_initializer='identity')(x_in)  # h == x until trained
    # Several lambdas share a line in CALLS, which autograph's source lookup
    # cannot tell apart; the calls need no conversion (no Python control flow).
    plain = tf.autograph.experimental.do_not_convert
    outputs = [keras.layers.Lambda(plain(lambda t, f=call: f(t[0], t[1])), name='k_' + name)(
        [h, i_in]) for name, (call, _) in CALLS.items()]

    class SumOfSquares(Loss):
        def compute_loss(self, inputs, mask=None):
            return tf.add_n([K.mean(K.square(K.cast(o, 'float32'))) for o in inputs]) / 100

    trained = keras.models.Model([x_in, i_in], SumOfSquares(list(range(len(outputs))))(outputs))
    probe = keras.models.Model([x_in, i_in], outputs)
    got = dict(zip(CALLS, probe.predict([X, I], batch_size=6, verbose=0)))
    for name, (_, expected) in CALLS.items():
        if expected is not None:
            np.testing.assert_allclose(got[name], expected(X, I), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    trained.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = trained.fit([X, I], epochs=5, batch_size=3, verbose=0).history['loss']
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_keras_2_callbacks_and_evaluate_shapes(tmp_path):
    model = classifier()
    model.compile(keras.optimizers.SGD(0.1), 'sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    x, y = RNG.rand(16, 3).astype('float32'), RNG.randint(0, 2, 16)

    def batches():
        while True:
            yield x, y
    every_second = keras.callbacks.ModelCheckpoint(str(tmp_path / 'w{epoch}'), period=2,
                                                   save_weights_only=True)
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    history = model.fit(x, y, epochs=4, verbose=0, validation_data=batches(),
                        validation_steps=2, callbacks=[every_second, schedule])
    assert sorted(os.listdir(tmp_path)) == ['w2', 'w4'] and h5py.is_hdf5(str(tmp_path / 'w4'))
    assert K.get_value(model.optimizer.lr) == pytest.approx(0.04)
    assert len(history.history['val_loss']) == 4
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy == pytest.approx(np.mean(model.predict(x, verbose=0).argmax(1) == y))
    model.compile('sgd', 'sparse_categorical_crossentropy')
    assert np.isscalar(model.evaluate(x, y, verbose=0))
    np.testing.assert_array_equal(keras.utils.to_categorical([0, 2], 3), [[1, 0, 0], [0, 0, 1]])


# The public functions of Keras 2.3.1's keras/backend/tensorflow_backend.py
# (every module-level def without a leading underscore), in file order.
KERAS_231_BACKEND = """
    symbolic is_symbolic eager get_uid manual_variable_initialization epsilon reset_uids
    set_epsilon floatx set_floatx cast_to_floatx image_data_format set_image_data_format
    normalize_data_format learning_phase set_learning_phase get_session set_session
    clear_session v1_variable_initialization is_sparse to_dense variable is_variable
    constant is_keras_tensor is_tensor placeholder is_placeholder shape int_shape ndim
    size dtype eval zeros ones eye zeros_like ones_like identity random_uniform_variable
    random_normal_variable count_params cast update update_add update_sub
    moving_average_update dot batch_dot transpose gather max min sum prod cumsum cumprod
    var std mean any all argmax argmin square abs sqrt exp log logsumexp round sign pow
    clip equal not_equal greater greater_equal less less_equal maximum minimum sin cos
    normalize_batch_in_training batch_normalization concatenate reshape
    permute_dimensions resize_images resize_volumes repeat_elements repeat arange tile
    flatten batch_flatten expand_dims squeeze temporal_padding spatial_2d_padding
    spatial_3d_padding stack one_hot reverse slice get_value batch_get_value set_value
    batch_set_value get_variable_shape print_tensor function gradients stop_gradient rnn
    switch in_train_phase in_test_phase relu elu softmax softplus softsign
    categorical_crossentropy sparse_categorical_crossentropy binary_crossentropy sigmoid
    hard_sigmoid tanh dropout l2_normalize in_top_k conv1d conv2d conv2d_transpose
    separable_conv1d separable_conv2d depthwise_conv2d conv3d conv3d_transpose pool2d
    pool3d local_conv1d local_conv2d bias_add random_normal random_uniform
    random_binomial truncated_normal ctc_label_dense_to_sparse ctc_batch_cost ctc_decode
    control_dependencies map_fn foldl foldr
""".split()


def audit_section():
    with open(os.path.join(ROOT, 'docs', 'compat.md'), encoding='utf-8') as f:
        text = f.read()
    start = text.index("## Keras 2.3.1's backend and training API")
    return text[start:text.index('\n## ', start + 1)]


def test_the_audit_table_has_a_row_for_every_keras_231_function_and_k_has_each():
    assert len(KERAS_231_BACKEND) == len(set(KERAS_231_BACKEND)) == 159
    rows = [line for line in audit_section().splitlines() if line.startswith('| ')]
    named = set(re.findall(r'`([a-z_0-9]+)`', ' '.join(row.split(' | ')[0] for row in rows)))
    assert [n for n in KERAS_231_BACKEND if n not in named] == []
    assert [n for n in KERAS_231_BACKEND if not hasattr(K, n)] == []


def test_a_bert4keras_model_saved_without_a_suffix_loads_back_from_hdf5(tmp_path):
    # basic_extract_features: model.save('test.model'); keras.models.load_model('test.model')
    from bert4keras.models import build_transformer_model
    from bert4keras_blog.checkpoints import tiny
    paths = tiny('bert')
    model = build_transformer_model(paths['config'], paths['checkpoint'])
    path = str(tmp_path / 'test.model')
    model.save(path)
    assert h5py.is_hdf5(path)
    loaded = keras.models.load_model(path)
    inputs = [np.array([[2, 5, 6, 7, 3]]), np.zeros((1, 5))]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_class_weight_keys_that_skip_a_class_are_refused_at_once():
    # Keras 2.3.1 took any keys covering the data's classes; tf_keras wants 0 .. n-1.
    model = classifier()
    model.compile('sgd', 'sparse_categorical_crossentropy')
    with pytest.raises(ValueError, match='class_weight.*keys from 0 to one less'):
        model.fit(RNG.rand(8, 3), RNG.randint(0, 2, 8), class_weight={0: 1.0, 1: 2.0, 5: 1.0},
                  verbose=0)
