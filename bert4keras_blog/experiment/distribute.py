"""The tf.distribute strategy an example trains under (``--strategy``).

Public API:
    STRATEGIES; make_strategy(name) -> tf.distribute.Strategy: 'default'
        (one device), 'mirrored' (every local GPU, or the devices given),
        'multiworker' (several machines, from TF_CONFIG).
    per_replica_batch_size(global_batch_size, strategy) -> int
"""
import json
import os

from bert4keras_blog.compat import tf
from bert4keras_blog.errors import BlogError

__all__ = ['STRATEGIES', 'make_strategy', 'per_replica_batch_size']

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
