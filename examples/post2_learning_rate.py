#! -*- coding: utf-8 -*-
# Post 2: 从动力学角度看优化算法（五）：为什么学习率不宜过小？ (Why the learning
# rate should not be too small), https://kexue.fm/archives/7787
#
# Gradient descent with step h follows, to first order, the gradient flow of
# L + (h/4)|∇L|². Prediction: at the same training loss, a larger h has
# reached it along a path of smaller gradient norm (a flatter region). The
# same MLP, from the same initial weights, is trained on scikit-learn's digits
# by full-batch gradient descent at several step sizes down to the same loss,
# and once more with a small step plus the explicit penalty λ = h_large/4.
# All of it is repeated from several initialisations (--seeds), and each
# comparison is reported as a paired difference with its 95% interval.
#
#   python examples/post2_learning_rate.py          # 5 initialisations, about 2 minutes
#   python examples/post2_learning_rate.py --full   # 10 initialisations, h down to 0.02
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras_blog.compat import keras, tf
from bert4keras_blog.experiment.claims import compare, table
from bert4keras_blog.dynamics import igr_penalty, loss_and_gradient_norm, sharpness
from bert4keras_blog.experiment.flags import (
    add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post2_learning_rate'

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'rates': [0.2, 1.0], 'seeds': 3}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Implicit gradient regularisation (post 2).')
    parser.add_argument('--rates', type=float, nargs='+', default=None,
                        help='step sizes h (default 0.05 0.2 1; --full: 0.02 0.2 1)')
    parser.add_argument('--target-loss', type=float, default=0.05,
                        help='train every run down to this training loss')
    parser.add_argument('--max-steps', type=int, default=30000)
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0, help='first initialisation')
    parser.add_argument('--seeds', type=int, default=5, help='initialisations (default 5)')
    parser.add_argument('--full', action='store_true',
                        help='the larger version: 10 initialisations, smallest step 0.02')
    parser.add_argument('--run-dir', default=None)
    add_release_arguments(parser, kinds=())
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    if args.full:
        args.seeds = max(args.seeds, 10)
    args.rates = args.rates or ([0.02, 0.2, 1.0] if args.full else [0.05, 0.2, 1.0])


def load_data(seed):
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype('float32')
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], digits.target[order]
    return x[:1297], y[:1297], x[1297:], y[1297:]


def make_model(hidden, seed):
    set_seed(seed)  # every run starts from the same weights
    return keras.Sequential([keras.layers.Dense(hidden, activation='tanh', input_shape=(64,)),
                             keras.layers.Dense(10)])


def cross_entropy(y, logits):
    return keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)


def gradient_descent(model, x, y, rate, penalty, target, max_steps):
    """Full-batch descent on L + penalty·|∇L|² until L <= target.

    Returns the path: (step, L, |∇L|²) every 0.5 units of time t = step·h,
    and the step where L first reached the target.
    """
    record_every = max(1, int(round(0.5 / rate)))
    variables = model.trainable_variables
    x, y = tf.constant(x), tf.constant(y)

    def step():
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = tf.reduce_mean(cross_entropy(y, model(x, training=True)))
            grads = inner.gradient(loss, variables)
            norm = tf.add_n([tf.reduce_sum(g ** 2) for g in grads])
            total = loss + penalty * norm
        update = outer.gradient(total, variables) if penalty else grads
        for v, g in zip(variables, update):
            v.assign_sub(rate * g)
        return loss, norm

    @tf.function
    def advance(count):
        # A whole stretch between records in one graph call: thousands of
        # Python round trips made the small-step runs slow.
        first_loss, first_norm = step()
        loss, norm, taken = first_loss, first_norm, tf.constant(1)
        while taken < count and loss > target:
            loss, norm = step()
            taken += 1
        return first_loss, first_norm, loss, norm, taken

    path, k = [], 0
    while k < max_steps:
        first_loss, first_norm, loss, norm, taken = advance(min(record_every, max_steps - k))
        path.append((k, float(first_loss), float(first_norm)))
        k += int(taken)
        if float(loss) <= target:
            path.append((k - 1, float(loss), float(norm)))
            break
    return path


def norm_at_loss(path, level):
    """|∇L|² when the loss first drops to ``level`` (interpolated in log L)."""
    for (s0, l0, n0), (s1, l1, n1) in zip(path, path[1:]):
        if l0 >= level >= l1:
            w = (np.log(l0) - np.log(level)) / max(np.log(l0) - np.log(l1), 1e-12)
            return float(np.exp((1 - w) * np.log(n0) + w * np.log(n1)))
    return float('nan')


def train_run(name, rate, penalty, args, data, seed):
    x_train, y_train, x_test, y_test = data
    model = make_model(args.hidden, seed)
    start = time.time()
    path = gradient_descent(model, x_train, y_train, rate, penalty, args.target_loss,
                            args.max_steps)
    train_loss, train_norm = loss_and_gradient_norm(model, x_train, y_train, cross_entropy)
    test_loss, _ = loss_and_gradient_norm(model, x_test, y_test, cross_entropy)
    test_accuracy = float((model(x_test).numpy().argmax(1) == y_test).mean())
    return {'run': name, 'seed': seed, 'h': rate, 'penalty': penalty, 'steps': path[-1][0] + 1,
            'train_loss': train_loss, 'grad_norm_sq_at_end': train_norm,
            'mean_grad_norm_sq_along_path': float(np.mean([p[2] for p in path])),
            'sharpness': sharpness(model, x_train, y_train, cross_entropy),
            'test_loss': test_loss, 'test_accuracy': test_accuracy,
            'gap': test_loss - train_loss, 'path': path,
            'seconds': round(time.time() - start, 1)}


LEVEL = 0.1  # the loss at which gradient norms are compared


def one_initialisation(seed, rates, args, data):
    """Every step size, then the small step with the large step's penalty,
    all from the initial weights of ``seed``."""
    runs = [train_run('GD h=%g' % h, h, 0.0, args, data, seed) for h in rates]
    small, large = rates[0], rates[-1]
    runs.append(train_run('GD h=%g + penalty %g (= %g/4)' % (small, igr_penalty(large), large),
                          small, igr_penalty(large), args, data, seed))
    for r in runs:
        r['grad_norm_sq_at_loss'] = {str(level): norm_at_loss(r['path'], level)
                                     for level in (0.5, 0.2, LEVEL)}
    return runs


def claims(by_seed, rates):
    """The post's comparisons, paired by initialisation."""
    small, large = 'h=%g' % rates[0], 'h=%g' % rates[-1]
    plain_small = [runs[0] for runs in by_seed]
    plain_large = [runs[len(rates) - 1] for runs in by_seed]
    penalised = [runs[-1] for runs in by_seed]

    def values(runs, key):
        return [r['grad_norm_sq_at_loss'][str(LEVEL)] if key == 'norm' else r[key] for r in runs]
    return [
        compare('|grad L|^2 at L=%g' % LEVEL, small, large, values(plain_small, 'norm'),
                values(plain_large, 'norm')),
        compare('sharpness at the end', small, large, values(plain_small, 'sharpness'),
                values(plain_large, 'sharpness')),
        compare('|grad L|^2 at L=%g' % LEVEL, small, small + ' + penalty h_large/4',
                values(plain_small, 'norm'), values(penalised, 'norm')),
        compare('test accuracy', large, small, values(plain_large, 'test_accuracy'),
                values(plain_small, 'test_accuracy')),
    ]


def plot(by_seed, rates, path):
    fig, axes = new_figure(2, (12, 4.5))
    for r in by_seed[0]:
        axes[0].loglog([p[1] for p in r['path']], [p[2] for p in r['path']], label=r['run'])
    axes[0].invert_xaxis()
    axes[0].set(xlabel='training loss L (decreasing)', ylabel='|grad L|^2',
                title='Gradient norm at equal loss (first initialisation)')
    names = [r['run'] for r in by_seed[0]]
    for runs in by_seed:  # one line per initialisation: the spread over seeds
        axes[1].plot(range(len(runs)), [r['grad_norm_sq_at_loss'][str(LEVEL)] for r in runs],
                     marker='o', color='grey', alpha=0.6)
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels([n.replace(' + ', '\n+ ') for n in names], fontsize=7)
    axes[1].set(ylabel='|grad L|^2 at L=%g' % LEVEL,
                title='Each initialisation (%d), every run' % len(by_seed))
    save_figure(fig, path, axes)


def main(argv=None):
    args = parse_args(argv)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    data = load_data(args.seed)  # one data split; the initialisations vary
    rates = sorted(args.rates)
    by_seed = []
    print('%-34s %4s %6s %10s %10s %10s %9s %8s' % (
        'run', 'seed', 'steps', '|g|2@L=.5', '|g|2@L=.2', '|g|2@L=.1', 'sharpness', 'test acc'))
    for seed in range(args.seed, args.seed + args.seeds):
        by_seed.append(one_initialisation(seed, rates, args, data))
        for r in by_seed[-1]:
            print('%-34s %4d %6d %10.4g %10.4g %10.4g %9.3g %8.3f' % (
                r['run'], seed, r['steps'], *[r['grad_norm_sq_at_loss'][str(v)]
                                              for v in (0.5, 0.2, LEVEL)],
                r['sharpness'], r['test_accuracy']), flush=True)
    rows = claims(by_seed, rates)
    print('\n' + table(rows))
    figure = os.path.join(folder, 'gradient_norm.png')
    plot(by_seed, rates, figure)
    norm = rows[0]
    metrics = {'headline': 'grad_norm_sq_small_minus_large_h',
               'grad_norm_sq_small_minus_large_h': norm['difference'],
               'interval': [norm['low'], norm['high']], 'initialisations': len(by_seed),
               'prediction_holds': bool(norm['low'] > 0), 'claims': rows,
               'norm_ratio_small_over_large_h': norm['mean_a'] / norm['mean_b'],
               'runs': [{k: v for k, v in r.items() if k != 'path'}
                        for runs in by_seed for r in runs],
               'target_loss': args.target_loss, 'figure': figure}
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
