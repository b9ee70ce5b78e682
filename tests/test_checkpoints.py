"""Tiny checkpoints: release formats, determinism, round trips, clear errors."""
import filecmp
import json
import os

import numpy as np
import pytest

import bert4keras_blog  # noqa: F401
from bert4keras.tokenizers import SpTokenizer, Tokenizer
from bert4keras_blog.compat import K, tf
from bert4keras_blog.checkpoints import (
    KINDS, build_model, chinese_vocab, read_config, save_checkpoint, save_variables, tiny,
    write_tiny)
from bert4keras_blog.errors import BlogError, CheckpointMismatchError, DataFormatError


def variables_of(checkpoint):
    return dict(tf.train.list_variables(checkpoint))


def test_vocab_follows_google_chinese_layout():
    vocab = chinese_vocab(num_chars=500)
    assert vocab[0] == '[PAD]' and vocab[100 % len(vocab)]  # indexable
    for special in ('[UNK]', '[CLS]', '[SEP]', '[MASK]'):
        assert vocab.count(special) == 1
    assert '的' in vocab and '国' in vocab  # the most frequent characters of the corpus
    assert '##7' in vocab and '##a' in vocab and '##的' not in vocab
    assert len(set(vocab)) == len(vocab)


def test_bert_format_names_and_shapes():
    paths = tiny('bert')
    variables = variables_of(paths['checkpoint'])
    cfg = read_config(paths['config'])
    assert variables['bert/embeddings/word_embeddings'] == [cfg['vocab_size'], 48]
    assert variables['bert/encoder/layer_1/intermediate/dense/kernel'] == [48, 100]
    assert variables['cls/seq_relationship/output_weights'] == [2, 48]  # Google stores it (2, H)
    assert 'bert/encoder/layer_2/output/dense/kernel' not in variables
    assert os.path.basename(paths['checkpoint']) == 'bert_model.ckpt'
    assert os.path.exists(paths['checkpoint'] + '.index')
    assert cfg['hidden_dropout_prob'] == 0.1 and cfg['hidden_act'] == 'gelu'


def test_albert_shares_one_layer_group():
    variables = variables_of(tiny('albert')['checkpoint'])
    shared = [n for n in variables if 'group_0/inner_group_0' in n]
    assert len(shared) == 16  # q,k,v,out dense + 2 norms + 2 FFN dense, kernels and biases
    assert not any('layer_1' in n for n in variables)
    assert variables['bert/embeddings/word_embeddings'][1] == 20  # factorised
    assert variables['bert/encoder/embedding_hidden_mapping_in/kernel'] == [20, 48]


def test_electra_holds_discriminator_and_generator():
    variables = variables_of(tiny('electra')['checkpoint'])
    assert variables['electra/embeddings_project/kernel'] == [20, 48]
    assert variables['generator/embeddings_project/kernel'] == [20, 12]
    assert variables['generator/encoder/layer_0/intermediate/dense/kernel'] == [12, 25]
    assert variables['discriminator_predictions/dense_1/kernel'] == [48, 1]
    assert variables['generator_predictions/dense/kernel'] == [12, 20]
    assert not any(n.startswith('generator/embeddings/') for n in variables)  # shared


def test_mt5_is_mesh_tensorflow_v11_layout():
    paths = tiny('mt5.1.1')
    variables = variables_of(paths['checkpoint'])
    cfg = read_config(paths['config'])
    assert variables['encoder/block_000/layer_001/DenseReluDense/wi_0/kernel'] == [48, 100]
    assert variables['encoder/block_000/layer_000/SelfAttention/q'] == [48, 30]  # 3 heads x d_kv 10
    assert variables['decoder/logits/kernel'] == [48, cfg['vocab_size']]
    assert variables['encoder/block_000/layer_000/SelfAttention/relative_attention_bias'] == [3, 32]
    assert 'encoder/block_001/layer_000/SelfAttention/relative_attention_bias' not in variables
    assert 'decoder/rms_norm/scale' in variables and 'global_step' in variables
    assert 'shared/embedding_slot_vr' in variables  # Adafactor slots, as released
    assert cfg['vocab_size'] % 128 == 0
    spm = SpTokenizer(paths['spm'], token_start=None, token_end='</s>')
    assert spm.id_to_token(0) == '<pad>' and spm.id_to_token(1) == '</s>'
    assert spm.id_to_token(3) == '<0x00>'  # byte fallback pieces follow, as in mT5
    ids = spm.encode('人民日报社论')[0]
    assert ids[-1] == 1 and 2 not in ids and spm.decode(ids) == '人民日报社论'


def test_same_seed_same_bytes(tmp_path):
    a = write_tiny('albert', str(tmp_path / 'a'), seed=3)
    b = write_tiny('albert', str(tmp_path / 'b'), seed=3)
    c = write_tiny('albert', str(tmp_path / 'c'), seed=4)
    for key in ('config', 'dict'):
        assert filecmp.cmp(a[key], b[key], shallow=False)
    same = tf.train.load_variable(a['checkpoint'], 'bert/pooler/dense/kernel')
    np.testing.assert_array_equal(same, tf.train.load_variable(b['checkpoint'],
                                                               'bert/pooler/dense/kernel'))
    assert not np.allclose(same, tf.train.load_variable(c['checkpoint'],
                                                        'bert/pooler/dense/kernel'))


def test_config_overrides_change_the_shapes(tmp_path):
    paths = write_tiny('bert', str(tmp_path), hidden_size=36, num_attention_heads=4)
    assert read_config(paths['config'])['hidden_size'] == 36
    assert variables_of(paths['checkpoint'])['bert/pooler/dense/kernel'] == [36, 36]


def test_unknown_kind_is_named(tmp_path):
    with pytest.raises(BlogError, match="unknown checkpoint kind 'gpt9'"):
        write_tiny('gpt9', str(tmp_path))


@pytest.mark.parametrize('kind', [k for k in KINDS if k != 'roberta'])
def test_variable_mapping_covers_every_weight(kind):
    """Each weight of the built model is read from the file, and each model
    variable of the file is used (optimizer slots and global_step aside)."""
    paths = tiny(kind)
    kwargs = {'with_mlm': True} if kind in ('bert', 'albert', 'gpt') else {}
    if kind == 'electra':
        kwargs = {'with_discriminator': True}
    transformer = build_model(kind, paths, return_keras_model=False, **kwargs)
    mapping = transformer.variable_mapping()
    used = set()
    for layer_name, names in mapping.items():
        layer = transformer.layers.get(layer_name)
        if layer is None:
            continue
        assert len(layer.trainable_weights) == len(names), layer_name
        used.update(names)
    weights = {id(w) for w in transformer.model.trainable_weights}
    mapped = {id(w) for name in mapping if name in transformer.layers
              for w in transformer.layers[name].trainable_weights}
    assert weights <= mapped, 'weights with no checkpoint variable'
    in_file = {n for n in variables_of(paths['checkpoint'])
               if '_slot_' not in n and n != 'global_step'}
    unused = in_file - used
    if kind in ('bert', 'albert', 'gpt'):
        unused -= {'bert/pooler/dense/kernel', 'bert/pooler/dense/bias',
                   'cls/seq_relationship/output_weights', 'cls/seq_relationship/output_bias'}
    if kind == 'electra':
        unused = {n for n in unused if not n.startswith('generator')}
    assert not unused, 'file variables never read: %s' % sorted(unused)[:5]


@pytest.mark.parametrize('kind, options', [('bert', {'with_mlm': True, 'with_nsp': True}),
                                             ('albert', {'with_mlm': True}),
                                             ('electra', {'with_discriminator': True})])
def test_save_checkpoint_round_trips(kind, options, tmp_path):
    """bert4keras' own save needs TF 1 sessions; save_checkpoint writes the
    release names and loading them back gives the same model."""
    paths = tiny(kind)
    transformer = build_model(kind, paths, return_keras_model=False, **options)
    prefix = save_checkpoint(transformer, str(tmp_path / 'again.ckpt'))
    for name, _ in tf.train.list_variables(prefix):
        np.testing.assert_array_equal(tf.train.load_variable(prefix, name),
                                      tf.train.load_variable(paths['checkpoint'], name))
    again = build_model(kind, dict(paths, checkpoint=prefix), **options)
    x = [np.array([[11, 100, 200, 12]]), np.zeros((1, 4))]
    for a, b in zip(_as_list(again.predict(x, verbose=0)),
                    _as_list(transformer.model.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, atol=1e-6)


def _as_list(outputs):
    return outputs if isinstance(outputs, list) else [outputs]


def test_wrong_shape_names_layer_variable_and_both_shapes(tmp_path):
    wide = write_tiny('bert', str(tmp_path), hidden_size=64, num_attention_heads=4)
    paths = dict(tiny('bert'), checkpoint=wide['checkpoint'])
    with pytest.raises(CheckpointMismatchError) as info:
        build_model('bert', paths)
    message = str(info.value)
    assert "layer 'Embedding-Token'" in message
    assert "'bert/embeddings/word_embeddings'" in message
    vocab = read_config(paths['config'])['vocab_size']
    assert '(%d, 64)' % vocab in message and '(%d, 48)' % vocab in message
    assert wide['checkpoint'] in message


def test_missing_variable_is_named(tmp_path):
    paths = tiny('bert')
    values = {n: tf.train.load_variable(paths['checkpoint'], n)
              for n, _ in tf.train.list_variables(paths['checkpoint'])
              if 'layer_1/output/LayerNorm' not in n}
    prefix = str(tmp_path / 'partial.ckpt')
    save_variables(prefix, values)
    with pytest.raises(CheckpointMismatchError,
                       match=r"has no variable 'bert/encoder/layer_1/output/LayerNorm/beta'"):
        build_model('bert', dict(paths, checkpoint=prefix))


def test_keep_tokens_still_works_through_the_checked_loader():
    paths = tiny('bert')
    keep = [0, 100, 101, 102, 103, 500, 600]
    model = build_model('bert', paths, keep_tokens=keep, return_keras_model=False)
    table = model.layers['Embedding-Token'].get_weights()[0]
    full = tf.train.load_variable(paths['checkpoint'], 'bert/embeddings/word_embeddings')
    np.testing.assert_array_equal(table, full[keep])


def test_read_config_reports_the_line(tmp_path):
    path = tmp_path / 'bert_config.json'
    path.write_text('{\n  "hidden_size": 48,\n  "num_hidden_layers": 2\n  "vocab_size": 9\n}\n')
    with pytest.raises(DataFormatError, match=r'bert_config.json line 4: invalid JSON'):
        read_config(str(path))
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(DataFormatError, match='expected a JSON object'):
        read_config(str(path))


def test_tiny_rewrites_an_interrupted_folder(tmp_path, monkeypatch):
    import bert4keras_blog.checkpoints as checkpoints
    monkeypatch.setattr(checkpoints, 'TINY_ROOT', str(tmp_path))
    os.makedirs(tmp_path / 'gpt')
    (tmp_path / 'gpt' / 'vocab.txt').write_text('[PAD]\n')  # a half-written folder
    paths = checkpoints.tiny('gpt')
    assert len(Tokenizer(paths['dict'])._token_dict) > 1000
    assert checkpoints.tiny('gpt') == paths
