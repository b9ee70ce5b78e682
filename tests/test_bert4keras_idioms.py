"""The idioms of bert4keras' own examples, on TensorFlow 2.21 after our backend.

Each test writes the idiom the way a bert4keras user's script writes it (small
models, our own words) and checks the number Keras 2.3.1 would have given.
The TF1-graph tricks (adversarial training, gradient penalty, gradients inside
a layer) run in a subprocess: ``tf1_idioms_worker.py`` beside this file.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import bert4keras_blog  # noqa: F401
from bert4keras_blog import compat
from bert4keras_blog.compat import keras, K, tf
from bert4keras.backend import multilabel_categorical_crossentropy
from bert4keras.layers import (ConditionalRandomField, EfficientGlobalPointer, FeedForward,
                               GlobalPointer, Loss, MultiHeadAttention)
from bert4keras.models import build_transformer_model
from bert4keras.optimizers import Adam
from bert4keras.snippets import DataGenerator, sequence_padding

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, 'tf1_idioms_worker.py')
TINY_BERT = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=24, hidden_act='gelu', max_position=32)


def _sentences(n, seed=0):
    """Token ids 5..39 of random length; label 1 when token 7 occurs."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(n):
        ids = list(rng.integers(5, 40, size=int(rng.integers(4, 12))))
        data.append((ids, int(7 in ids)))
    return data


class LabelledBatches(DataGenerator):
    """A bert4keras classification generator: ``[token_ids, segment_ids], labels``,
    labels as ``[[label], ...]`` (shape unknown to Keras, as upstream)."""

    def __iter__(self, random=False):
        tokens, segments, labels = [], [], []
        for is_end, (ids, label) in self.sample(random):
            tokens.append([2] + ids + [3])
            segments.append([0] * (len(ids) + 2))
            labels.append([label])
            if len(tokens) == self.batch_size or is_end:
                yield [sequence_padding(tokens), sequence_padding(segments)], \
                    sequence_padding(labels)
                tokens, segments, labels = [], [], []


def _classifier(units, activation):
    bert = build_transformer_model(**TINY_BERT, return_keras_model=False)
    cls = keras.layers.Lambda(lambda x: x[:, 0])(bert.model.output)
    output = keras.layers.Dense(units, activation=activation)(cls)
    return keras.models.Model(bert.model.input, output)


def _predict_all(model, generator):
    preds, labels = [], []
    for x, y in generator:
        preds.append(model.predict(x, verbose=0))
        labels.append(y[:, 0])
    return np.concatenate(preds), np.concatenate(labels)


# ------------------------------------------------- generators: [x1, x2], None

class CausalCrossEntropy(Loss):
    """The seq2seq examples' loss layer: inputs are (token_ids, segment_ids,
    probabilities); only the target segment is scored."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true, y_mask, y_pred = y_true[:, 1:], y_mask[:, 1:], y_pred[:, :-1]
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        return K.sum(loss * y_mask) / K.sum(y_mask)


class PairBatches(DataGenerator):
    """``[token_ids, segment_ids], None``: a list for x, no targets."""

    def __iter__(self, random=False):
        tokens, segments = [], []
        for is_end, (source, target) in self.sample(random):
            tokens.append([2] + source + [3] + target + [3])
            segments.append([0] * (len(source) + 2) + [1] * (len(target) + 1))
            if len(tokens) == self.batch_size or is_end:
                yield [sequence_padding(tokens), sequence_padding(segments)], None
                tokens, segments = [], []


def test_unilm_trains_on_a_generator_yielding_a_list_and_none():
    keras.utils.set_random_seed(0)
    pairs = [(ids, ids[::-1]) for ids, _ in _sentences(48)]
    model = build_transformer_model(**TINY_BERT, application='unilm')
    output = CausalCrossEntropy(2)(model.inputs + model.outputs)
    train_model = keras.models.Model(model.inputs, output)
    train_model.compile(optimizer=Adam(2e-2))
    batches = PairBatches(pairs, batch_size=16)
    history = train_model.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=8, verbose=0)
    losses = history.history['loss']
    assert losses[-1] < 0.8 * losses[0], losses
    assert train_model.evaluate(batches.forfit(), steps=len(batches), verbose=0) < losses[0]


def test_pack_keeps_a_list_of_inputs_together():
    from tf_keras.src.engine import data_adapter
    x = [np.zeros((2, 3)), np.ones((2, 3))]
    packed = data_adapter.pack_x_y_sample_weight(x)
    unpacked_x, y, _ = data_adapter.unpack_x_y_sample_weight(packed)
    assert y is None and len(unpacked_x) == 2


# ------------------------------------------------------------ integer targets

def test_integer_targets_reach_a_keras_2_loss_as_floats():
    """GPLinker's idiom: int labels from sequence_padding, a loss that
    multiplies them with the float predictions."""
    keras.utils.set_random_seed(0)
    seen = []

    def global_pointer_loss(y_true, y_pred):
        seen.append(y_true.dtype)
        shape = K.shape(y_pred)
        y_true = K.reshape(y_true, (shape[0] * shape[1], -1))
        y_pred = K.reshape(y_pred, (shape[0] * shape[1], -1))
        return K.mean(multilabel_categorical_crossentropy(y_true, y_pred))

    bert = build_transformer_model(**TINY_BERT, return_keras_model=False)
    output = GlobalPointer(2, 8)(bert.model.output)
    model = keras.models.Model(bert.model.input, output)
    model.compile(loss=global_pointer_loss, optimizer=Adam(5e-3))

    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 40, size=(32, 10))
    labels = np.zeros((32, 2, 10, 10), dtype='int64')  # an entity wherever token 7 is
    for i, j in zip(*np.nonzero(tokens == 7)):
        labels[i, 0, j, j] = 1
    labels[:, 1, 0, 0] = 1
    history = model.fit([tokens, np.zeros_like(tokens)], labels, batch_size=8, epochs=4,
                        verbose=0)
    assert seen and all(dtype == tf.float32 for dtype in seen)
    assert history.history['loss'][-1] < 0.7 * history.history['loss'][0]


# ------------------------------------------------------------------ accuracy

@pytest.mark.parametrize('loss, metric, units, activation, expected_name', [
    ('sparse_categorical_crossentropy', 'accuracy', 2, 'softmax', 'accuracy'),
    ('sparse_categorical_crossentropy', 'acc', 2, 'softmax', 'acc'),
    (keras.losses.SparseCategoricalCrossentropy(), 'accuracy', 2, 'softmax', 'accuracy'),
    ('binary_crossentropy', 'accuracy', 1, 'sigmoid', 'accuracy'),
])
def test_logged_accuracy_equals_accuracy_of_the_predictions(loss, metric, units, activation,
                                                            expected_name):
    keras.utils.set_random_seed(1)
    model = _classifier(units, activation)
    model.compile(loss=loss, optimizer=Adam(3e-3), metrics=[metric])
    train, valid = LabelledBatches(_sentences(64, 0), 16), LabelledBatches(_sentences(48, 1), 16)
    history = model.fit(train.forfit(), steps_per_epoch=len(train), epochs=3, verbose=0)
    assert expected_name in history.history
    logged = dict(zip(model.metrics_names,
                      model.evaluate(valid.forfit(), steps=len(valid), verbose=0)))[expected_name]
    probs, labels = _predict_all(model, valid)
    predicted = probs.argmax(axis=1) if units > 1 else (probs[:, 0] > 0.5).astype(int)
    true_accuracy = (predicted == labels).mean()
    assert 0.0 < true_accuracy < 1.0  # a score that can be told from the wrong metric
    assert logged == pytest.approx(true_accuracy, abs=1e-6)


def test_accuracy_without_a_known_loss_keeps_tf_keras_rule():
    """A custom loss says nothing; tf_keras' shape rule still applies."""
    keras.utils.set_random_seed(2)
    model = _classifier(3, 'softmax')
    model.compile(loss=lambda y, p: K.categorical_crossentropy(y, p), optimizer=Adam(1e-3),
                  metrics=['accuracy'])
    x = [np.random.randint(5, 40, size=(12, 6)), np.zeros((12, 6), 'int32')]
    y = np.eye(3)[np.random.randint(0, 3, size=12)]
    logged = model.evaluate(x, y, verbose=0)[1]
    assert logged == pytest.approx((model.predict(x, verbose=0).argmax(1) == y.argmax(1)).mean())


# -------------------------------------------------- distinct initial weights

def _same_stream(a, b):
    """Identical, or the same random draws rescaled (another shape or scale)."""
    a, b = a.ravel(), b.ravel()
    n = min(a.size, b.size)
    if n < 4 or a[:n].std() == 0 or b[:n].std() == 0:
        return False
    return abs(np.corrcoef(a[:n], b[:n])[0, 1]) > 0.99


@pytest.mark.parametrize('make, inputs', [
    (lambda: MultiHeadAttention(heads=3, head_size=4), 'qkv'),
    (lambda: FeedForward(units=12), 'x'),
    (lambda: GlobalPointer(heads=2, head_size=6), 'x'),
    (lambda: EfficientGlobalPointer(heads=2, head_size=6), 'x'),
    (lambda: ConditionalRandomField(), 'x'),
])
def test_no_layer_starts_with_two_weights_from_the_same_draws(make, inputs):
    x = keras.layers.Input(shape=(7, 12))
    layers = [make(), make()]  # two of a kind, as in a stack of blocks
    for layer in layers:
        layer([x, x, x] if inputs == 'qkv' else x)
    weights = [w for layer in layers for w in layer.get_weights() if w.ndim >= 2]
    assert len(weights) >= 2
    for i, a in enumerate(weights):
        for b in weights[i + 1:]:
            assert not _same_stream(a, b), (a.shape, b.shape)


def test_unseeded_initializer_instance_draws_fresh_values_reproducibly():
    init = keras.initializers.GlorotUniform()
    keras.utils.set_random_seed(5)
    first, second = init((6, 6)).numpy(), init((6, 6)).numpy()
    assert not np.allclose(first, second)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(init((6, 6)).numpy(), first)
    seeded = keras.initializers.GlorotUniform(seed=3)
    np.testing.assert_array_equal(seeded((4, 4)).numpy(), seeded((4, 4)).numpy())


# ----------------------------------------------- TF1-graph idioms (subprocess)

def _run_worker(*names, env=None, via_cli=False):
    command = [sys.executable, WORKER, *names]
    if via_cli:
        command = [sys.executable, '-m', 'bert4keras_blog.app.cli', 'run', WORKER, *names]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))
    return done


@pytest.fixture(scope='module')
def tf1_results():
    done = _run_worker()
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tf1_idioms_switch_the_script_to_graph_mode(tf1_results):
    assert tf1_results['executing_eagerly'] is False
    assert compat.tf1_graph_idioms(WORKER)[:2] == ['_make_train_function', 'K.gradients(']
    assert compat.wants_graph_mode(WORKER)
    assert not compat.wants_graph_mode(os.path.join(HERE, 'test_backend.py'))


def test_fast_gradient_method_step_equals_the_hand_computed_one(tf1_results):
    step = tf1_results['fast_gradient_method_step']
    np.testing.assert_allclose(step['embeddings'], step['expected_embeddings'], atol=2e-6)
    np.testing.assert_allclose(step['kernel'], step['expected_kernel'], atol=2e-6)
    # and the perturbation mattered: plain SGD lands elsewhere
    assert np.abs(np.array(step['embeddings']) - step['plain_sgd_embeddings']).max() > 1e-3


def test_gradient_penalty_adds_half_epsilon_squared_gradient_norm(tf1_results):
    penalty = tf1_results['gradient_penalty']
    assert penalty['keras_loss'] == pytest.approx(penalty['expected_loss'], rel=1e-5)
    assert penalty['keras_loss'] - penalty['plain_loss'] > 1e-3  # the penalty is there
    assert penalty['loss_after_training'] < penalty['keras_loss'] - 0.05  # and it trains


def test_gradients_inside_a_layer_match_numpy(tf1_results):
    result = tf1_results['integrated_gradient_layer']
    expected = np.array(result['expected'])
    assert np.abs(expected).max() > 1e-4
    np.testing.assert_allclose(result['gradients'], expected, atol=1e-7, rtol=1e-4)


def test_graph_mode_can_be_refused_and_the_idiom_then_fails():
    done = _run_worker('fast_gradient_method_step', env={compat.GRAPH_MODE_ENV: '0'})
    assert done.returncode != 0
    assert '_make_train_function' in done.stderr


def test_cli_run_detects_the_idioms_and_passes_arguments():
    done = _run_worker('gradient_penalty', via_cli=True, env={compat.GRAPH_MODE_ENV: ''})
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'graph mode' in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(result) == ['executing_eagerly', 'gradient_penalty']
    assert result['gradient_penalty']['keras_loss'] == pytest.approx(
        result['gradient_penalty']['expected_loss'], rel=1e-5)


# ------------------------------------------- habits that already work (guards)

def test_keras_2_training_habits_keep_working(tmp_path):
    """fit/evaluate/predict_generator, K.set_value on the learning rate,
    EMA weights swapped in and out, weights saved and loaded by a callback."""
    from bert4keras.optimizers import extend_with_exponential_moving_average
    keras.utils.set_random_seed(3)
    model = _classifier(2, 'softmax')
    AdamEMA = extend_with_exponential_moving_average(Adam, name='AdamEMA')
    optimizer = AdamEMA(learning_rate=3e-3, ema_momentum=0.5)
    model.compile(loss='sparse_categorical_crossentropy', optimizer=optimizer,
                  metrics=['accuracy'])
    train, valid = LabelledBatches(_sentences(48, 0), 16), LabelledBatches(_sentences(32, 1), 16)
    path = str(tmp_path / 'best_model.weights')

    class SaveEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(path)

    model.fit_generator(train.forfit(), steps_per_epoch=len(train), epochs=2, verbose=0,
                        callbacks=[SaveEachEpoch()])
    _, accuracy = model.evaluate_generator(valid.forfit(), steps=len(valid), verbose=0)
    probs = model.predict_generator((x for x, _ in valid.forfit()), steps=len(valid))
    labels = np.concatenate([y[:, 0] for _, y in valid])
    assert accuracy == pytest.approx((probs.argmax(1) == labels).mean())

    trained = [w.copy() for w in model.get_weights()]
    optimizer.apply_ema_weights()
    averaged = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(trained, averaged))
    optimizer.reset_old_weights()
    for a, b in zip(trained, model.get_weights()):
        np.testing.assert_array_equal(a, b)

    K.set_value(model.optimizer.lr, 0.0)  # a zero step changes nothing
    x, y = next(iter(train))
    model.train_on_batch(x, y)
    for a, b in zip(trained, model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)

    model.load_weights(path)
    for a, b in zip(trained, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_viterbi_decoder_on_crf_transitions_finds_the_best_path():
    from itertools import product
    from bert4keras.snippets import ViterbiDecoder
    keras.utils.set_random_seed(4)
    crf = ConditionalRandomField()
    crf(keras.layers.Input(shape=(None, 4)))
    trans = K.eval(crf.trans)
    assert not np.allclose(trans, 0)
    rng = np.random.default_rng(0)
    nodes = rng.normal(size=(5, 4))
    decoded = ViterbiDecoder(trans, starts=[0, 1], ends=[0, 2]).decode(nodes)

    def score(path):
        return nodes[range(5), path].sum() + sum(trans[a, b] for a, b in zip(path, path[1:]))
    best = max((p for p in product(range(4), repeat=5) if p[0] in (0, 1) and p[-1] in (0, 2)),
               key=score)
    assert tuple(decoded) == best


def test_web_serving_calls_the_model_for_a_request(monkeypatch):
    """bert4keras' WebServing (bottle) asked TF 1 for its graph and session."""
    import types
    from bert4keras.snippets import WebServing
    query = {'text': '2,7,9', 'k': '2'}
    request = types.SimpleNamespace(GET=types.SimpleNamespace(getunicode=query.get))
    monkeypatch.setitem(sys.modules, 'bottle', types.SimpleNamespace(request=request))
    keras.utils.set_random_seed(5)
    model = _classifier(3, 'softmax')

    def top_classes(text, k=1):
        ids = [int(t) for t in text.split(',')]
        probs = model.predict([np.array([ids]), np.zeros((1, len(ids)))], verbose=0)[0]
        return probs.argsort()[::-1][:k].tolist()

    web = WebServing(port=8864)
    answer = json.loads(web.wraps(top_classes, {'text': (None, True), 'k': (int, False)})())
    assert answer == {'code': 0, 'desc': 'succeeded', 'data': top_classes('2,7,9', 2)}
    missing = json.loads(web.wraps(top_classes, {'query': (None, True)})())
    assert missing['code'] == 1 and 'query' in missing['desc']


def test_cli_run_runs_a_script_as_python_would(tmp_path):
    """Its folder on sys.path (``from task_sentiment_albert import *``), its own
    arguments, __name__ == '__main__', exit status passed on, eager by default."""
    (tmp_path / 'sibling.py').write_text('VALUE = 41\n')
    (tmp_path / 'main.py').write_text(
        'import sys\nimport tensorflow as tf\nfrom sibling import VALUE\n'
        'if __name__ == "__main__":\n'
        '    print(VALUE + 1, sys.argv[1:], tf.executing_eagerly())\n'
        '    sys.exit(3)\n')
    done = subprocess.run([sys.executable, '-m', 'bert4keras_blog.app.cli', 'run',
                           str(tmp_path / 'main.py'), '--flag', 'x'],
                          capture_output=True, text=True, timeout=300, cwd=str(HERE))
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.split('\n')[-2] == "42 ['--flag', 'x'] True"
    missing = subprocess.run([sys.executable, '-m', 'bert4keras_blog.app.cli', 'run',
                              str(tmp_path / 'nope.py')], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2 and 'no such script' in missing.stderr
