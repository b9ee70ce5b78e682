"""bert4keras 0.11.5 works unchanged after ``import bert4keras_blog``."""
import os
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

import bert4keras_blog  # noqa: F401
from bert4keras_blog import compat
from bert4keras_blog.compat import keras, K
from bert4keras import optimizers
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.checkpoints import build_model, tiny


def test_installed_stack_is_the_fixed_one():
    assert metadata.version('bert4keras') == '0.11.5'
    assert metadata.version('tensorflow').startswith('2.21.')
    assert metadata.version('tf-keras').startswith('2.21.')
    assert int(metadata.version('keras').split('.')[0]) >= 3  # never downgraded to 2.3
    assert keras.__name__.startswith('tf_keras')
    versions = compat.stack_versions()
    assert versions['bert4keras'] == '0.11.5'


def test_plain_bert4keras_import_works_in_a_fresh_process():
    code = ('import bert4keras_blog\n'
            'from bert4keras.models import build_transformer_model\n'
            'from bert4keras.optimizers import Adam\n'
            'import keras\n'
            'print(keras.__name__, Adam.__mro__[1].__module__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0].startswith('tf_keras')
    assert 'legacy' in out[1]  # Adam sits on the OptimizerV2 base it was written for


def test_tf_keras_optimizer_base_is_left_alone():
    assert keras.optimizers.Optimizer is not keras.optimizers.legacy.Optimizer
    assert issubclass(optimizers.Adam, keras.optimizers.legacy.Optimizer)


def test_wrong_bert4keras_version_names_the_fix(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, 'version',
                        lambda name: '0.8.1' if name == 'bert4keras' else real(name))
    with pytest.raises(compat.StackError, match=r'bert4keras 0\.8\.1 .*--no-deps bert4keras==0\.11\.5'):
        compat.check_versions()


def test_old_keras_names_the_fix(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, 'version',
                        lambda name: '2.3.1' if name == 'keras' else real(name))
    with pytest.raises(compat.StackError, match=r'keras 2\.3\.1 .*tf-keras==2\.21'):
        compat.check_versions()


def test_random_init_differs_per_weight_and_is_seeded():
    from bert4keras.models import build_transformer_model
    kwargs = dict(vocab_size=50, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=20, hidden_act='gelu', max_position=16)
    keras.utils.set_random_seed(7)
    first = build_transformer_model(**kwargs)
    attention = first.get_layer('Transformer-0-MultiHeadSelfAttention').get_weights()
    q, k, v = attention[0], attention[2], attention[4]
    assert not np.allclose(q, k) and not np.allclose(k, v)
    assert 0.01 < q.std() < 0.03  # truncated normal, stddev 0.02
    keras.utils.set_random_seed(7)
    again = build_transformer_model(**kwargs)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- optimizers

def _regression_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 8)).astype('float32')
    w = rng.normal(size=(8, 1)).astype('float32')
    return x, np.tanh(x @ w) + 0.01 * rng.normal(size=(256, 1)).astype('float32')


def _train(optimizer, epochs=20, model_hook=None):
    x, y = _regression_data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(16, activation='tanh', input_shape=(8,)),
                              keras.layers.Dense(1)])
    model.compile(loss='mse', optimizer=optimizer)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=False)
    return first, model.evaluate(x, y, verbose=0), model


def _wrapped(*extensions, **kwargs):
    cls = optimizers.Adam
    for extend in extensions:
        cls = extend(cls)
    return cls(learning_rate=kwargs.pop('learning_rate', 1e-2), **kwargs)


OPTIMIZERS = {
    'Adam': lambda: optimizers.Adam(1e-2),
    'weight_decay': lambda: _wrapped(optimizers.extend_with_weight_decay,
                                     weight_decay_rate=0.01),
    'gradient_accumulation': lambda: _wrapped(optimizers.extend_with_gradient_accumulation,
                                              grad_accum_steps=2),
    'piecewise_linear_lr': lambda: _wrapped(optimizers.extend_with_piecewise_linear_lr,
                                            lr_schedule={20: 1.0, 100: 0.5}),
    'layer_adaptation': lambda: _wrapped(optimizers.extend_with_layer_adaptation),
    'lookahead': lambda: _wrapped(optimizers.extend_with_lookahead,
                                  steps_per_slow_update=5, slow_step_size=0.5),
    'lazy_optimization': lambda: _wrapped(optimizers.extend_with_lazy_optimization),
    'exponential_moving_average': lambda: _wrapped(
        optimizers.extend_with_exponential_moving_average, ema_momentum=0.9),
    'parameter_wise_lr': lambda: _wrapped(optimizers.extend_with_parameter_wise_lr,
                                          paramwise_lr_schedule={'dense': 1.0}),
    'weight_decay+accumulation+piecewise': lambda: _wrapped(
        optimizers.extend_with_weight_decay, optimizers.extend_with_gradient_accumulation,
        optimizers.extend_with_piecewise_linear_lr, weight_decay_rate=0.01,
        grad_accum_steps=2, lr_schedule={20: 1.0}),
    'AdaFactor': lambda: optimizers.AdaFactor(learning_rate=1e-2),
    'AdaFactor (relative step)': lambda: optimizers.AdaFactor(learning_rate=None),
    'Lion': lambda: optimizers.Lion(learning_rate=1e-3),
}


@pytest.mark.parametrize('name', sorted(OPTIMIZERS))
def test_optimizer_trains_a_small_model(name):
    first, last, _ = _train(OPTIMIZERS[name]())
    assert last < 0.5 * first, '%s: loss %.4f -> %.4f' % (name, first, last)


def test_adam_matches_the_textbook_update():
    """One step of bert4keras Adam on a known gradient, against the formula."""
    var = K.variable(np.array([1.0, -2.0], 'float32'))
    grad = np.array([0.5, -0.25], 'float32')
    optimizer = optimizers.Adam(learning_rate=0.1, epsilon=1e-6)
    optimizer.apply_gradients([(K.constant(grad), var)])
    m, v = 0.1 * grad, 0.001 * grad ** 2
    expected = np.array([1.0, -2.0]) - 0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-6)
    np.testing.assert_allclose(K.get_value(var), expected, rtol=1e-5)


def test_weight_decay_shrinks_weights_beyond_adam():
    _, _, plain = _train(optimizers.Adam(1e-2), epochs=5)
    _, _, decayed = _train(_wrapped(optimizers.extend_with_weight_decay,
                                    weight_decay_rate=0.5), epochs=5)
    norm = lambda m: sum(float(np.sum(w ** 2)) for w in m.get_weights())  # noqa: E731
    assert norm(decayed) < 0.9 * norm(plain)


def test_gradient_accumulation_updates_every_k_steps():
    """Iteration 0 applies the (empty) accumulator; then every 3rd step applies
    the mean of the 3 gradients gathered since."""
    var = K.variable(np.array([1.0], 'float32'))
    optimizer = _wrapped(optimizers.extend_with_gradient_accumulation, grad_accum_steps=3,
                         learning_rate=0.1)
    values = []
    for _ in range(7):
        optimizer.apply_gradients([(K.constant([1.0]), var)])
        values.append(float(K.get_value(var)[0]))
    changes = np.abs(np.diff([1.0] + values)) > 1e-7
    assert changes.tolist() == [False, False, False, True, False, False, True]


class _PairGenerator(DataGenerator):
    """bert4keras' data template: a batch of (token_ids, segment_ids, label)."""

    def __init__(self, data, tokenizer, batch_size):
        super().__init__(data, batch_size)
        self.tokenizer = tokenizer

    def __iter__(self, random=False):
        tokens, segments, labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            token_ids, segment_ids = self.tokenizer.encode(text, maxlen=32)
            tokens.append(token_ids)
            segments.append(segment_ids)
            labels.append([label])
            if len(tokens) == self.batch_size or is_end:
                yield [sequence_padding(tokens), sequence_padding(segments)], np.array(labels)
                tokens, segments, labels = [], [], []


@pytest.mark.slow
def test_tiny_bert_classifier_trains_with_bert4keras_adamw():
    """The bert4keras way end to end: tokenizer, DataGenerator, AdamW, fit."""
    from bert4keras_blog.corpora import reviews
    paths = tiny('bert')
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    rng = np.random.default_rng(0)
    data = reviews()
    data = [data[i] for i in rng.permutation(len(data))[:256]]
    bert = build_model('bert', paths, return_keras_model=False)
    output = keras.layers.Lambda(lambda x: x[:, 0])(bert.model.output)
    output = keras.layers.Dense(2, activation='softmax')(output)
    model = keras.models.Model(bert.model.input, output)
    AdamW = optimizers.extend_with_weight_decay(optimizers.Adam, 'AdamW')
    model.compile(loss='sparse_categorical_crossentropy',
                  optimizer=AdamW(learning_rate=1e-3, weight_decay_rate=0.01))
    generator = _PairGenerator(data, tokenizer, batch_size=32)
    losses = model.fit(generator.forfit(), steps_per_epoch=len(generator), epochs=4,
                       verbose=0).history['loss']
    assert losses[-1] < losses[0] - 0.05, losses


def test_importing_bert4keras_first_is_explained():
    code = 'import bert4keras.snippets\nimport bert4keras_blog\n'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env={k: v for k, v in __import__('os').environ.items()
                                 if k not in ('TF_KERAS', 'TF_USE_LEGACY_KERAS')})
    assert result.returncode != 0
    assert 'put `import bert4keras_blog` before any bert4keras import' in result.stderr


_FREED_TENSOR = """
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2 ** 20
import bert4keras_blog
from bert4keras_blog.compat import tf
tf.constant(1.0) + 1
base = rss()
x = tf.fill([64 << 20], 1.0) + 1  # 256 MB, written
peak = rss()
del x
print(peak - base, rss() - base)
"""


def test_freed_tensors_leave_memory_even_where_tensorflow_uses_onednn():
    """TensorFlow's oneDNN allocator (on by default on AVX-512 VNNI/BF16
    CPUs) keeps freed blocks in a pool; imported through us, freed tensors
    go back to the system on every CPU."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_ONEDNN_USE_SYSTEM_ALLOCATOR'}
    out = subprocess.run([sys.executable, '-c', _FREED_TENSOR], capture_output=True,
                         text=True, env=dict(env, TF_CPP_MIN_LOG_LEVEL='3'), check=True)
    peak, after = map(float, out.stdout.split()[-2:])
    assert peak > 200  # the tensors were resident
    assert after < 64, out.stdout
