#! -*- coding: utf-8 -*-
# Post 4: TeaForN：让Teacher Forcing更有“远见”一些 (TeaForN: teacher forcing
# with more foresight), https://kexue.fm/archives/7818
#
# Does TeaForN reduce exposure bias? Three arms, teacher forcing (TeaForN
# n=1, which equals it exactly), TeaForN N=2 and N=3, each trained from the
# same seeds until validation stops improving, on a task where an early
# mistake spoils what follows (sorting 20 random digits: one digit repeated
# or dropped shifts the rest). Reported per arm over seeds: greedy and beam
# exact match on test, greedy accuracy by output position, the greedy/beam
# gap, and validation accuracy at equal steps and at equal training time;
# every TeaForN arm is compared with teacher forcing as a paired difference
# with its 95% interval.
#
#   python examples/post4_teaforn.py          # 3 seeds x 3 arms, about 10 minutes
#   python examples/post4_teaforn.py --full   # 5 seeds, 32 digits, longer patience
#   python examples/post4_teaforn.py --task math                  # post 3's problems
#   python examples/post4_teaforn.py --pretrained chinese_L-12_H-768_A-12/ --data ape210k/
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.optimizers import Adam
from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.experiment.claims import compare, table
from bert4keras_blog.datafiles import accept
from bert4keras_blog.decoding import UniLMDecoder
from bert4keras_blog.exposure import MathTask, SortingTask, decode, digit_vocabulary, score
from bert4keras_blog.mathword import heldout_split, load_ape210k
from bert4keras_blog.mathword.solver import ProblemCodec, math_vocabulary
from bert4keras_blog.teaforn import TeaForN
from bert4keras_blog.experiment.flags import (
    add_data_arguments, add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.distribute import make_strategy
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import BlogError, run_main

EXAMPLE = 'post4_teaforn'

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'seeds': 1, 'arms': [1, 2], 'length': 12, 'max_steps': 400, 'eval_every': 100,
         'valid_size': 100}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Teacher forcing vs TeaForN (post 4).')
    add_release_arguments(parser, kinds=('bert', 'roberta'))
    add_data_arguments(parser, 'folder with train.ape.json, valid.ape.json, test.ape.json '
                               '(ape210k; implies --task math)',
                       files=('train.ape.json', 'valid.ape.json', 'test.ape.json'),
                       with_release=True)
    parser.add_argument('--task', choices=['sort', 'math'], default=None,
                        help='sort: sort random digits (default); math: post 3\'s problems')
    parser.add_argument('--length', type=int, default=None,
                        help='digits to sort (default 20; --full 32)')
    parser.add_argument('--arms', type=int, nargs='+', default=[1, 2, 3],
                        help='TeaForN passes per arm; 1 is teacher forcing (default 1 2 3)')
    parser.add_argument('--feedback', default='output', choices=['output', 'expected_embedding'],
                        help='what a TeaForN pass feeds the next (default output)')
    parser.add_argument('--seeds', type=int, default=None, help='seeds per arm (default 3)')
    parser.add_argument('--seed', type=int, default=0, help='first seed')
    parser.add_argument('--topk', type=int, default=3, help='beam size')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--eval-every', type=int, default=50, help='steps between validations')
    parser.add_argument('--patience', type=int, default=None,
                        help='validations without improvement before stopping (default 3)')
    parser.add_argument('--max-steps', type=int, default=None,
                        help='stop here even if validation still improves (default 600)')
    parser.add_argument('--valid-size', type=int, default=200)
    parser.add_argument('--test-size', type=int, default=400)
    parser.add_argument('--train-size', type=int, default=2000,
                        help='synthetic maths problems (--task math)')
    parser.add_argument('--full', action='store_true',
                        help='the larger version: 5 seeds, 32 digits, patience 5, 3000 steps')
    parser.add_argument('--lr', type=float, help='learning rate (real: 2e-5, tiny: 2e-3)')
    parser.add_argument('--maxlen', type=int, help='source length of maths problems')
    parser.add_argument('--run-dir', default=None)
    parser.add_argument('--strategy', default='default', choices=['default', 'mirrored'])
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    real = bool(args.releases)
    args.task = 'math' if (args.data or real) else (args.task or 'sort')
    args.lr = args.lr or (2e-5 if real else 2e-3)
    args.maxlen = args.maxlen or (192 if real else 96)
    args.length = args.length or (32 if args.full else 20)
    args.seeds = args.seeds or (5 if args.full else 3)
    args.patience = args.patience or (5 if args.full else 3)
    args.max_steps = args.max_steps or (3000 if args.full else 600)
    args.arms = sorted(set(args.arms))
    if args.arms[0] != 1 or len(args.arms) < 2:
        raise BlogError('--arms must include 1 (teacher forcing) and a TeaForN arm, e.g. 1 2')


def arm_name(n):
    return 'teacher forcing' if n == 1 else 'TeaForN N=%d' % n


# ------------------------------------------------------------------ the task

def model_paths(args):
    return args.releases[0] if args.releases else dict(tiny('bert'), kind='bert')


def load_task(args, folder):
    paths = model_paths(args)
    if args.task == 'sort':
        token_dict, keep_tokens = digit_vocabulary(paths['dict'])
        return SortingTask(token_dict, args.length, args.valid_size, args.test_size,
                           seed=args.seed), keep_tokens
    token_dict, keep_tokens = math_vocabulary(paths['dict'], trim=bool(args.releases))
    codec = ProblemCodec(Tokenizer(token_dict, do_lower_case=True), maxlen=args.maxlen,
                         number_slots=not args.releases)
    if args.data:
        splits = []
        for name in ('train', 'valid', 'test'):
            records = load_ape210k(os.path.join(args.data, '%s.ape.json' % name))
            accept(records.report, folder, name, args.max_rejected)
            splits.append(records)
    else:
        splits = heldout_split(args.train_size, seed=args.seed, valid=args.valid_size,
                               test=args.test_size)
    return MathTask(*splits, codec=codec, vocab_size=len(token_dict)), keep_tokens


# ------------------------------------------------------------------ one arm

def train_arm(n, seed, task, keep_tokens, args, strategy):
    """Trains one arm from ``seed`` until validation exact match stops
    improving; returns its history and its test scores at the best point."""
    set_seed(seed)
    rng = np.random.default_rng(seed)  # the same training examples in every arm
    paths = model_paths(args)
    with strategy.scope():
        transformer = build_model(paths['kind'], paths, application='unilm', with_mlm=True,
                                  keep_tokens=keep_tokens, return_keras_model=False)
        trainer = TeaForN(transformer, n=n, feedback=args.feedback).build()
        trainer.compile(optimizer=Adam(args.lr))
    model = transformer.model
    decoder = UniLMDecoder(model, end_id=task.end_id, maxlen=task.max_target + 1)
    targets = [t for _, t in task.valid]
    history, best, waited, trained = [], None, 0, 0.0
    for step in range(args.eval_every, args.max_steps + 1, args.eval_every):
        token_ids, segment_ids = task.train_batch(args.eval_every * args.batch_size, rng)
        start = time.time()
        trainer.fit([token_ids, segment_ids], None, batch_size=args.batch_size, epochs=1,
                    verbose=0, shuffle=False)
        trained += time.time() - start  # training time only: validation is not charged
        valid = score(decode(decoder, task.valid, 1, task.constraint), targets, task.end_id)
        history.append({'step': step, 'seconds': round(trained, 2), 'exact': valid['exact'],
                        'token_accuracy': valid['token_accuracy']})
        if best is None or valid['exact'] > best[0]:
            best, waited = (valid['exact'], step, model.get_weights()), 0
        else:
            waited += 1
            if waited >= args.patience:
                break
    model.set_weights(best[2])
    result = {'n': n, 'arm': arm_name(n), 'seed': seed, 'best_step': best[1],
              'steps': history[-1]['step'], 'train_seconds': round(trained, 1),
              'history': history}
    test_targets = [t for _, t in task.test]
    for name, topk in (('greedy', 1), ('beam', args.topk)):
        scores = score(decode(decoder, task.test, topk, task.constraint), test_targets,
                       task.end_id)
        result[name + '_exact'] = scores['exact']
        result[name + '_exact_by_example'] = scores['exact_by_example']
        result[name + '_token_accuracy'] = scores['token_accuracy']
        result[name + '_by_position'] = scores['by_position']
    result['beam_minus_greedy'] = result['beam_exact'] - result['greedy_exact']
    # Mistakes in a sorted string pile up where the digits change, not at the
    # end: the worst position shows the compounding, wherever it falls.
    result['greedy_worst_position'] = float(min(result['greedy_by_position']))
    print('  %-16s seed %d: %4d steps (best %4d), %5.0f s, greedy %.3f, beam %.3f'
          % (result['arm'], seed, result['steps'], result['best_step'],
             result['train_seconds'], result['greedy_exact'], result['beam_exact']), flush=True)
    return result


def best_within(history, key, limit):
    """Best validation exact match among validations with ``key`` <= limit."""
    reached = [h['exact'] for h in history if h[key] <= limit + 1e-9]
    return max(reached) if reached else 0.0


# ------------------------------------------------------------------ claims

def claims(results, arms):
    """Each TeaForN arm against teacher forcing, paired by seed; with one
    seed, paired by test example (the same examples decoded by both arms)."""
    baseline = results[arms[0]]
    if len(baseline) == 1:
        return [compare('test %s exact' % search, arm_name(n), arm_name(arms[0]),
                        results[n][0][search + '_exact_by_example'],
                        baseline[0][search + '_exact_by_example'], over='examples')
                for n in arms[1:] for search in ('greedy', 'beam')]
    baseline_best = [max(h['exact'] for h in b['history']) for b in baseline]
    rows = []
    for n in arms[1:]:
        arm = results[n]
        pairs = list(zip(arm, baseline))
        quantities = [
            ('test greedy exact', [a['greedy_exact'] for a in arm],
             [b['greedy_exact'] for b in baseline]),
            ('test beam - greedy exact', [a['beam_minus_greedy'] for a in arm],
             [b['beam_minus_greedy'] for b in baseline]),
            ('test greedy, worst position', [a['greedy_worst_position'] for a in arm],
             [b['greedy_worst_position'] for b in baseline]),
            # Equal budgets, read from the validation histories: TeaForN's
            # best within the steps (or training seconds) teacher forcing used.
            ('valid exact at equal steps', [best_within(a['history'], 'step', b['steps'])
                                            for a, b in pairs], baseline_best),
            ('valid exact at equal training time',
             [best_within(a['history'], 'seconds', b['train_seconds']) for a, b in pairs],
             baseline_best),
        ]
        rows += [compare(name, arm_name(n), arm_name(arms[0]), a, b)
                 for name, a, b in quantities]
    return rows


def plot(results, arms, path):
    fig, axes = new_figure(2, (12, 4.5))
    colours = dict(zip(arms, ['C0', 'C1', 'C2', 'C3', 'C4']))
    for n in arms:
        for k, r in enumerate(results[n]):
            label = arm_name(n) if k == 0 else None
            axes[0].plot(range(1, len(r['greedy_by_position']) + 1), r['greedy_by_position'],
                         color=colours[n], alpha=0.7, label=label)
            axes[1].plot([h['step'] for h in r['history']], [h['exact'] for h in r['history']],
                         color=colours[n], alpha=0.7, label=label)
    axes[0].set(xlabel='output position', ylabel='greedy accuracy (test)',
                title='Greedy accuracy by position, one line per seed')
    axes[1].set(xlabel='training step', ylabel='validation exact match (greedy)',
                title='Validation while training')
    save_figure(fig, path, axes)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    task, keep_tokens = load_task(args, folder)
    arms = args.arms
    results = {n: [] for n in arms}
    for seed in range(args.seed, args.seed + args.seeds):
        for n in arms:
            results[n].append(train_arm(n, seed, task, keep_tokens, args, strategy))
    rows = claims(results, arms)
    print('\n' + table(rows, digits=3))
    figure = os.path.join(folder, 'teaforn.png')
    plot(results, arms, figure)
    greedy = rows[0]
    headline = 'greedy_exact_N%d_minus_teacher_forcing' % arms[1]
    metrics = {'headline': headline, headline: greedy['difference'],
               'interval': [greedy['low'], greedy['high']],
               'distinguishable': greedy['distinguishable'], 'claims': rows,
               'task': args.task, 'length': args.length if args.task == 'sort' else None,
               'seeds': args.seeds, 'test_examples': len(task.test),
               'arms': {arm_name(n): {
                   'greedy_exact': float(np.mean([r['greedy_exact'] for r in results[n]])),
                   'beam_exact': float(np.mean([r['beam_exact'] for r in results[n]])),
                   'steps': float(np.mean([r['steps'] for r in results[n]])),
                   'train_seconds': float(np.mean([r['train_seconds'] for r in results[n]]))}
                   for n in arms},
               'runs': [r for n in arms for r in results[n]], 'figure': figure}
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
