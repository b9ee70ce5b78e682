"""bfloat16 steps against float32: speed on a base-size LM, quality on
post 3's trained solver and on post 6's trained mT5 title model.

Speed: BERT-base size as a left-to-right LM (random weights), greedy
decoding of 1 input of 64 tokens and of 16 inputs of 48-64 tokens, exactly
32 new tokens, median of 3 runs after a warm-up; the two precisions' runs
alternate. Quality: post 3's example trained on its test settings (about
a minute; ``--run FOLDER`` reuses a trained run), its held-out problems
solved greedily in both precisions: the share of identical expressions,
both accuracies, and the largest |logit difference| per step along the
float32 path (``decoding.step_differences``, 8 steps, 50 problems). Post
6's example trained with ``--quick`` (about two minutes; ``--post6-run``
reuses one), greedy titles for its first 300 test texts in both precisions
(``T5Decoder(precision=...)``): the share of identical titles and each
precision's Rouge-L.

Usage: python benchmarks/precision.py [--run FOLDER] [--post6-run FOLDER]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PRECISIONS = ('float32', 'bfloat16')
POST3_TEST_SETTINGS = ['--train-size', '2000', '--epochs', '3', '--number-slots', '--topk', '2']


def speed():
    import bert4keras_blog  # noqa: F401  (makes bert4keras work on this stack)
    from bert4keras.models import build_transformer_model
    from bert4keras_blog.compat import keras
    from bert4keras_blog.decoding import LMDecoder
    keras.utils.set_random_seed(0)
    net = build_transformer_model(
        vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act='gelu', max_position_embeddings=512,
        application='lm', with_mlm=True)
    rng = np.random.default_rng(0)
    batches = {1: [[rng.integers(1, 21128, 64)]],
               16: [[rng.integers(1, 21128, n)] for n in rng.integers(48, 65, 16)]}
    decoders = {p: LMDecoder(net, end_id=-1, maxlen=32, precision=p) for p in PRECISIONS}
    rows = []
    for size, batch in batches.items():
        seconds = {p: [] for p in PRECISIONS}
        for p in PRECISIONS:
            decoders[p].batch_greedy(batch)  # traces
        for _ in range(3):
            for p in PRECISIONS:
                start = time.perf_counter()
                decoders[p].batch_greedy(batch)
                seconds[p].append(time.perf_counter() - start)
        rows.append({'batch': size, **{p: float(np.median(s)) for p, s in seconds.items()}})
    return rows


def quality(folder):
    from bert4keras_blog.decoding import step_differences
    from bert4keras_blog.mathword.solver import load_solver
    with open(os.path.join(folder, 'test.synthetic.json')) as f:
        records = [json.loads(line) for line in f]
    texts = [r['original_text'] for r in records]
    solvers = {p: load_solver(folder, topk=1, precision=p) for p in PRECISIONS}
    solved = {p: s.solve(texts) for p, s in solvers.items()}
    identical = np.mean([a[0] == b[0] for a, b in zip(*solved.values())])
    gaps = []
    for text in texts[:50]:
        ids, segments, _ = solvers['float32'].codec.encode_problem(text)
        gaps.append(max(step_differences(solvers['float32'].decoder, solvers['bfloat16'].decoder,
                                         [np.array(ids), np.array(segments)], 8)))
    logits, _ = solvers['float32'].decoder.start([[np.array(ids), np.array(segments)]])
    return {'problems': len(records), 'identical': float(identical),
            'accuracy': {p: solvers[p].accuracy(records)['accuracy'] for p in PRECISIONS},
            'max_logit_gap': float(max(gaps)), 'median_logit_gap': float(np.median(gaps)),
            'logit_scale': float(np.abs(logits).max())}


def t5_quality(folder, texts=300):
    import importlib.util
    from bert4keras_blog.mt5 import chinese_rouge_bleu, load_title_generator
    spec = importlib.util.spec_from_file_location(
        'post6', os.path.join(ROOT, 'examples', 'post6_mt5_title_generation.py'))
    post6 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(post6)
    test = post6.load_data(post6.parse_args(['--quick']), folder)[2][:texts]
    titles = {}
    for p in PRECISIONS:
        generator = load_title_generator(folder, topk=1, precision=p)
        ids = [generator.decoder.greedy([np.array(generator.tokenizer.encode(
            pair['source'], maxlen=generator.max_source)[0])]) for pair in test]
        titles[p] = [generator.tokenizer.decode([int(i) for i in x[1:]]) for x in ids]
    references = [pair['target'] for pair in test]
    return {'texts': len(test),
            'identical': float(np.mean([a == b for a, b in zip(*titles.values())])),
            'rouge-l': {p: chinese_rouge_bleu(titles[p], references)['rouge-l']
                        for p in PRECISIONS}}


def train_post3(folder):
    command = [sys.executable, os.path.join(ROOT, 'examples', 'post3_math_word_problems.py')] + \
        POST3_TEST_SETTINGS + ['--run-dir', folder]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def train_post6(folder):
    command = [sys.executable, os.path.join(ROOT, 'examples', 'post6_mt5_title_generation.py'),
               '--quick', '--run-dir', folder]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--run', help="a trained post-3 run folder (default: train one)")
    parser.add_argument('--post6-run', help="a trained post-6 run folder (default: train one)")
    args = parser.parse_args(argv)
    started = time.time()
    print('greedy, 32 new tokens, base-size LM, 2 CPU threads:')
    print('%5s %11s %11s %7s' % ('batch', 'float32 s', 'bfloat16 s', 'speedup'))
    for row in speed():
        print('%5d %11.3f %11.3f %7.2f' % (row['batch'], row['float32'], row['bfloat16'],
                                           row['float32'] / row['bfloat16']))
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.run or os.path.join(scratch, 'post3')
        if not args.run:
            train_post3(folder)
        q = quality(folder)
        post6 = args.post6_run or os.path.join(scratch, 'post6')
        if not args.post6_run:
            train_post6(post6)
        t5 = t5_quality(post6)
    print('post 3 solver, %d held-out problems, greedy: identical expressions %.1f%%, '
          'accuracy %.3f (float32) / %.3f (bfloat16); largest |logit difference| per '
          'problem over 8 steps: max %.3g, median %.3g (logits up to %.1f)' % (
              q['problems'], 100 * q['identical'], q['accuracy']['float32'],
              q['accuracy']['bfloat16'], q['max_logit_gap'], q['median_logit_gap'],
              q['logit_scale']))
    print('post 6 mT5 titles, %d test texts, greedy: identical titles %.1f%%, Rouge-L '
          '%.4f (float32) / %.4f (bfloat16)' % (t5['texts'], 100 * t5['identical'],
                                               t5['rouge-l']['float32'],
                                               t5['rouge-l']['bfloat16']))
    print('total %.0f s' % (time.time() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
