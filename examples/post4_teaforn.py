#! -*- coding: utf-8 -*-
# Post 4: TeaForN：让Teacher Forcing更有“远见”一些 (TeaForN: teacher forcing
# with more foresight), https://kexue.fm/archives/7818
#
# The same seq2seq task (post 3's maths word problems) trained twice with the
# same steps and seed: plain teacher forcing (TeaForN with n=1, which equals
# it exactly) and TeaForN with n=3. Both are decoded greedily and with beam
# search; the paper's claim is that TeaForN narrows the gap between the two.
# The embedded default uses number slots (post 3's --number-slots) and a short
# budget, so that both runs stop short of perfect and differences can show.
#
#   python examples/post4_teaforn.py                      # tiny BERT + synthetic problems
#   python examples/post4_teaforn.py --pretrained chinese_L-12_H-768_A-12/ --data ape210k/
import argparse
import os
import sys
import time

import bert4keras_blog  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.optimizers import Adam
from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.datafiles import accept
from bert4keras_blog.mathword import heldout_split, load_ape210k
from bert4keras_blog.mathword.solver import (
    MathSolver, ProblemCodec, Seq2SeqGenerator, math_vocabulary)
from bert4keras_blog.teaforn import TeaForN
from bert4keras_blog.runs import Run, add_data_arguments, add_release_arguments, parse_example_args
from bert4keras_blog.training import (
    KeepBest, add_common_arguments, make_strategy, new_figure, save_figure, set_seed)
from bert4keras_blog.errors import run_main

EXAMPLE = 'post4_teaforn'


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Teacher forcing vs TeaForN (post 4).')
    add_release_arguments(parser, kinds=('bert', 'roberta'))
    add_data_arguments(parser, 'folder with train.ape.json, valid.ape.json, test.ape.json',
                       files=('train.ape.json', 'valid.ape.json', 'test.ape.json'),
                       with_release=True)
    parser.add_argument('--n', type=int, default=3, help='TeaForN passes (default 3)')
    parser.add_argument('--feedback', default='output', choices=['output', 'expected_embedding'])
    parser.add_argument('--topk', type=int, default=3, help='beam size')
    parser.add_argument('--train-size', type=int, default=2000)
    parser.add_argument('--raw-numbers', action='store_true',
                        help='generate digits (the post-3 default; needs a longer budget)')
    parser.add_argument('--lr', type=float, help='learning rate (real: 2e-5, tiny: 2e-3)')
    parser.add_argument('--maxlen', type=int, help='source length (real: 192, tiny: 96)')
    add_common_arguments(parser, epochs=None, batch_size=32)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    real = bool(args.releases)
    args.lr = args.lr or (2e-5 if real else 2e-3)
    args.maxlen = args.maxlen or (192 if real else 96)
    args.epochs = args.epochs or (20 if real else 2)


def load_data(args, folder):
    if args.data:
        splits = []
        for name in ('train', 'valid', 'test'):
            records = load_ape210k(os.path.join(args.data, '%s.ape.json' % name))
            accept(records.report, folder, name, args.max_rejected)
            splits.append(records)
        return splits
    return heldout_split(args.train_size, seed=args.seed)


def build(args):
    paths = args.releases[0] if args.releases else dict(tiny('bert'), kind='bert')
    token_dict, keep_tokens = math_vocabulary(paths['dict'], trim=bool(args.releases))
    transformer = build_model(paths['kind'], paths, application='unilm', with_mlm=True,
                              keep_tokens=keep_tokens, return_keras_model=False)
    codec = ProblemCodec(Tokenizer(token_dict, do_lower_case=True), maxlen=args.maxlen,
                         number_slots=not args.raw_numbers)
    return transformer, codec


def train_once(n, args, data, folder, strategy):
    """One run: the same seed, data order and number of steps for every n."""
    set_seed(args.seed)
    train, valid, test = data
    with strategy.scope():  # model and optimizer variables live on every replica
        transformer, codec = build(args)
        trainer = TeaForN(transformer, n=n, feedback=args.feedback).build()
        trainer.compile(optimizer=Adam(args.lr))
    greedy = MathSolver(transformer.model, codec, topk=1)
    weights = os.path.join(folder, 'best_n%d.weights.h5' % n)
    keep_best = KeepBest(lambda: greedy.accuracy(valid), 'accuracy', weights, transformer.model)
    batches = Seq2SeqGenerator(train, codec, args.batch_size)
    start = time.time()
    trainer.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=args.epochs,
                callbacks=[keep_best], verbose=2)
    seconds = time.time() - start
    transformer.model.load_weights(weights)
    beam = MathSolver(transformer.model, codec, topk=args.topk)
    result = {'n': n, 'train_seconds': round(seconds, 1), 'history': keep_best.history}
    for name, solver in (('greedy', greedy), ('beam', beam)):
        scores = solver.accuracy(test)
        result[name + '_accuracy'] = scores['accuracy']
        result[name + '_token_accuracy'] = scores['token_accuracy']
    result['beam_minus_greedy'] = result['beam_accuracy'] - result['greedy_accuracy']
    return result


def plot(runs, path):
    fig, ax = new_figure()
    for run in runs:
        epochs = [h['epoch'] for h in run['history']]
        label = 'teacher forcing' if run['n'] == 1 else 'TeaForN, N=%d' % run['n']
        ax.plot(epochs, [h['accuracy'] for h in run['history']], marker='o', label=label)
    ax.set(xlabel='epoch', ylabel='validation answer accuracy (greedy)',
           title='Teacher forcing vs TeaForN')
    save_figure(fig, path, ax)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    data = load_data(args, folder)
    runs = [train_once(n, args, data, folder, strategy) for n in (1, args.n)]
    figure = os.path.join(folder, 'validation_accuracy.png')
    plot(runs, figure)
    print('\n%-16s %8s %8s %10s %10s %8s' % ('training', 'greedy', 'beam', 'greedy tok',
                                             'beam tok', 'train s'))
    for result in runs:
        name = 'teacher forcing' if result['n'] == 1 else 'TeaForN N=%d' % result['n']
        print('%-16s %8.3f %8.3f %10.3f %10.3f %8.0f' % (
            name, result['greedy_accuracy'], result['beam_accuracy'],
            result['greedy_token_accuracy'], result['beam_token_accuracy'],
            result['train_seconds']))
    metrics = {'headline': 'teaforn_greedy_accuracy',
               'teaforn_greedy_accuracy': runs[1]['greedy_accuracy'],
               'teacher_forcing_greedy_accuracy': runs[0]['greedy_accuracy'],
               'runs': runs, 'figure': figure, 'test_problems': len(data[2])}
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
