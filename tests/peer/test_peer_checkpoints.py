"""Peer checks: every tiny checkpoint, read by bert4keras (through us) and by
Hugging Face transformers 4.x on PyTorch (its own TF-checkpoint readers,
``load_tf_weights_in_*``), gives the same hidden states and logits.

The tiny sizes are odd and non-square (hidden 48, 3 heads, intermediate 100,
ALBERT/ELECTRA embeddings 20, mT5 d_kv 10), so a transposed or swapped
weight cannot pass.
"""
import numpy as np
import pytest

import bert4keras_blog  # noqa: F401
from bert4keras.models import build_transformer_model
from bert4keras.snippets import sequence_padding
from bert4keras.tokenizers import SpTokenizer, Tokenizer
from bert4keras_blog import compat
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.pretrained import build_electra_generator

torch = pytest.importorskip('torch', reason='peer extras: pip install -r requirements/peer.txt')
transformers = pytest.importorskip('transformers')

TOL = 1e-4
TEXTS = [('科学空间是苏剑林的博客。', '今天天气很好，我们去公园散步吧。'),
         ('北京欢迎你', None)]


def bert_inputs(vocab_path):
    tokenizer = Tokenizer(vocab_path, do_lower_case=True)
    ids, segments = zip(*(tokenizer.encode(a, b) for a, b in TEXTS))
    token_ids, segment_ids = sequence_padding(ids), sequence_padding(segments)
    assert tokenizer.token_to_id('[UNK]') not in token_ids[0], 'test text should be in the vocab'
    return token_ids, segment_ids


def hf_outputs(model, token_ids, segment_ids):
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor(token_ids, dtype=torch.long),
                    token_type_ids=torch.tensor(segment_ids, dtype=torch.long),
                    attention_mask=torch.tensor(token_ids != 0, dtype=torch.long),
                    output_hidden_states=True)
    return out


def assert_close_where(ours, theirs, token_ids, what):
    """Compares two (batch, seq_len, ...) arrays at the non-padding positions."""
    keep = token_ids != 0
    ours, theirs = np.asarray(ours)[keep], np.asarray(theirs)[keep]
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    diff = np.abs(ours - theirs).max()
    assert diff < TOL, '%s differs by %.2e' % (what, diff)
    assert np.abs(theirs).max() > 1e-2, '%s is trivially small' % what


def bert_config(cfg, cls, **extra):
    keys = ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads',
            'intermediate_size', 'hidden_act', 'max_position_embeddings', 'type_vocab_size')
    return cls(**{k: cfg[k] for k in keys}, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, **extra)


def read_json(path):
    import json
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize('kind', ['bert', 'roberta'])
def test_bert_matches_hugging_face(kind):
    paths = tiny(kind)
    token_ids, segment_ids = bert_inputs(paths['dict'])
    encoder = build_model(kind, paths)
    mlm = build_model(kind, paths, with_mlm='linear')
    hidden = encoder.predict([token_ids, segment_ids], verbose=0)
    logits = mlm.predict([token_ids, segment_ids], verbose=0)

    from transformers import BertConfig, BertForPreTraining
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
    config = bert_config(read_json(paths['config']), BertConfig)
    peer = load_tf_weights_in_bert(BertForPreTraining(config), config, paths['checkpoint'])
    out = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(hidden, out.hidden_states[-1], token_ids, 'hidden states')
    assert_close_where(logits, out.prediction_logits, token_ids, 'MLM logits')


def test_gpt_lm_matches_hugging_face_causal_bert():
    paths = tiny('gpt')
    token_ids, segment_ids = bert_inputs(paths['dict'])
    lm = build_model('gpt', paths, with_mlm='linear')  # application='lm'
    logits = lm.predict([token_ids, segment_ids], verbose=0)

    from transformers import BertConfig, BertForPreTraining, BertLMHeadModel
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
    config = bert_config(read_json(paths['config']), BertConfig, is_decoder=True)
    # HF's reader trips over the NSP variables a causal head lacks, so read
    # the whole file into the pre-training model and move the weights over.
    full = load_tf_weights_in_bert(BertForPreTraining(config), config, paths['checkpoint'])
    peer = BertLMHeadModel(config)
    missing, _ = peer.load_state_dict(full.state_dict(), strict=False)
    assert not missing, missing
    out = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(logits, out.logits, token_ids, 'LM logits')
    # The causal mask is real: changing a later token leaves earlier logits alone.
    changed = token_ids.copy()
    changed[0, 5] = 200
    again = lm.predict([changed, segment_ids], verbose=0)
    np.testing.assert_allclose(again[0, :5], logits[0, :5], atol=1e-5)
    assert np.abs(again[0, 5:] - logits[0, 5:]).max() > 1e-3


def test_albert_matches_hugging_face():
    paths = tiny('albert')
    token_ids, segment_ids = bert_inputs(paths['dict'])
    hidden = build_model('albert', paths).predict([token_ids, segment_ids], verbose=0)
    logits = build_model('albert', paths, with_mlm='linear').predict(
        [token_ids, segment_ids], verbose=0)
    unshared = build_model('albert_unshared', paths).predict([token_ids, segment_ids], verbose=0)

    from transformers import AlbertConfig, AlbertForPreTraining
    from transformers.models.albert.modeling_albert import load_tf_weights_in_albert
    cfg = read_json(paths['config'])
    config = bert_config(cfg, AlbertConfig, embedding_size=cfg['embedding_size'],
                         num_hidden_groups=1, inner_group_num=1)
    peer = load_tf_weights_in_albert(AlbertForPreTraining(config), config, paths['checkpoint'])
    out = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(hidden, out.hidden_states[-1], token_ids, 'hidden states')
    assert_close_where(logits, out.prediction_logits, token_ids, 'MLM logits')
    assert_close_where(unshared, out.hidden_states[-1], token_ids, 'unshared hidden states')


def electra_config(paths, key):
    from transformers import ElectraConfig
    cfg = read_json(paths[key])
    return bert_config(cfg, ElectraConfig, embedding_size=cfg['embedding_size'])


def test_electra_discriminator_matches_hugging_face():
    paths = tiny('electra')
    token_ids, segment_ids = bert_inputs(paths['dict'])
    hidden = build_model('electra', paths).predict([token_ids, segment_ids], verbose=0)
    logits = build_model('electra', paths, with_discriminator='linear').predict(
        [token_ids, segment_ids], verbose=0)[..., 0]

    from transformers import ElectraForPreTraining
    from transformers.models.electra.modeling_electra import load_tf_weights_in_electra
    config = electra_config(paths, 'config')
    peer = load_tf_weights_in_electra(ElectraForPreTraining(config), config,
                                      paths['checkpoint'], 'discriminator')
    out = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(hidden, out.hidden_states[-1], token_ids, 'discriminator hidden states')
    assert_close_where(logits, out.logits, token_ids, 'replaced-token logits')


def test_electra_generator_matches_hugging_face():
    paths = tiny('electra')
    token_ids, segment_ids = bert_inputs(paths['dict'])
    generator = build_electra_generator(paths['generator_config'], paths['checkpoint'],
                                        with_mlm='linear')
    logits = generator.predict([token_ids, segment_ids], verbose=0)

    from transformers import ElectraForMaskedLM
    from transformers.models.electra.modeling_electra import load_tf_weights_in_electra
    config = electra_config(paths, 'generator_config')
    peer = load_tf_weights_in_electra(ElectraForMaskedLM(config), config,
                                      paths['checkpoint'], 'generator')
    out = hf_outputs(peer, token_ids, segment_ids)
    assert_close_where(logits, out.logits, token_ids, 'generator MLM logits')
    # The generator's embeddings are the discriminator's, as in Google's file.
    discriminator = build_model('electra', paths, return_keras_model=False)
    np.testing.assert_array_equal(
        generator.get_layer('Embedding-Token').get_weights()[0],
        discriminator.layers['Embedding-Token'].get_weights()[0])


def mt5_inputs(spm_path):
    tokenizer = SpTokenizer(spm_path, token_start=None, token_end='</s>')
    sources = [tokenizer.encode(a)[0] for a, _ in TEXTS]
    targets = [[0] + tokenizer.encode(b or a)[0][:-1] for a, b in TEXTS]  # <pad> starts
    return sequence_padding(sources), sequence_padding(targets)


def hf_mt5(paths):
    from transformers import MT5Config, MT5ForConditionalGeneration
    from transformers.models.mt5.modeling_mt5 import load_tf_weights_in_mt5
    cfg = read_json(paths['config'])
    config = MT5Config(vocab_size=cfg['vocab_size'], d_model=cfg['hidden_size'],
                       d_kv=cfg['attention_head_size'], d_ff=cfg['intermediate_size'],
                       num_layers=cfg['num_hidden_layers'],
                       num_heads=cfg['num_attention_heads'],
                       relative_attention_num_buckets=cfg['relative_attention_num_buckets'],
                       feed_forward_proj='gated-gelu', tie_word_embeddings=False,
                       dropout_rate=0.0, layer_norm_epsilon=1e-6)
    model = load_tf_weights_in_mt5(MT5ForConditionalGeneration(config), config,
                                   paths['checkpoint'])
    return model.eval()


def test_mt5_matches_hugging_face():
    paths = tiny('mt5.1.1')
    sources, targets = mt5_inputs(paths['spm'])
    t5 = build_model('mt5.1.1', paths, return_keras_model=False, with_lm='linear')
    encoded = t5.encoder.predict(sources, verbose=0)
    logits = t5.model.predict([sources, targets], verbose=0)

    peer = hf_mt5(paths)
    with torch.no_grad():
        out = peer(input_ids=torch.tensor(sources, dtype=torch.long),
                   attention_mask=torch.tensor(sources != 0, dtype=torch.long),
                   decoder_input_ids=torch.tensor(targets, dtype=torch.long))
    assert_close_where(encoded, out.encoder_last_hidden_state, sources, 'encoder states')
    # Decoder rows: position 0 is the <pad> start token, so mask by length.
    lengths = (targets != 0).sum(1) + 1
    keep = np.arange(targets.shape[1])[None] < lengths[:, None]
    diff = np.abs(logits[keep] - out.logits.numpy()[keep]).max()
    assert diff < TOL, 'decoder logits differ by %.2e' % diff


def test_mt5_legacy_switch_restores_bert4keras_defaults(monkeypatch):
    """bert4keras 0.11.5 scales logits by d_model**-0.5 and adds the relative
    bias to cross-attention; the switch brings both back."""
    paths = tiny('mt5.1.1')
    sources, targets = mt5_inputs(paths['spm'])
    fixed = build_model('mt5.1.1', paths, with_lm='linear').predict([sources, targets], verbose=0)
    monkeypatch.setattr(compat.bert4keras_fixes, 'T5_BERT4KERAS_LEGACY', True)
    legacy = build_transformer_model(paths['config'], paths['checkpoint'], model='mt5.1.1',
                                     with_lm='linear').predict([sources, targets], verbose=0)
    # Position 0 sees one constant cross bias (softmax ignores it): only the scale differs.
    np.testing.assert_allclose(legacy[:, 0], fixed[:, 0] * 48 ** -0.5, rtol=1e-4, atol=1e-6)
    # Later positions see the cross-attention bias as well.
    assert np.abs(legacy[0, 1:] - fixed[0, 1:] * 48 ** -0.5).max() > 1e-3


def test_trimmed_mt5_logits_equal_full_logits_at_kept_ids(tmp_path):
    from bert4keras_blog.corpora import peoples_daily
    from bert4keras_blog.mt5 import load_mt5, trim_vocabulary
    paths = tiny('mt5.1.1')
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text('\n'.join(peoples_daily(limit=2000)), encoding='utf-8')
    keep = trim_vocabulary(paths['spm'], [str(corpus)], str(tmp_path / 'trimmed.model'),
                           progress=False)
    t5, tokenizer = load_mt5(paths['checkpoint'], str(tmp_path / 'trimmed.model'),
                             config=paths['config'], keep_tokens=keep, with_lm='linear')
    sources = [tokenizer.encode(a)[0] for a, _ in TEXTS]
    targets = [[0] + tokenizer.encode(b or a)[0][:-1] for a, b in TEXTS]
    sources, targets = sequence_padding(sources), sequence_padding(targets)
    logits = t5.model.predict([sources, targets], verbose=0)
    keep = np.array(keep)
    peer = hf_mt5(paths)
    with torch.no_grad():
        out = peer(input_ids=torch.tensor(keep[sources] * (sources != 0), dtype=torch.long),
                   attention_mask=torch.tensor(sources != 0, dtype=torch.long),
                   decoder_input_ids=torch.tensor(keep[targets], dtype=torch.long))
    lengths = (targets != 0).sum(1) + 1
    rows = np.arange(targets.shape[1])[None] < lengths[:, None]
    diff = np.abs(logits[rows] - out.logits.numpy()[rows][:, keep]).max()
    assert diff < TOL, 'trimmed logits differ from the full ones by %.2e' % diff
