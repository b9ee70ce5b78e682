"""Post 1 foundations: ALBERT's cost against BERT's, ELECTRA's generator."""
import os

import numpy as np
import pytest

from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.pretrained import (
    build_classifier, compare_architectures, flops_per_token, parameter_count,
    width_for_parameters)

CONFIG = dict(vocab_size=3000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=512, hidden_act='gelu', max_position=256)
ALBERT = dict(CONFIG, embedding_size=64)


@pytest.mark.parametrize('model, config', [('bert', CONFIG), ('albert', ALBERT),
                                           ('albert_unshared', ALBERT)])
def test_parameter_count_from_the_config_is_exact(model, config):
    from bert4keras.models import build_transformer_model
    keras_count = build_transformer_model(model=model, **config).count_params()
    assert parameter_count(config, model) == keras_count


def test_albert_parameters_do_not_grow_with_depth():
    deep = dict(ALBERT, num_hidden_layers=24)
    assert parameter_count(deep, 'albert') == parameter_count(ALBERT, 'albert')
    assert parameter_count(deep, 'bert') > 3 * parameter_count(CONFIG, 'bert')
    target = parameter_count(CONFIG, 'bert')
    hidden = width_for_parameters(ALBERT, target)
    wide = dict(ALBERT, hidden_size=hidden, intermediate_size=4 * hidden)
    assert hidden > CONFIG['hidden_size']  # ALBERT must be wider to hold as many weights
    assert abs(parameter_count(wide, 'albert') - target) < 0.05 * target


def test_unshared_albert_starts_as_the_shared_one():
    paths = tiny('albert')
    x = [np.array([[2, 100, 200, 300, 3]]), np.zeros((1, 5))]
    shared = build_model('albert', paths).predict(x, verbose=0)
    unshared = build_model('albert_unshared', paths).predict(x, verbose=0)
    np.testing.assert_allclose(unshared, shared, atol=1e-6)


@pytest.mark.slow
def test_albert_runs_at_bert_speed_at_equal_depth_and_width():
    """Equal FLOPs per token and equal throughput (tokens per CPU-second,
    median of interleaved rounds: the wall clock of a shared 2-core machine
    swung 0.65-1.9 between runs of the same two models, CPU time stays
    within a few per cent), with under half the parameters."""
    size = dict(CONFIG, hidden_size=256, intermediate_size=1024, max_position=512)
    albert = dict(size, embedding_size=256)  # differ only in sharing the layers
    assert flops_per_token(albert, 128, 'albert') == flops_per_token(size, 128, 'bert')
    rows = compare_architectures([('BERT', 'bert', size), ('ALBERT', 'albert', albert)],
                                 batch_size=16, seq_len=128, steps=8)
    bert, albert_row = rows
    assert albert_row['parameters'] == parameter_count(albert, 'albert') < 0.5 * bert['parameters']
    assert albert_row['flops_per_token'] == bert['flops_per_token']
    for key in ('inference_tokens_per_cpu_s', 'training_tokens_per_cpu_s'):
        assert 0.8 <= albert_row[key] / bert[key] <= 1.25, (key, albert_row[key], bert[key])


def electra_data(tokenizer, n=64):
    from bert4keras.snippets import sequence_padding
    from bert4keras_blog.corpora import peoples_daily
    ids = [tokenizer.encode(t, maxlen=40)[0] for t in peoples_daily(limit=n)]
    token_ids = sequence_padding(ids)
    return [token_ids, np.zeros_like(token_ids)]


def test_electra_pair_shares_embeddings_and_matches_the_separate_builds():
    from bert4keras_blog.pretrained import build_electra_generator, build_electra_pair
    paths = tiny('electra')
    discriminator, generator = build_electra_pair(paths['config'], paths['generator_config'],
                                                  paths['checkpoint'])
    assert generator.layers['Generator-Embedding-Token'] is \
        discriminator.layers['Embedding-Token']
    x = [np.array([[11, 100, 200, 300, 12]]), np.zeros((1, 5))]
    alone = build_electra_generator(paths['generator_config'], paths['checkpoint'])
    np.testing.assert_allclose(generator.model.predict(x, verbose=0),
                               alone.predict(x, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_electra_step_lowers_both_losses_on_real_text():
    from bert4keras.optimizers import Adam
    from bert4keras.tokenizers import Tokenizer
    from bert4keras_blog.compat import keras
    from bert4keras_blog.pretrained import (
        ElectraPretraining, MaskedLMPretraining, build_electra_pair)
    paths = tiny('electra')
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    keras.utils.set_random_seed(0)
    discriminator, generator = build_electra_pair(paths['config'], paths['generator_config'],
                                                  paths['checkpoint'])
    special = [tokenizer._token_start_id, tokenizer._token_end_id]
    model = ElectraPretraining(discriminator, generator, tokenizer._token_mask_id, special)
    model.compile(optimizer=Adam(2e-3))
    history = model.fit(electra_data(tokenizer), batch_size=16, epochs=8, verbose=0).history
    assert history['mlm_loss'][-1] < history['mlm_loss'][0] - 0.5
    assert history['rtd_loss'][-1] < history['rtd_loss'][0]
    baseline = MaskedLMPretraining(build_model('bert', tiny('bert'), with_mlm=True,
                                               return_keras_model=False),
                                   tokenizer._token_mask_id, special)
    baseline.compile(optimizer=Adam(2e-3))
    losses = baseline.fit(electra_data(tokenizer), batch_size=16, epochs=4,
                          verbose=0).history['mlm_loss']
    assert losses[-1] < losses[0]


def test_replaced_token_detection_reports_every_token():
    from bert4keras.tokenizers import Tokenizer
    from bert4keras_blog.pretrained import build_electra_pair, replaced_token_detection
    paths = tiny('electra')
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    discriminator, generator = build_electra_pair(paths['config'], paths['generator_config'],
                                                  paths['checkpoint'])
    text = '人民日报发表新年社论'
    rows = replaced_token_detection(text, tokenizer, generator.model, discriminator.model,
                                    rate=0.5, seed=3)
    assert ''.join(r['token'] for r in rows) == text
    assert all(0 <= r['score'] <= 1 for r in rows)
    assert all(r['replaced'] == (r['shown'] != r['token']) for r in rows)
    assert rows == replaced_token_detection(text, tokenizer, generator.model,
                                            discriminator.model, rate=0.5, seed=3)


def test_flops_grow_with_width_not_with_sharing():
    wide = dict(ALBERT, hidden_size=256, intermediate_size=1024)
    assert flops_per_token(ALBERT, 64, 'albert') == flops_per_token(
        dict(ALBERT), 64, 'albert_unshared')
    assert flops_per_token(wide, 64, 'albert') > 3 * flops_per_token(ALBERT, 64, 'albert')


def test_classifier_on_the_electra_discriminator_trains():
    from bert4keras_blog.compat import keras
    model = build_classifier('electra', tiny('electra'), num_labels=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy')
    x = [np.tile(np.array([[11, 100, 200, 12], [11, 300, 400, 12], [11, 500, 600, 12]]), (4, 1)),
         np.zeros((12, 4))]
    y = np.tile([0, 1, 2], 4)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before
    assert model.output_shape == (None, 3)


class _StepClock(object):
    """A clock that advances one second per reading: the budget's arithmetic
    without waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_time_budget_ends_fit_when_the_seconds_are_spent(monkeypatch):
    from bert4keras_blog.compat import keras
    from bert4keras_blog.pretrained import budget
    monkeypatch.setitem(budget.CLOCKS, 'wall', _StepClock())
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile(keras.optimizers.SGD(0.1), 'mse')
    x = np.random.default_rng(0).normal(size=(64, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    said = []
    timer = budget.TimeBudget(20, log_every=3, say=said.append, report_every=5)
    model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[timer])
    summary = timer.summary()
    # A step reads the clock once, twice when it logs: 20 "seconds" are
    # spent within 20 steps, well before the 80 that 10 epochs would take.
    assert 7 <= summary['steps'] <= 20
    assert summary['first_step_seconds'] is not None
    steps = [row['step'] for row in summary['curve']]
    assert steps[0] == 1 and steps[-1] == summary['steps']
    assert all(b - a <= 3 for a, b in zip(steps, steps[1:]))
    assert summary['curve'][-1]['loss'] < summary['curve'][0]['loss']  # the fit went on
    assert said[-1].startswith('  pretraining: ') and 'of 20 s' in said[-1]


def test_time_budget_refuses_a_bad_clock_or_budget():
    from bert4keras_blog.errors import SettingError
    from bert4keras_blog.pretrained import TimeBudget
    with pytest.raises(SettingError, match="clock must be one of wall, cpu, got 'gpu'"):
        TimeBudget(10, clock='gpu')
    with pytest.raises(SettingError, match='budget must be positive, got 0 seconds'):
        TimeBudget(0)


def test_an_electra_pair_written_as_a_release_loads_back_unchanged(tmp_path):
    """Discriminator and generator go into one checkpoint, found and loaded
    as HFL's release is; a changed weight must come back as changed."""
    from bert4keras_blog.checkpoints import find_release
    from bert4keras_blog.compat import K
    from bert4keras_blog.pretrained import build_electra_pair, write_initial, write_release
    initial = write_initial('electra', str(tmp_path / 'initial'), hidden_size=32,
                            num_attention_heads=2, intermediate_size=64, num_hidden_layers=2,
                            num_chars=300, embedding_size=32, generator_hidden_size=8,
                            generator_intermediate_size=16)
    pair = build_electra_pair(initial['config'], initial['generator_config'],
                              initial['checkpoint'])
    for model in pair:  # stands in for training: every weight moves
        for weight in model.model.weights:
            K.set_value(weight, K.get_value(weight) + 0.01)
    paths = find_release(os.path.dirname(write_release(
        pair, initial, str(tmp_path / 'electra_small_zh'))['checkpoint']))
    assert paths['kind'] == 'electra' and 'generator_config' in paths
    loaded = build_electra_pair(paths['config'], paths['generator_config'], paths['checkpoint'])
    x = [np.array([[11, 100, 200, 300, 12]]), np.zeros((1, 5))]
    for trained, again in zip(pair, loaded):
        np.testing.assert_allclose(again.model.predict(x, verbose=0),
                                   trained.model.predict(x, verbose=0), atol=1e-5)
    fresh = build_electra_pair(initial['config'], initial['generator_config'],
                               initial['checkpoint'])
    assert not np.allclose(fresh[0].model.predict(x, verbose=0),
                           loaded[0].model.predict(x, verbose=0), atol=1e-4)
