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
#
#   python examples/post2_learning_rate.py        # about 1 minute on 2 CPU cores
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras_blog.backend import keras, tf
from bert4keras_blog.dynamics import igr_penalty, loss_and_gradient_norm, sharpness
from bert4keras_blog.runs import Run, add_release_arguments, parse_example_args
from bert4keras_blog.training import new_figure, save_figure, set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post2_learning_rate'


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Implicit gradient regularisation (post 2).')
    parser.add_argument('--rates', type=float, nargs='+', default=[0.02, 0.2, 1.0],
                        help='gradient-descent step sizes h')
    parser.add_argument('--target-loss', type=float, default=0.05,
                        help='train every run down to this training loss')
    parser.add_argument('--max-steps', type=int, default=30000)
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--run-dir', default=None)
    add_release_arguments(parser, kinds=())
    return parse_example_args(parser, argv)


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

    Returns the path: (step, L, |∇L|²) every 0.5 units of time t = step·h.
    """
    record_every = max(1, int(round(0.5 / rate)))
    variables = model.trainable_variables
    x, y = tf.constant(x), tf.constant(y)

    @tf.function
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

    path = []
    for k in range(max_steps):
        loss, norm = step()
        if k % record_every == 0:
            path.append((k, float(loss), float(norm)))
        if float(loss) <= target:
            path.append((k, float(loss), float(norm)))
            break
    return path


def norm_at_loss(path, level):
    """|∇L|² when the loss first drops to ``level`` (interpolated in log L)."""
    for (s0, l0, n0), (s1, l1, n1) in zip(path, path[1:]):
        if l0 >= level >= l1:
            w = (np.log(l0) - np.log(level)) / max(np.log(l0) - np.log(l1), 1e-12)
            return float(np.exp((1 - w) * np.log(n0) + w * np.log(n1)))
    return float('nan')


def train_run(name, rate, penalty, args, data):
    x_train, y_train, x_test, y_test = data
    model = make_model(args.hidden, args.seed)
    start = time.time()
    path = gradient_descent(model, x_train, y_train, rate, penalty, args.target_loss,
                            args.max_steps)
    train_loss, train_norm = loss_and_gradient_norm(model, x_train, y_train, cross_entropy)
    test_loss, _ = loss_and_gradient_norm(model, x_test, y_test, cross_entropy)
    test_accuracy = float((model(x_test).numpy().argmax(1) == y_test).mean())
    return {'run': name, 'h': rate, 'penalty': penalty, 'steps': path[-1][0] + 1,
            'train_loss': train_loss, 'grad_norm_sq_at_end': train_norm,
            'mean_grad_norm_sq_along_path': float(np.mean([p[2] for p in path])),
            'sharpness': sharpness(model, x_train, y_train, cross_entropy),
            'test_loss': test_loss, 'test_accuracy': test_accuracy,
            'gap': test_loss - train_loss, 'path': path,
            'seconds': round(time.time() - start, 1)}


def plot(runs, levels, path):
    fig, axes = new_figure(2, (12, 4.5))
    for r in runs:
        losses = [p[1] for p in r['path']]
        norms = [p[2] for p in r['path']]
        axes[0].loglog(losses, norms, label=r['run'])
        axes[1].semilogy([p[0] * r['h'] for p in r['path']], norms, label=r['run'])
    axes[0].invert_xaxis()
    axes[0].set(xlabel='training loss L (decreasing)', ylabel='|grad L|^2',
                title='Gradient norm at equal loss')
    axes[1].set(xlabel='time t = steps x h', ylabel='|grad L|^2', title='Along training')
    save_figure(fig, path, axes)


def main(argv=None):
    args = parse_args(argv)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    data = load_data(args.seed)
    rates = sorted(args.rates)
    runs = [train_run('GD h=%g' % h, h, 0.0, args, data) for h in rates]
    small, large = rates[0], rates[-1]
    runs.append(train_run('GD h=%g + penalty %g (= %g/4)' % (small, igr_penalty(large), large),
                    small, igr_penalty(large), args, data))
    levels = [0.5, 0.2, 0.1]
    print('%-34s %6s %10s %10s %10s %10s %9s %8s %8s' % (
        'run', 'steps', '|g|2@L=.5', '|g|2@L=.2', '|g|2@L=.1', 'end |g|2', 'sharpness',
        'test acc', 'gap'))
    for r in runs:
        r['grad_norm_sq_at_loss'] = {str(level): norm_at_loss(r['path'], level) for level in levels}
        print('%-34s %6d %10.4g %10.4g %10.4g %10.4g %9.3g %8.3f %8.3f' % (
            r['run'], r['steps'], *[r['grad_norm_sq_at_loss'][str(v)] for v in levels],
            r['grad_norm_sq_at_end'], r['sharpness'], r['test_accuracy'], r['gap']))
    figure = os.path.join(folder, 'gradient_norm.png')
    plot(runs, levels, figure)
    plain = runs[:len(rates)]
    at = [r['grad_norm_sq_at_loss']['0.1'] for r in plain]
    decreasing = all(a > b for a, b in zip(at, at[1:]))
    print('larger h, smaller |grad L|^2 at L=0.1 (the prediction): %s' % decreasing)
    metrics = {'headline': 'norm_ratio_small_over_large_h',
               'norm_ratio_small_over_large_h': at[0] / at[-1],
               'prediction_holds': decreasing, 'runs': [{k: v for k, v in r.items() if k != 'path'}
                                                       for r in runs],
               'target_loss': args.target_loss, 'figure': figure}
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
