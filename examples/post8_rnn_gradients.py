#! -*- coding: utf-8 -*-
# Post 8: 也来谈谈RNN的梯度消失/爆炸问题 (RNN gradient vanishing and explosion),
# https://kexue.fm/archives/7888
#
# 1. ‖∂h_T/∂h_t‖ against T−t for SimpleRNN (recurrent spectral radius below,
#    at and above 1), LSTM (forget-gate bias 0, 1, 5) and GRU, with the fitted
#    geometric rate next to what the per-step formulas predict.
# 2. Each time step's share of the gradient (the "sum over paths" view).
# 3. A long-range recall task: which cells (and gate initialisations) learn a
#    dependency 50 and 100 steps back.
#
# Both studies repeat over seeds (--seeds: fresh weights, inputs and training
# batches); fitted against predicted rates, and gated cells against plain
# ones, are paired differences with 95% intervals.
#
#   python examples/post8_rnn_gradients.py          # 2 seeds, about 5 minutes
#   python examples/post8_rnn_gradients.py --full   # 5 seeds
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras_blog.compat import keras, tf
from bert4keras_blog.experiment.claims import compare, table
from bert4keras_blog.rnn_gradients import (
    analytic_step_jacobians, fit_decay_rate, gradient_by_step, state_jacobian_norms, unroll)
from bert4keras_blog.experiment.flags import (
    add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post8_rnn_gradients'

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'units': 16, 'steps': 60, 'lags': [40], 'train_steps': 250, 'seeds': 3}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='RNN gradient vanishing/explosion (post 8).')
    parser.add_argument('--units', type=int, default=32)
    parser.add_argument('--steps', type=int, default=100, help='sequence length T')
    parser.add_argument('--lags', type=int, nargs='+', default=[50, 100],
                        help='recall task: how far back the answer lies')
    parser.add_argument('--train-steps', type=int, default=500, help='recall task updates')
    parser.add_argument('--seed', type=int, default=0, help='first seed')
    parser.add_argument('--seeds', type=int, default=None, help='default 2; --full 5')
    parser.add_argument('--full', action='store_true', help='5 seeds')
    parser.add_argument('--run-dir', default=None)
    add_release_arguments(parser, kinds=())
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    args.seeds = args.seeds or (5 if args.full else 2)


# ------------------------------------------------------ 1. Jacobian norms

def orthogonal(n, rng):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def simple_rnn(units, rho, rng, features, input_scale=0.1):
    """Recurrent matrix rho·Q (Q orthogonal): spectral radius exactly rho.
    Small input weights keep tanh near its linear range, where rho decides."""
    layer = keras.layers.SimpleRNN(units)
    layer.cell.build(tf.TensorShape([None, features]))
    layer.cell.kernel.assign(rng.normal(0, input_scale / np.sqrt(features), (features, units)))
    layer.cell.recurrent_kernel.assign(rho * orthogonal(units, rng))
    return layer


def set_gate_bias(layer, value):
    """LSTM: the forget gate's bias; GRU: the update gate's (z keeps h_{t-1})."""
    cell = layer.cell
    bias = keras.backend.get_value(cell.bias)
    if isinstance(cell, keras.layers.LSTMCell):
        bias[cell.units:2 * cell.units] = value
    else:  # GRU kernels are ordered z, r, h
        bias[..., :cell.units] = value
    cell.bias.assign(bias)


def gated(kind, units, rng, features, gate_bias=None):
    layer = getattr(keras.layers, kind)(units)
    layer.cell.build(tf.TensorShape([None, features]))
    if gate_bias is not None:
        set_gate_bias(layer, gate_bias)
    return layer


def predicted_rate(name, layer, inputs):
    """What the per-step formulas say the geometric rate should be."""
    cell, units = layer.cell, layer.cell.units
    states = np.stack([s.numpy() for s in unroll(layer, inputs)[1:]])  # (T, b, n)
    if name.startswith('SimpleRNN'):
        # J_t = diag(1 - h²) ρQ: a rotation scaled by ρ, then the tanh slopes;
        # a spread-out vector shrinks by the RMS slope each step.
        rho = np.abs(np.linalg.eigvals(keras.backend.get_value(cell.recurrent_kernel))).max()
        return rho * np.sqrt(np.mean((1 - states ** 2) ** 2))
    jac = analytic_step_jacobians(layer, inputs)  # (T, b, n, n)
    if name.startswith('LSTM'):
        # The cell path ∂c_t/∂c_{t-1} = diag(f): the slowest unit's geometric-mean f.
        f = np.diagonal(jac[:, :, units:, units:], axis1=2, axis2=3)
    else:
        # GRU: ∂h_t/∂h_{t-1} = diag(z) + ...: the slowest unit's geometric-mean z.
        f = np.diagonal(jac, axis1=2, axis2=3)
    return float(np.exp(np.log(np.clip(f, 1e-12, None)).mean(axis=(0, 1))).max())


def jacobian_study(args, rng):
    features = 8
    inputs = rng.normal(0, 1, (8, args.steps, features)).astype('float32')
    settings = [('SimpleRNN rho=0.9', simple_rnn(args.units, 0.9, rng, features)),
                ('SimpleRNN rho=1.0', simple_rnn(args.units, 1.0, rng, features)),
                ('SimpleRNN rho=1.1', simple_rnn(args.units, 1.1, rng, features)),
                ('LSTM forget bias 0', gated('LSTM', args.units, rng, features, 0.0)),
                ('LSTM forget bias 1', gated('LSTM', args.units, rng, features, 1.0)),
                ('LSTM forget bias 5', gated('LSTM', args.units, rng, features, 5.0)),
                ('GRU', gated('GRU', args.units, rng, features)),
                ('GRU update bias 5', gated('GRU', args.units, rng, features, 5.0))]
    rows, curves = [], {}
    for name, layer in settings:
        norms = state_jacobian_norms(layer, inputs)
        curves[name] = norms['spectral']
        rows.append({'setting': name, 'fitted_rate': fit_decay_rate(norms['spectral'], skip=5),
                     'predicted_rate': predicted_rate(name, layer, inputs),
                     'norm_at_T': float(norms['spectral'][-1]),
                     'median_step_norm': float(np.median(norms['step_spectra'][..., 0]))})
    return rows, curves, settings, inputs


def path_study(settings, inputs):
    """Each step's share of ∂L/∂W for L = ½‖h_T‖²."""
    shares = {}
    for name, layer in settings:
        if name in ('SimpleRNN rho=1.0', 'LSTM forget bias 1', 'LSTM forget bias 5', 'GRU'):
            result = gradient_by_step(layer, inputs, lambda s: 0.5 * tf.reduce_sum(s ** 2))
            shares[name] = result['norms'][::-1]  # index = T−t − 1
    return shares


# ------------------------------------------------------- 3. recall task

def recall_batch(rng, batch, lag, symbols=4):
    """The first step shows one of `symbols`; then `lag` steps of distractors."""
    answer = rng.integers(symbols, size=batch)
    noise = rng.integers(symbols, size=(batch, lag))
    seq = np.concatenate([answer[:, None], noise], axis=1)
    x = np.eye(symbols + 1, dtype='float32')[seq]
    x[:, 0, symbols] = 1.0  # a marker on the step to remember
    return x, answer


RECALL_CELLS = [('SimpleRNN', None), ('LSTM', None), ('LSTM', 5.0), ('GRU', None), ('GRU', 5.0)]


def recall_task(kind, gate_bias, lag, args, rng, seed):
    set_seed(seed)
    layer = getattr(keras.layers, kind)(args.units)
    model = keras.Sequential([keras.layers.InputLayer(input_shape=(lag + 1, 5)), layer,
                              keras.layers.Dense(4, activation='softmax')])
    if gate_bias is not None:
        set_gate_bias(layer, gate_bias)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    start = time.time()
    # The same batches in the same order as one train_on_batch per step, but
    # in one fit call: identical weights, about half the time.
    batches = [recall_batch(rng, 64, lag) for _ in range(args.train_steps)]
    model.fit(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]),
              batch_size=64, epochs=1, shuffle=False, verbose=0)
    x, y = recall_batch(rng, 1000, lag)
    accuracy = float(model.evaluate(x, y, verbose=0)[1])
    name = kind if gate_bias is None else '%s, gate bias %g' % (kind, gate_bias)
    return {'cell': name, 'lag': lag, 'seed': seed, 'accuracy': accuracy,
            'seconds': time.time() - start}


# ------------------------------------------------------------- plotting

def plot(curves, shares, path):
    fig, axes = new_figure(2, (13, 5))
    for name, values in curves.items():
        axes[0].semilogy(np.arange(1, len(values) + 1), values, label=name)
    axes[0].set(xlabel='T - t', ylabel='||dh_T/dh_t|| (spectral, batch mean)',
                title='State Jacobian norm against distance')
    for name, values in shares.items():
        axes[1].semilogy(np.arange(1, len(values) + 1), values, label=name)
    axes[1].set(xlabel='T - t', ylabel="norm of step t's share of dL/dW",
                title='Gradient as a sum over time steps')
    save_figure(fig, path, axes)


def claims(rate_rows, recall):
    """Fitted against predicted decay rates, and each gated cell with gate
    bias 5 against the same cell without, paired by seed."""
    rows = []
    for setting in dict.fromkeys(r['setting'] for r in rate_rows):
        chosen = [r for r in rate_rows if r['setting'] == setting]
        rows.append(compare('decay rate: ' + setting, 'fitted', 'predicted',
                            [r['fitted_rate'] for r in chosen],
                            [r['predicted_rate'] for r in chosen]))
    for lag in sorted({r['lag'] for r in recall}):
        for kind in ('LSTM', 'GRU'):
            def accuracies(cell):
                return [r['accuracy'] for r in recall if r['cell'] == cell and r['lag'] == lag]
            rows.append(compare('recall accuracy, lag %d' % lag, kind + ', gate bias 5', kind,
                                accuracies(kind + ', gate bias 5'), accuracies(kind)))
    return rows


def main(argv=None):
    args = parse_args(argv)
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    start = time.time()
    seeds = range(args.seed, args.seed + args.seeds)

    rate_rows, recall = [], []
    print('%-20s %4s %12s %15s %12s' % ('setting', 'seed', 'fitted rate', 'predicted rate',
                                       '|J| at T'))
    for seed in seeds:
        rng = np.random.default_rng(seed)
        rows, curves, settings, inputs = jacobian_study(args, rng)
        for r in rows:
            r['seed'] = seed
            print('%-20s %4d %12.4f %15.4f %12.3g' % (r['setting'], seed, r['fitted_rate'],
                                                      r['predicted_rate'], r['norm_at_T']))
        rate_rows += rows
        if seed == args.seed:  # the plot shows the first seed
            shares = path_study(settings, inputs)
            figure = os.path.join(folder, 'jacobian_norms.png')
            plot(curves, shares, figure)
        recall += [recall_task(kind, bias, lag, args, rng, seed)
                   for lag in args.lags for kind, bias in RECALL_CELLS]
    print('\nrecall the first of %s steps (chance 25%%):' % '/'.join(map(str, args.lags)))
    for r in recall:
        print('  %-20s lag %3d seed %d: accuracy %.3f (%.0f s)' % (
            r['cell'], r['lag'], r['seed'], r['accuracy'], r['seconds']))
    rows = claims(rate_rows, recall)
    print('\n' + table(rows, digits=3))
    longest = max(args.lags)
    gated = [r for r in rows if r['claim'] == 'recall accuracy, lag %d' % longest
             and r['a'] == 'GRU, gate bias 5'][0]
    metrics = {'headline': 'gru_gate_bias_gain_lag%d' % longest,
               'gru_gate_bias_gain_lag%d' % longest: gated['difference'],
               'interval': [gated['low'], gated['high']], 'seeds': args.seeds,
               'gated_recall_accuracy_lag%d' % longest: gated['mean_a'],
               'claims': rows, 'decay_rates': rate_rows, 'recall': recall, 'figure': figure,
               'seconds': round(time.time() - start, 1)}
    run.save(metrics)
    print('plot: %s' % figure)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
