"""Post 6: vocabulary trimming and loading mT5 v1.1."""
import json
import os

import numpy as np
import pytest

from bert4keras_blog.checkpoints import tiny
from bert4keras_blog.corpora import peoples_daily
from bert4keras_blog.errors import BlogError, CheckpointMismatchError
from bert4keras_blog.mt5 import CONFIGS, chinese_rouge_bleu, load_mt5, trim_vocabulary


@pytest.fixture(scope='module')
def trimmed(tmp_path_factory):
    folder = tmp_path_factory.mktemp('trim')
    corpus = folder / 'corpus.txt'
    corpus.write_text('\n'.join(peoples_daily(limit=3000)), encoding='utf-8')
    out = str(folder / 'trimmed.model')
    keep = trim_vocabulary(tiny('mt5.1.1')['spm'], [str(corpus)], out, keep_last=20,
                           progress=False)
    return out, keep, folder


def test_trimmed_tokenizer_encodes_kept_text_to_the_same_pieces(trimmed):
    import sentencepiece as spm
    out, keep, folder = trimmed
    full = spm.SentencePieceProcessor(model_file=tiny('mt5.1.1')['spm'])
    small = spm.SentencePieceProcessor(model_file=out)
    assert 259 < small.get_piece_size() == len(keep) < full.get_piece_size()
    assert keep[:259] == list(range(259)) and keep == sorted(keep)
    assert keep[-20:] == list(range(full.get_piece_size() - 20, full.get_piece_size()))
    for text in peoples_daily(limit=3000)[::50]:  # text from the counted corpus
        assert [keep[i] for i in small.encode(text)] == full.encode(text)
        assert small.decode(small.encode(text)) == full.decode(full.encode(text))  # NFKC
    assert json.load(open(os.path.join(folder, 'keep_tokens.json'))) == keep
    # Text outside the corpus still encodes (byte fallback), without <unk>.
    odd = '龘靐齉'
    assert small.decode(small.encode(odd)) == odd and 2 not in small.encode(odd)
    assert [small.id_to_piece(i) for i in range(3)] == ['<pad>', '</s>', '<unk>']


def test_load_mt5_with_trimmed_vocabulary_slices_the_checkpoint(trimmed):
    out, keep, _ = trimmed
    paths = tiny('mt5.1.1')
    full, _ = load_mt5(paths['checkpoint'], paths['spm'], config=paths['config'])
    small, tokenizer = load_mt5(paths['checkpoint'], out, config=paths['config'],
                                keep_tokens=keep)
    assert small.layers['Embedding-Token'].get_weights()[0].shape[0] == len(keep)
    text = peoples_daily(limit=5)[4][:30]
    ids = tokenizer.encode(text)[0]
    src_small = np.array([ids])
    src_full = np.array([[keep[i] for i in ids]])
    target_small = np.array([[0] + ids[:5]])
    target_full = np.array([[0] + [keep[i] for i in ids[:5]]])
    probs_full = full.model.predict([src_full, target_full], verbose=0)
    probs_small = small.model.predict([src_small, target_small], verbose=0)
    # Same network on the kept rows: logits agree, so probabilities agree up to
    # the normaliser (the trimmed softmax has fewer terms).
    log_full = np.log(probs_full[..., keep])
    log_small = np.log(probs_small)
    shift = (log_small - log_full).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(log_small, log_full + shift, atol=1e-4)


def test_mismatched_config_and_checkpoint_are_named(tmp_path):
    paths = tiny('mt5.1.1')
    config = json.load(open(paths['config']))
    config['intermediate_size'] = 64
    wrong = tmp_path / 'mt5_config.json'
    wrong.write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match=r"DenseReluDense/wi_0/kernel' has shape "
                                                      r"\(48, 100\), model expects \(48, 64\)"):
        load_mt5(paths['checkpoint'], paths['spm'], config=str(wrong))
    with pytest.raises(BlogError, match='unknown mT5 size'):
        load_mt5(paths['checkpoint'], paths['spm'], size='xxl-ish')
    with pytest.raises(BlogError, match='keep_tokens'):
        load_mt5(paths['checkpoint'], paths['spm'], config=paths['config'], keep_tokens=[0, 1])


def test_known_configs_match_google_releases():
    small, base = CONFIGS['small'], CONFIGS['base']
    assert (small['hidden_size'], small['intermediate_size'], small['num_attention_heads'],
            small['num_hidden_layers']) == (512, 1024, 6, 8)
    assert (base['hidden_size'], base['intermediate_size'], base['num_attention_heads'],
            base['num_hidden_layers']) == (768, 2048, 12, 12)
    assert small['vocab_size'] == base['vocab_size'] == 250112
    assert small['hidden_act'] == ['gelu_tanh', 'linear']


def test_rouge_and_bleu_score_characters():
    perfect = chinese_rouge_bleu(['北京欢迎你'], ['北京欢迎你'])
    assert perfect == pytest.approx({'rouge-1': 1.0, 'rouge-2': 1.0, 'rouge-l': 1.0, 'bleu': 1.0})
    partial = chinese_rouge_bleu(['北京欢迎您'], ['北京欢迎你'])
    assert partial['rouge-1'] == pytest.approx(0.8) and partial['rouge-2'] == pytest.approx(0.75)
    assert chinese_rouge_bleu(['上海'], ['北京'])['rouge-1'] == 0.0
