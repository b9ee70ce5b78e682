"""Cached decoding (bert4keras_blog.decoding) against bert4keras'
AutoRegressiveDecoder, measured in the same run on the same models.

Settings (random weights; speed does not depend on their values):
  base UniLM    BERT-base sized (12 layers, hidden 768, vocab 21128), beam 3,
                64-token input, 32 new tokens
  tiny UniLM    the tiny BERT checkpoint, same search
  mT5-small     mT5 small sized (8+8 layers, d_model 512, vocab 250112), beam 3,
                64-token input, 32 new tokens

Both decoders are warmed up first (graph tracing is not timed). The end token
is one the models never pick first, so every run makes all its tokens; the
script checks that both decoders return the same ids.

Usage: python benchmarks/decoding.py [--quick]
Last line: speedup=<baseline seconds / ours> for the base UniLM.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import bert4keras_blog  # noqa: E402,F401
from bert4keras.models import build_transformer_model  # noqa: E402
from bert4keras_blog.compat import keras  # noqa: E402
from bert4keras_blog.checkpoints import build_model, tiny  # noqa: E402
from bert4keras_blog.decoding import (  # noqa: E402
    ReferenceT5, ReferenceUniLM, T5Decoder, UniLMDecoder)

BERT_BASE = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act='gelu',
                 max_position=512)
MT5_SMALL = dict(vocab_size=250112, hidden_size=512, num_hidden_layers=8,
                 num_attention_heads=6, attention_head_size=64, intermediate_size=1024,
                 hidden_act=['gelu_tanh', 'linear'], relative_attention_num_buckets=32)


def timed(function, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = function()
    return result, (time.perf_counter() - start) / repeat


def compare_unilm(name, model, input_len, new_tokens, topk, rng):
    source = rng.integers(106, 2000, input_len)
    token_ids = np.concatenate([[101], source[:input_len - 2], [102]])
    inputs = [token_ids, np.zeros_like(token_ids)]
    baseline = ReferenceUniLM(model, start_id=None, end_id=-1, maxlen=new_tokens)
    ours = UniLMDecoder(model, end_id=-1, maxlen=new_tokens)
    ReferenceUniLM(model, start_id=None, end_id=-1, maxlen=2).beam_search(inputs, topk)
    UniLMDecoder(model, end_id=-1, maxlen=2).beam_search(inputs, topk)  # traces once
    expected, t_base = timed(lambda: baseline.beam_search(inputs, topk=topk))
    got, t_ours = timed(lambda: ours.beam_search(inputs, topk=topk))
    return row(name, t_base, t_ours, new_tokens, np.array_equal(expected, got)), ours


def compare_t5(name, t5, input_len, new_tokens, topk, rng):
    token_ids = np.concatenate([rng.integers(300, 4000, input_len - 1), [1]])
    # bert4keras' T5 examples run the encoder once and the decoder per step.
    baseline = ReferenceT5(t5, encoder_once=True, start_id=0, end_id=-1, maxlen=new_tokens)
    ours = T5Decoder(t5, end_id=-1, maxlen=new_tokens)
    ReferenceT5(t5, encoder_once=True, start_id=0, end_id=-1, maxlen=2).generate(token_ids, topk)
    ours.beam_search([token_ids], topk=topk)  # traces once
    expected, t_base = timed(lambda: baseline.generate(token_ids, topk))
    got, t_ours = timed(lambda: ours.beam_search([token_ids], topk=topk))
    return row(name, t_base, t_ours, new_tokens, np.array_equal(expected, got))


def row(name, t_base, t_ours, new_tokens, same):
    return {'model': name, 'baseline_s': t_base, 'ours_s': t_ours,
            'tokens_per_s': new_tokens / t_ours, 'speedup': t_base / t_ours, 'same': same}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='16 new tokens, no mT5 (< 3 min)')
    args = parser.parse_args(argv)
    new_tokens = 16 if args.quick else 32
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    rows = []

    tiny_model = build_model('bert', tiny('bert'), application='unilm', with_mlm=True)
    rows.append(compare_unilm('tiny UniLM', tiny_model, 64, new_tokens, 3, rng)[0])
    if not args.quick:
        t5 = build_transformer_model(model='mt5.1.1', return_keras_model=False, **MT5_SMALL)
        rows.append(compare_t5('mT5-small size', t5, 64, new_tokens, 3, rng))
    base = build_transformer_model(application='unilm', with_mlm=True, **BERT_BASE)
    base_row, base_decoder = compare_unilm('base UniLM', base, 64, new_tokens, 3, rng)
    rows.append(base_row)

    print('beam 3, 64-token input, %d new tokens, CPU' % new_tokens)
    print('%-16s %11s %9s %10s %8s %10s' % ('model', 'baseline s', 'ours s', 'tokens/s',
                                           'speedup', 'same ids'))
    for r in rows:
        print('%-16s %11.2f %9.3f %10.1f %8.1f %10s' % (
            r['model'], r['baseline_s'], r['ours_s'], r['tokens_per_s'], r['speedup'], r['same']))
    megabytes = base_decoder.cache_bytes(3, 512) / 2 ** 20
    print('key/value cache, base size, beam 3, 512 positions: %.1f MB' % megabytes)
    if not all(r['same'] for r in rows):
        print('WARNING: outputs differ from AutoRegressiveDecoder')
    print('speedup=%.2f' % base_row['speedup'])
    return 0 if all(r['same'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
