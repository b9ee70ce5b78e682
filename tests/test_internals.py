"""One test per bert4keras / tf_keras behaviour that ``internals.py`` relies on.

If an upgrade of bert4keras or tf_keras changes one of them, the test named
after it fails here, before a decoder or TeaForN goes quietly wrong.
"""
import json

import numpy as np
import pytest

from bert4keras_blog.compat import K, keras, tf
from bert4keras_blog.compat import internals
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.errors import BlogError


def test_a_shared_albert_block_is_called_once_per_configured_layer():
    paths = tiny('albert')
    layers = json.load(open(paths['config']))['num_hidden_layers']
    model = build_model('albert', paths)
    attention = model.get_layer('Transformer-MultiHeadSelfAttention')
    assert internals.call_count(attention) == layers > 1
    assert internals.call_count(model.get_layer('Embedding-Norm')) == 1


def test_the_t5_decoder_object_carries_its_settings():
    paths = tiny('mt5.1.1')
    t5 = build_model('mt5.1.1', paths, return_keras_model=False)
    decoder = internals.t5_decoder(t5)
    assert decoder.model is t5.decoder  # the object behind the Keras decoder
    assert decoder.cross_position_bias is False  # backend step 8
    with pytest.raises(BlogError, match="return_keras_model=False"):
        internals.t5_decoder(t5.decoder)


def test_the_relative_bias_depends_only_on_the_query_key_distance():
    t5 = build_model('mt5.1.1', tiny('mt5.1.1'), return_keras_model=False)
    layer = t5.decoder.get_layer('Decoder-Embedding-Relative-Position')
    bias = internals.relative_position_bias(layer, 6).numpy()
    table = K.get_value(layer.embeddings)  # (buckets, heads)
    assert bias.shape == (table.shape[1], 6, 6)
    for d in range(-5, 6):  # constant along each diagonal ...
        diagonal = np.stack([np.diagonal(bias[h], d) for h in range(bias.shape[0])])
        assert np.allclose(diagonal, diagonal[:, :1])
        # ... and one row of the layer's own table
        assert any(np.allclose(diagonal[:, 0], row) for row in table)
    # the decoder is causal: distinct buckets for each distance into the past
    assert len({tuple(bias[:, 5, k]) for k in range(6)}) == 6


@pytest.fixture(scope='module')
def unilm():
    transformer = build_model('bert', tiny('bert'), application='unilm', with_mlm=True,
                              return_keras_model=False)
    token_ids = np.array([[2, 5, 9, 3, 7, 8, 3]])
    segment_ids = np.array([[0, 0, 0, 0, 1, 1, 1]])
    return transformer, [token_ids, segment_ids]


def test_every_layer_runs_through_apply_so_the_token_lookup_can_be_replaced(unilm):
    transformer, inputs = unilm
    expected = transformer.model.predict(inputs, verbose=0)
    # Feeding back the table's own rows reproduces the model ...
    table = transformer.layers['Embedding-Token'].embeddings
    own = keras.layers.Lambda(lambda t: tf.gather(table, K.cast(t, 'int32')))(
        transformer.inputs[0])
    with internals.token_embeddings_replaced(transformer, own, record=('MLM-Norm',)) as seen:
        rebuilt = keras.Model(transformer.inputs, transformer.call(transformer.inputs))
    np.testing.assert_allclose(rebuilt.predict(inputs, verbose=0), expected, atol=1e-5)
    assert K.int_shape(seen['MLM-Norm'])[-1] == K.int_shape(table)[-1]
    # ... other vectors change it, while the tied output head stays the table.
    zeros = keras.layers.Lambda(lambda t: tf.zeros_like(tf.gather(table, K.cast(t, 'int32'))))(
        transformer.inputs[0])
    with internals.token_embeddings_replaced(transformer, zeros):
        changed = keras.Model(transformer.inputs, transformer.call(transformer.inputs))
    assert not np.allclose(changed.predict(inputs, verbose=0), expected, rtol=0.05, atol=0)
    assert 'apply' not in vars(transformer)  # the method is back


def test_the_replacement_is_removed_when_the_call_fails(unilm):
    transformer, _ = unilm
    with pytest.raises(ZeroDivisionError):
        with internals.token_embeddings_replaced(transformer, None):
            1 / 0
    assert 'apply' not in vars(transformer)


@pytest.mark.parametrize('layer', [keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU])
def test_rnn_cells_read_their_weights_from_the_attributes(layer):
    rnn = layer(4)
    x = tf.constant(np.random.RandomState(0).randn(2, 3, 5), 'float32')
    rnn(x)
    cell, tracked = rnn.cell, list(rnn.cell.trainable_weights)
    state = [tf.zeros([2, 4])] * (2 if layer is keras.layers.LSTM else 1)
    before = cell(x[:, 0], state)[0].numpy()
    doubled = [2 * w for w in tracked]
    with internals.cell_weights_replaced(cell, doubled):
        inside = cell(x[:, 0], state)[0].numpy()
        assert list(cell.trainable_weights) == tracked  # not tracked as new weights
    assert not np.allclose(inside, before)
    np.testing.assert_allclose(cell(x[:, 0], state)[0].numpy(), before)  # restored
    with internals.cell_weights_replaced(cell, tracked):
        np.testing.assert_allclose(cell(x[:, 0], state)[0].numpy(), before)


def test_cells_with_other_weights_are_refused():
    class Odd(keras.layers.Layer):
        state_size = 1

        def build(self, shape):
            self.w = self.add_weight('w', (1,))

    cell = Odd()
    cell.build((1, 1))
    with pytest.raises(BlogError, match='kernel, recurrent_kernel and bias'):
        with internals.cell_weights_replaced(cell, [tf.zeros(1)]):
            pass


def test_the_electra_generator_trims_its_tables_with_keep_tokens():
    """pretrained.ElectraGenerator relies on bert4keras' BERT.load_variable
    leaving tables under ELECTRA's names alone (it trims them itself)."""
    from bert4keras_blog.pretrained import build_electra_generator
    paths = tiny('electra')
    full = build_electra_generator(paths['generator_config'], paths['checkpoint'],
                                   return_keras_model=False)
    keep = [0, 100, 101, 102, 7, 9]
    kept = build_electra_generator(paths['generator_config'], paths['checkpoint'],
                                   keep_tokens=keep, return_keras_model=False)
    table = K.get_value(full.layers['Embedding-Token'].embeddings)
    np.testing.assert_array_equal(K.get_value(kept.layers['Embedding-Token'].embeddings),
                                  table[keep])
    bias = K.get_value(full.layers['MLM-Bias'].beta)
    np.testing.assert_array_equal(K.get_value(kept.layers['MLM-Bias'].beta), bias[keep])


def test_patches_by_assignment_stay_in_the_compatibility_layer():
    """Private names are checked in tests/test_layers.py; besides them, only
    compat/ and internals' own context managers shadow methods or bypass
    Keras' attribute tracking."""
    import glob
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pattern = re.compile(r'object\.__setattr__|\.apply = ')
    offenders = []
    for path in glob.glob(os.path.join(root, 'bert4keras_blog', '**', '*.py'), recursive=True) \
            + glob.glob(os.path.join(root, 'examples', '*.py')):
        if os.path.join('bert4keras_blog', 'compat') in path:
            continue
        for number, line in enumerate(open(path, encoding='utf-8'), 1):
            if pattern.search(line):
                offenders.append('%s:%d' % (os.path.relpath(path, root), number))
    assert offenders == []


def test_special_tokens_of_both_bert4keras_tokenizers():
    from bert4keras.tokenizers import SpTokenizer, Tokenizer
    paths = tiny('bert')
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    ids = internals.special_tokens(tokenizer)
    assert (ids.start, ids.end, ids.mask, ids.unk) == tuple(
        tokenizer.token_to_id(t) for t in ('[CLS]', '[SEP]', '[MASK]', '[UNK]'))
    assert ids.vocab_size == sum(1 for _ in open(paths['dict'], encoding='utf-8'))
    sp = SpTokenizer(tiny('mt5.1.1')['spm'], token_start=None, token_end='</s>')
    ids = internals.special_tokens(sp)
    assert ids.start is None and ids.end == sp.token_to_id('</s>') == 1
    assert ids.vocab_size == sp.sp_model.get_piece_size()


def test_adafactor_keeps_its_fixed_rate_where_we_read_it():
    from bert4keras.optimizers import AdaFactor
    assert internals.adafactor_fixed_rate(AdaFactor(learning_rate=0.01)) == 0.01
    assert internals.adafactor_fixed_rate(AdaFactor(learning_rate=None)) is None  # its schedule


def test_an_unseeded_random_generator_is_stateless_until_switched():
    Generator = internals.TF_KERAS_BACKEND.RandomGenerator
    unseeded = object.__new__(Generator)  # as tf_keras makes one, before its first draw
    Generator.__init__(unseeded, seed=None, rng_type='stateless')
    seeded = Generator(seed=3, rng_type='stateless')
    assert not internals.unseeded_stateless(seeded)
    internals.use_legacy_stateful(unseeded)
    assert not internals.unseeded_stateless(unseeded)
    assert unseeded.random_uniform([4]).numpy().tolist() != \
        unseeded.random_uniform([4]).numpy().tolist()


@pytest.mark.parametrize('owner, name, wrapper, behaviour', [
    ('DATA_ADAPTER.GeneratorDataAdapter', '_standardize_batch', 'standardize',
     'test_bert4keras_idioms'),
    ('COMPILE_UTILS.MetricsContainer', '_get_metric_object', 'resolve', 'test_backend'),
    ('COMPILE_UTILS.MetricsContainer', 'build', 'remember', 'test_backend'),
    ('TF_KERAS_BACKEND.RandomGenerator', '_maybe_init', 'init_then_draw', 'test_backend'),
    ('DATA_ADAPTER', '_make_class_weight_map_fn', 'make', 'test_keras23_backend'),
])
def test_each_private_hook_is_installed_where_tf_keras_calls_it(owner, name, wrapper, behaviour):
    """The hooks wrap what tf_keras itself calls; the behaviour each fix
    gives is tested in the module named by ``behaviour``."""
    target = internals
    for part in owner.split('.'):
        target = getattr(target, part)
    assert getattr(target, name).__name__ == wrapper


def test_layers_are_named_through_the_hooked_method():
    assert keras.layers.Dense(1).name.split('_')[-1].isdigit()
    assert internals.keras_layer_of(keras.Input((2,))).__class__ is keras.layers.InputLayer
    assert internals.keras_layer_of(tf.zeros(1)) is None


def test_compiled_losses_and_metrics_are_as_given():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    assert not internals.is_compiled(model)
    model.compile('sgd', 'mse', metrics=['mae'], weighted_metrics=['mse'])
    assert internals.is_compiled(model)
    assert internals.compiled_losses_and_metrics(model) == ('mse', ['mae'], ['mse'])


def test_the_flat_call_gives_what_the_public_call_gives():
    trace = tf.function(lambda a, b: a * 2 + b).get_concrete_function(
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32))
    flat = internals.flat_caller(trace)
    x = tf.constant([1.0, 2.0])
    np.testing.assert_array_equal(flat(x, np.float32(3)).numpy(), trace(x, 3.0).numpy())


def test_inplace_update_writes_rows():
    x = tf.zeros((4, 3))
    out = internals.inplace_update(x, tf.constant([1, 3]), tf.ones((2, 3)))
    np.testing.assert_array_equal(out.numpy().sum(1), [0, 3, 0, 3])


def test_a_shared_buffer_read_keeps_its_value_after_an_update():
    variable = tf.Variable(tf.ones((2, 2)))
    tf.gather(variable, [0])  # a lookup: TensorFlow would now copy on every read
    read = internals.share_variable_buffer(variable)
    variable.assign_add(tf.ones((2, 2)))
    np.testing.assert_array_equal(read.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(variable.numpy(), 2 * np.ones((2, 2)))


def test_malloc_tuning_runs_on_glibc():
    import platform
    ran = internals.malloc_trim()
    assert ran is (platform.libc_ver()[0] == 'glibc')


def test_parser_actions_are_told_apart():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--seed', type=int)
    kinds = {a.dest: kind for a, kind in internals.parser_actions(parser)}
    assert kinds == {'help': 'help', 'quick': 'flag', 'seed': 'value'}
