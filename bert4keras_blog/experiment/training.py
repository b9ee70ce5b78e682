"""What every example's training shares.

Public API:
    set_seed(seed): Python, NumPy and TensorFlow seeds in one call.
    run_dir(example, root='runs') -> str: ``runs/<example>/``, created.
    save_metrics(folder, metrics) -> str: ``metrics.json`` (sorted, UTF-8).
    KeepBest: Keras callback; evaluates after each epoch, saves the best
        weights, records the history.
    add_common_arguments(parser): --seed, --epochs, --batch-size, --run-dir,
        --strategy.
    STRATEGIES; make_strategy(name) -> tf.distribute.Strategy: 'default'
        (one device), 'mirrored' (every local GPU, or the devices given),
        'multiworker' (several machines, from TF_CONFIG).
    per_replica_batch_size(global_batch_size, strategy) -> int
    new_figure(columns=1, size=(6.5, 4.2)) -> (fig, axes): matplotlib, Agg backend.
    save_figure(fig, path, axes): grid, legends, tight layout, PNG, closed.
"""
import json
import os
import random
import time

import numpy as np

from bert4keras_blog.compat import keras, tf
from bert4keras_blog.errors import BlogError

__all__ = ['set_seed', 'run_dir', 'save_metrics', 'KeepBest', 'add_common_arguments',
           'new_figure', 'save_figure', 'STRATEGIES', 'make_strategy', 'per_replica_batch_size']


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def run_dir(example, root='runs'):
    """The folder for one example's outputs (git-ignored ``runs/``)."""
    folder = os.path.join(root, example)
    os.makedirs(folder, exist_ok=True)
    return folder


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_metrics(folder, metrics):
    """Writes ``metrics`` as ``<folder>/metrics.json`` and returns the path.
    Written beside it and moved into place: an interrupted run never leaves
    a half-written record."""
    path = os.path.join(folder, 'metrics.json')
    text = json.dumps(_plain(metrics), indent=2, ensure_ascii=False, sort_keys=True)
    with open(path + '.partial', 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(path + '.partial', path)
    return path


class KeepBest(keras.callbacks.Callback):
    """Evaluates after every epoch and keeps the best weights.

    Args:
        evaluate: callable() -> dict of metrics.
        monitor: str. The key to maximise.
        weights_path: str or None. Where the best weights go
            (``model.save_weights``). Defaults to None (not saved).
        model_to_save: keras.Model or None. Defaults to the model being fit.

    Attributes:
        history: list of dicts, one per epoch (with 'epoch' and 'seconds').
        best: dict, the best epoch's metrics.
    """

    def __init__(self, evaluate, monitor, weights_path=None, model_to_save=None):
        super().__init__()
        self.evaluate, self.monitor = evaluate, monitor
        self.weights_path, self.model_to_save = weights_path, model_to_save
        self.history, self.best = [], None
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        metrics = dict(self.evaluate(), epoch=epoch + 1,
                       seconds=round(time.time() - self._start, 1))
        if logs and 'loss' in logs:
            metrics['loss'] = float(logs['loss'])
        self.history.append(metrics)
        improved = self.best is None or metrics[self.monitor] > self.best[self.monitor]
        if improved:
            self.best = metrics
            if self.weights_path:
                (self.model_to_save or self.model).save_weights(self.weights_path)
        print('epoch %d: %s%s' % (epoch + 1, ', '.join(
            '%s=%.4g' % (k, v) for k, v in metrics.items()
            if isinstance(v, float) and k != 'seconds'), ' (best)' if improved else ''))


def add_common_arguments(parser, epochs, batch_size, seed=0):
    """Adds --seed, --epochs, --batch-size, --run-dir and --strategy."""
    parser.add_argument('--seed', type=int, default=seed, help='random seed (default %(default)s)')
    parser.add_argument('--epochs', type=int, default=epochs, help='default %(default)s')
    parser.add_argument('--batch-size', type=int, default=batch_size,
                        help='global batch size, split over the replicas (default %(default)s)')
    parser.add_argument('--run-dir', default=None, help='outputs folder (default runs/<example>)')
    parser.add_argument('--strategy', choices=STRATEGIES, default='default',
                        help='tf.distribute: default (one device), mirrored (all local GPUs), '
                             'multiworker (machines listed in TF_CONFIG)')
    return parser


STRATEGIES = ('default', 'mirrored', 'multiworker')


def make_strategy(name='default', devices=None):
    """TensorFlow's own distribution engine; build the model and its
    optimizer inside ``with strategy.scope():``, then ``fit`` as usual.

    Args:
        name: 'default' (whatever device TF picks), 'mirrored' (synchronous
            data parallelism over ``devices``, default every local GPU),
            'multiworker' (the same over the machines in the ``TF_CONFIG``
            environment variable; every worker runs the same command).
        devices: for 'mirrored', e.g. ['/gpu:0', '/gpu:1'].

    The batch size stays global: Keras splits each batch over the replicas
    and sums their gradients, so a run on 8 GPUs with batch 256 takes the
    steps a single device takes with batch 256 (see per_replica_batch_size).
    Create the strategy before any other TensorFlow work: 'multiworker'
    must be made at program start.
    """
    if name == 'default':
        return tf.distribute.get_strategy()
    if name == 'mirrored':
        return tf.distribute.MirroredStrategy(devices)
    if name == 'multiworker':
        try:
            cluster = json.loads(os.environ['TF_CONFIG'])['cluster']['worker']
        except (KeyError, ValueError, TypeError):
            raise BlogError('--strategy multiworker needs TF_CONFIG, e.g. '
                            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                            '"task": {"type": "worker", "index": 0}} (index differs per machine)')
        if len(cluster) < 1:
            raise BlogError('TF_CONFIG lists no workers')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise BlogError('unknown strategy %r; choose from %s' % (name, ', '.join(STRATEGIES)))


def per_replica_batch_size(global_batch_size, strategy):
    """The batch each replica sees; the global batch must divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise BlogError('batch size %d does not split over %d replicas; use a multiple of %d'
                        % (global_batch_size, replicas, replicas))
    return global_batch_size // replicas


def new_figure(columns=1, size=(6.5, 4.2)):
    """A figure with ``columns`` axes side by side, drawn without a display."""
    import matplotlib  # here: selecting Agg at import would override a notebook's backend
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(1, columns, figsize=size)


def save_figure(fig, path, axes):
    """Grid and legend on every axis, then the PNG at ``path``; closes ``fig``."""
    import matplotlib.pyplot as plt
    for ax in np.ravel(axes):
        ax.grid(alpha=0.3, which='both')
        if ax.get_legend_handles_labels()[0]:  # an unlabelled axis would warn
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
