"""Post 1 foundations: ALBERT's cost against BERT's, ELECTRA's generator."""
import numpy as np
import pytest

from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.pretrained import (
    compare_architectures, parameter_count, width_for_parameters)

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
def test_albert_costs_what_bert_costs_at_equal_depth_and_width():
    rows = compare_architectures([('BERT', 'bert', CONFIG), ('ALBERT', 'albert', ALBERT)],
                                 batch_size=8, seq_len=128, steps=8)
    bert, albert = rows
    assert albert['parameters'] < 0.5 * bert['parameters']
    for key in ('inference_tokens_per_s', 'training_tokens_per_s'):
        ratio = albert[key] / bert[key]
        assert 0.8 <= ratio <= 1.25, (key, ratio, rows)
