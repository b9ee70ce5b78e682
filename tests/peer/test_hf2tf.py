"""Hugging Face folders -> Google-format checkpoints (``hf2tf.convert``).

Two checks per kind, no downloads:
- round trip: our tiny Google-format checkpoint is read by transformers' own
  TF reader, saved with ``save_pretrained`` (safetensors), converted back,
  and every tensor equals the original;
- outputs: a model transformers builds from a config (random weights) is
  converted, loaded by bert4keras, and gives the same hidden states and
  logits as the Hugging Face model.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.errors import BlogError
from bert4keras_blog.checkpoints.hf2tf import convert

torch = pytest.importorskip('torch', reason='peer extras: pip install -r requirements/peer.txt')
transformers = pytest.importorskip('transformers')

from test_peer_checkpoints import (  # noqa: E402
    TOL, assert_close_where, bert_config, bert_inputs, electra_config, hf_mt5, hf_outputs,
    mt5_inputs, read_json)


def variables(prefix, skip=()):
    return {name: tf.train.load_variable(prefix, name)
            for name, _ in tf.train.list_variables(prefix)
            if not any(s in name for s in skip)}


def save_hf(model, folder, vocab):
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(vocab, os.path.join(folder, 'spiece.model' if vocab.endswith('.model')
                                    else 'vocab.txt'))
    return folder


def assert_same_tensors(converted, original, skip=()):
    ours, theirs = variables(converted), variables(original, skip)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_bert_round_trip_and_outputs(tmp_path):
    from transformers import BertConfig, BertForPreTraining
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
    paths = tiny('bert')
    config = bert_config(read_json(paths['config']), BertConfig)
    peer = load_tf_weights_in_bert(BertForPreTraining(config), config, paths['checkpoint'])
    folder = save_hf(peer, str(tmp_path / 'hf'), paths['dict'])
    out = convert(folder, str(tmp_path / 'tf'), 'bert')
    assert_same_tensors(out['checkpoint'], paths['checkpoint'])

    token_ids, segment_ids = bert_inputs(out['dict'])
    mlm = build_model('bert', out, with_mlm='linear')
    theirs = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(mlm.predict([token_ids, segment_ids], verbose=0),
                       theirs.prediction_logits, token_ids, 'MLM logits')


def test_albert_round_trip(tmp_path):
    from transformers import AlbertConfig, AlbertForPreTraining
    from transformers.models.albert.modeling_albert import load_tf_weights_in_albert
    paths = tiny('albert')
    cfg = read_json(paths['config'])
    config = bert_config(cfg, AlbertConfig, embedding_size=cfg['embedding_size'],
                         num_hidden_groups=1, inner_group_num=1)
    peer = load_tf_weights_in_albert(AlbertForPreTraining(config), config, paths['checkpoint'])
    folder = save_hf(peer, str(tmp_path / 'hf'), paths['dict'])
    out = convert(folder, str(tmp_path / 'tf'), 'albert')
    assert_same_tensors(out['checkpoint'], paths['checkpoint'])
    token_ids, segment_ids = bert_inputs(out['dict'])
    theirs = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(build_model('albert', out).predict([token_ids, segment_ids], verbose=0),
                       theirs.hidden_states[-1], token_ids, 'hidden states')


def test_electra_discriminator_and_generator_round_trip(tmp_path):
    from transformers import ElectraForMaskedLM, ElectraForPreTraining
    from transformers.models.electra.modeling_electra import load_tf_weights_in_electra
    paths = tiny('electra')
    disc_config = electra_config(paths, 'config')
    disc = load_tf_weights_in_electra(ElectraForPreTraining(disc_config), disc_config,
                                      paths['checkpoint'], 'discriminator')
    gen_config = electra_config(paths, 'generator_config')
    gen = load_tf_weights_in_electra(ElectraForMaskedLM(gen_config), gen_config,
                                     paths['checkpoint'], 'generator')
    disc_out = convert(save_hf(disc, str(tmp_path / 'hf-d'), paths['dict']),
                       str(tmp_path / 'tf-d'), 'electra')
    gen_out = convert(save_hf(gen, str(tmp_path / 'hf-g'), paths['dict']),
                      str(tmp_path / 'tf-g'), 'electra')
    original = variables(paths['checkpoint'])
    for converted in (disc_out['checkpoint'], gen_out['checkpoint']):
        for name, value in variables(converted).items():
            np.testing.assert_array_equal(value, original[name], err_msg=name)
    together = set(variables(disc_out['checkpoint'])) | set(variables(gen_out['checkpoint']))
    assert together == set(original) - {'global_step'}

    token_ids, segment_ids = bert_inputs(disc_out['dict'])
    logits = build_model('electra', disc_out, with_discriminator='linear').predict(
        [token_ids, segment_ids], verbose=0)[..., 0]
    assert_close_where(logits, hf_outputs(disc, token_ids, segment_ids).logits, token_ids,
                       'replaced-token logits')


def test_mt5_round_trip_and_outputs(tmp_path):
    paths = tiny('mt5.1.1')
    peer = hf_mt5(paths)
    folder = save_hf(peer, str(tmp_path / 'hf'), paths['spm'])
    out = convert(folder, str(tmp_path / 'tf'), 'mt5.1.1')
    assert_same_tensors(out['checkpoint'], paths['checkpoint'], skip=('_slot_', 'global_step'))

    sources, targets = mt5_inputs(out['spm'])
    logits = build_model('mt5.1.1', out, with_lm='linear').predict([sources, targets], verbose=0)
    with torch.no_grad():
        theirs = peer(input_ids=torch.tensor(sources, dtype=torch.long),
                      attention_mask=torch.tensor(sources != 0, dtype=torch.long),
                      decoder_input_ids=torch.tensor(targets, dtype=torch.long)).logits.numpy()
    lengths = (targets != 0).sum(1) + 1
    keep = np.arange(targets.shape[1])[None] < lengths[:, None]
    assert np.abs(logits[keep] - theirs[keep]).max() < TOL


def test_model_built_from_a_config_converts_and_matches(tmp_path):
    """No checkpoint of ours involved: transformers' random BERT, saved as a
    PyTorch .bin, converted and loaded by bert4keras."""
    from transformers import BertConfig, BertModel
    paths = tiny('bert')
    config = bert_config(read_json(paths['config']), BertConfig)
    torch.manual_seed(0)
    peer = BertModel(config, add_pooling_layer=True).eval()
    folder = str(tmp_path / 'hf')
    peer.save_pretrained(folder, safe_serialization=False)
    shutil.copy(paths['dict'], folder)
    assert os.path.exists(os.path.join(folder, 'pytorch_model.bin'))
    out = convert(folder, str(tmp_path / 'tf'), 'bert')
    token_ids, segment_ids = bert_inputs(out['dict'])
    ours = build_model('bert', out).predict([token_ids, segment_ids], verbose=0)
    assert_close_where(ours, hf_outputs(peer, token_ids, segment_ids).last_hidden_state,
                       token_ids, 'hidden states')


def test_unknown_and_missing_tensors_are_named_and_nothing_is_written(tmp_path):
    from safetensors.numpy import save_file
    paths = tiny('bert')
    folder = tmp_path / 'hf'
    folder.mkdir()
    (folder / 'config.json').write_text(open(paths['config']).read())
    shutil.copy(paths['dict'], str(folder))
    config = read_json(paths['config'])
    embeddings = np.zeros((config['vocab_size'], config['hidden_size']), 'float32')
    save_file({'bert.embeddings.word_embeddings.weight': embeddings,
               'adapter.up.weight': np.zeros((2, 2), 'float32')},
              str(folder / 'model.safetensors'))
    with pytest.raises(BlogError, match='adapter.up.weight'):
        convert(str(folder), str(tmp_path / 'out'), 'bert')
    assert not os.path.exists(tmp_path / 'out')
    assert [p for p in os.listdir(tmp_path) if p.startswith('.hf2tf')] == []
    save_file({'bert.embeddings.word_embeddings.weight': embeddings},
              str(folder / 'model.safetensors'))
    with pytest.raises(BlogError, match='missing.*bert/embeddings/LayerNorm/beta'):
        convert(str(folder), str(tmp_path / 'out'), 'bert')
    assert not os.path.exists(tmp_path / 'out')
    with pytest.raises(BlogError, match='unknown kind'):
        convert(str(folder), str(tmp_path / 'out'), 'gpt9')


def test_pretrained_converts_a_hugging_face_folder_once_and_reuses_it(tmp_path, monkeypatch,
                                                                     capsys):
    from transformers import BertConfig, BertForPreTraining
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
    from bert4keras_blog.checkpoints import find_release, finding
    paths = tiny('bert')
    config = bert_config(read_json(paths['config']), BertConfig)
    peer = load_tf_weights_in_bert(BertForPreTraining(config), config, paths['checkpoint'])
    folder = save_hf(peer, str(tmp_path / 'bert-base-chinese'), paths['dict'])
    monkeypatch.setattr(finding, 'converted_root', lambda: str(tmp_path / 'converted'))
    found = find_release(folder, kinds=('bert', 'roberta'))
    assert 'converting it once' in capsys.readouterr().out
    assert found['kind'] == 'bert'
    assert found['checkpoint'] == str(tmp_path / 'converted' / 'bert-base-chinese' /
                                      'bert_model.ckpt')
    assert_same_tensors(found['checkpoint'], paths['checkpoint'])
    assert find_release(folder) == found and 'converting' not in capsys.readouterr().out


# ---------------------------------------------- hostile folders (issue 19)

@pytest.fixture(scope='module')
def hf_bert(tmp_path_factory):
    """A transformers BERT folder (safetensors), saved once; tests copy it."""
    from transformers import BertConfig, BertModel
    paths = tiny('bert')
    torch.manual_seed(0)
    model = BertModel(bert_config(read_json(paths['config']), BertConfig))
    return save_hf(model, str(tmp_path_factory.mktemp('hf') / 'bert'), paths['dict'])


def _copy(folder, tmp_path):
    return shutil.copytree(folder, str(tmp_path / 'src'))


def _convert_cli(src, out, kind='bert'):
    from bert4keras_blog.app import cli
    return cli.main(['convert', 'hf2tf', src, out, '--kind', kind])


def _one_line(capsys, *expected):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    for text in expected:
        assert text in err[0], (text, err[0])


def _rewrite_config(src, change):
    path = os.path.join(src, 'config.json')
    config = read_json(path)
    change(config)
    with open(path, 'w') as f:
        f.write(json.dumps(config))


def test_hostile_folders_are_one_line_and_write_nothing(hf_bert, tmp_path, capsys):
    out = str(tmp_path / 'out')
    src = _copy(hf_bert, tmp_path)
    weights = os.path.join(src, 'model.safetensors')
    with open(weights, 'r+b') as f:  # cut: the header promises more bytes
        f.truncate(os.path.getsize(weights) // 2)
    assert _convert_cli(src, out) == 2
    _one_line(capsys, weights, 'not a readable safetensors file')
    with open(weights, 'wb') as f:
        f.write(b'\xff' * 64)
    assert _convert_cli(src, out) == 2
    _one_line(capsys, weights, 'not a readable safetensors file')

    src = shutil.copytree(hf_bert, str(tmp_path / 'bad_json'))
    with open(os.path.join(src, 'config.json'), 'a') as f:
        f.write('\n,}')
    assert _convert_cli(src, out) == 2
    _one_line(capsys, os.path.join(src, 'config.json'), 'invalid JSON')

    assert _convert_cli(hf_bert, out, 'mt5.1.1') == 2
    _one_line(capsys, "model_type is 'bert', not a mt5.1.1 model; convert it with --kind bert")

    src = shutil.copytree(hf_bert, str(tmp_path / 'no_heads'))
    _rewrite_config(src, lambda c: c.pop('num_attention_heads'))
    assert _convert_cli(src, out) == 2
    _one_line(capsys, "key 'num_attention_heads' is missing")

    src = shutil.copytree(hf_bert, str(tmp_path / 'wider'))
    _rewrite_config(src, lambda c: c.update(intermediate_size=c['intermediate_size'] * 2))
    assert _convert_cli(src, out) == 2  # converted with exit 0 before
    _one_line(capsys, 'the config and the weights disagree', 'intermediate')
    assert not os.path.exists(out)
    assert [p for p in os.listdir(tmp_path) if p.startswith('.hf2tf')] == []


def test_output_folder_follows_the_umask(hf_bert, tmp_path):
    previous = os.umask(0o022)
    try:
        paths = convert(hf_bert, str(tmp_path / 'out'), 'bert')
    finally:
        os.umask(previous)
    assert os.stat(str(tmp_path / 'out')).st_mode & 0o777 == 0o755  # mkdtemp's 0700 before
    assert os.path.exists(paths['checkpoint'] + '.index')


SLOW_CONVERT = r'''
import sys, time
from bert4keras_blog.checkpoints import hf2tf
from bert4keras_blog.app.cli import main
read = hf2tf.iter_tensors
def slowly(path):
    for item in read(path):
        print('tensor', flush=True)
        time.sleep(0.2)
        yield item
hf2tf.iter_tensors = slowly
sys.exit(main(['convert', 'hf2tf'] + sys.argv[1:]))
'''


def test_sigterm_during_conversion_leaves_nothing_behind(hf_bert, tmp_path):
    import signal
    import subprocess
    import sys
    out = str(tmp_path / 'out')
    child = subprocess.Popen([sys.executable, '-c', SLOW_CONVERT, hf_bert, out, '--kind',
                              'bert'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == 'tensor'  # staging folder exists now
    assert any(p.startswith('.hf2tf') for p in os.listdir(tmp_path))
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 143
    assert sorted(os.listdir(tmp_path)) == []  # no staging folder, no half output
