#! -*- coding: utf-8 -*-
# Post 5: 从动力学角度看优化算法（六）：为什么SimSiam不退化？ (Why SimSiam does
# not collapse), https://kexue.fm/archives/7980
#
# SimSiam, its two ablations (no stop-gradient, no predictor) and BYOL, each
# trained the same way on scikit-learn's handwritten digits (8x8 images that
# ship with the package) with a small CNN encoder. After every epoch the
# collapse monitor records the std of the l2-normalised outputs (1/sqrt(d)
# when spread out, 0 when collapsed), their effective rank, and the kNN
# accuracy of the encoder's features on held-out digits.
#
# Every variant is trained from several seeds (--seeds); the claims (SimSiam
# against each ablation, BYOL against SimSiam) are paired differences with
# 95% intervals.
#
#   python examples/post5_simsiam.py          # 3 seeds x 4 variants, about 4 minutes
#   python examples/post5_simsiam.py --full   # 5 seeds, 40 epochs
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras_blog.compat import keras, tf
from bert4keras_blog.experiment.claims import compare, table
from bert4keras_blog.simsiam import (
    BYOL, CollapseMonitor, MomentumSchedule, SimSiam, knn_accuracy, projection_head)
from bert4keras_blog.experiment.flags import (
    add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post5_simsiam'
VARIANTS = ['SimSiam', 'no stop-gradient', 'no predictor', 'BYOL']

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'variants': ['SimSiam', 'no stop-gradient'], 'epochs': 10, 'seeds': 3}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='SimSiam collapse study (post 5).')
    parser.add_argument('--epochs', type=int, default=None, help='default 20; --full 40')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--dim', type=int, default=64, help='projector output size d')
    parser.add_argument('--lr', type=float, default=0.05, help='SGD learning rate')
    parser.add_argument('--variants', nargs='+', default=VARIANTS, choices=VARIANTS)
    parser.add_argument('--seed', type=int, default=0, help='first seed')
    parser.add_argument('--seeds', type=int, default=None, help='seeds per variant (default 3)')
    parser.add_argument('--full', action='store_true', help='5 seeds, 40 epochs')
    parser.add_argument('--run-dir', default=None)
    add_release_arguments(parser, kinds=())
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    args.epochs = args.epochs or (40 if args.full else 20)
    args.seeds = args.seeds or (5 if args.full else 3)


def load_digits_split(seed):
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images / 16.0).astype('float32')[..., None]
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], digits.target[order]
    return x[:1297], y[:1297], x[1297:], y[1297:]


def augment(images):
    """Random resized crop (70-100% of the side), brightness and pixel noise."""
    batch = tf.shape(images)[0]
    scale = tf.random.uniform([batch, 1], 0.7, 1.0)
    top_left = tf.random.uniform([batch, 2], 0.0, 1.0) * (1.0 - scale)
    boxes = tf.concat([top_left, top_left + scale], axis=1)
    views = tf.image.crop_and_resize(images, boxes, tf.range(batch), [8, 8])
    views = views * tf.random.uniform([batch, 1, 1, 1], 0.8, 1.2)
    return views + tf.random.normal(tf.shape(views), stddev=0.05)


def cnn_encoder():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(32, 3, padding='same', activation='relu')(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, padding='same', activation='relu')(x)
    x = keras.layers.Conv2D(64, 3, padding='same', activation='relu')(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(64)(x), name='encoder')


def make_model(variant, dim):
    # No BN on the projector's output: a batch-normalised output cannot be one
    # constant, which would hide the complete collapse the ablations show.
    projector = projection_head(dim, 64, output_bn=False)
    if variant == 'BYOL':
        return BYOL(cnn_encoder(), augment, projector, base_momentum=0.99)
    return SimSiam(cnn_encoder(), augment, projector,
                   predictor='none' if variant == 'no predictor' else 'learned',
                   stop_gradient=variant != 'no stop-gradient')


def train_variant(variant, args, data, seed):
    set_seed(seed)
    x_train, y_train, x_test, y_test = data
    model = make_model(variant, args.dim)
    model.compile(optimizer=keras.optimizers.SGD(args.lr, momentum=0.9))
    monitor = CollapseMonitor(x_train, y_train, x_test, y_test, verbose=False)
    callbacks = [monitor]
    if variant == 'BYOL':
        steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
        callbacks.append(MomentumSchedule(0.99, steps))
    start = time.time()
    model.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
              callbacks=callbacks)
    final = monitor.history[-1]
    print('%-17s seed %d  loss %7.4f  std %.4f (1/sqrt(d) %.4f)  rank %5.1f  kNN %.3f  %.0f s'
          % (variant, seed, final['loss'], final['std'], final['std_reference'], final['rank'],
        final['knn'], time.time() - start))
    return {'variant': variant, 'seed': seed, 'history': monitor.history, 'final': final,
            'seconds': round(time.time() - start, 1)}


def claims(runs):
    """SimSiam against each ablation, and BYOL against SimSiam, paired by seed."""
    by_variant = {}
    for run in runs:
        by_variant.setdefault(run['variant'], []).append(run['final'])
    pairs = [('SimSiam', 'no stop-gradient'), ('SimSiam', 'no predictor'), ('BYOL', 'SimSiam')]
    rows = []
    for a, b in pairs:
        if a in by_variant and b in by_variant:
            rows.append(compare('kNN accuracy', a, b, [f['knn'] for f in by_variant[a]],
                                [f['knn'] for f in by_variant[b]]))
            # The std spans orders of magnitude (collapse is ~1e-3): compare its log.
            rows.append(compare('log10 output std', a, b,
                                np.log10([f['std'] for f in by_variant[a]]),
                                np.log10([f['std'] for f in by_variant[b]])))
    return rows


def plot(runs, path):
    fig, axes = new_figure(2, (12, 4.5))
    colours = {}
    for run in runs:  # one line per seed, one colour per variant
        first = run['variant'] not in colours
        colour = colours.setdefault(run['variant'], 'C%d' % len(colours))
        label = run['variant'] if first else None
        epochs = [h['epoch'] for h in run['history']]
        axes[0].plot(epochs, [h['std'] for h in run['history']], color=colour, label=label)
        axes[1].plot(epochs, [h['knn'] for h in run['history']], color=colour, label=label)
    reference = runs[0]['history'][0]['std_reference']
    axes[0].axhline(reference, color='gray', linestyle='--', label='1/sqrt(d)')
    axes[0].set(xlabel='epoch', ylabel='std of l2-normalised outputs',
                title='Collapse: output std per epoch')
    axes[1].set(xlabel='epoch', ylabel='5-NN accuracy (held-out digits)',
                title='Representation quality')
    save_figure(fig, path, axes)


def main(argv=None):
    args = parse_args(argv)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    data = load_digits_split(args.seed)
    x_train, y_train, x_test, y_test = data
    raw = knn_accuracy(x_train.reshape(len(x_train), -1), y_train,
                       x_test.reshape(len(x_test), -1), y_test)
    print('kNN on raw pixels: %.3f (a reference, not a target)' % raw)
    runs = [train_variant(variant, args, data, seed)
            for seed in range(args.seed, args.seed + args.seeds) for variant in args.variants]
    figure = os.path.join(folder, 'collapse.png')
    plot(runs, figure)
    rows = claims(runs)
    print('\n' + table(rows, digits=3))
    finals = {variant: {key: float(np.mean([r['final'][key] for r in runs
                                            if r['variant'] == variant]))
                        for key in ('loss', 'std', 'std_reference', 'rank', 'knn')}
              for variant in args.variants}
    metrics = {'headline': 'simsiam_knn_accuracy',
               'simsiam_knn_accuracy': finals.get('SimSiam', {}).get('knn'),
               'raw_pixel_knn_accuracy': raw, 'seeds': args.seeds, 'claims': rows,
               'final': finals, 'runs': runs, 'figure': figure}
    headline = [r for r in rows if r['a'] == 'SimSiam' and r['b'] == 'no stop-gradient'
                and r['claim'] == 'kNN accuracy']
    if headline:
        metrics.update(headline='knn_simsiam_minus_no_stop_gradient',
                       knn_simsiam_minus_no_stop_gradient=headline[0]['difference'],
                       interval=[headline[0]['low'], headline[0]['high']])
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
