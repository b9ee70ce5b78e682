"""One training run of the tiny UniLM under a tf.distribute strategy; saves
the final weights. Run by tests/test_distributed.py in fresh processes (a
strategy must be made before TensorFlow starts its devices).

    python tests/distributed_worker.py STRATEGY OPTIMIZER STEPS OUT.npz
"""
import sys

STRATEGY, OPTIMIZER, STEPS, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

import bert4keras_blog  # noqa: E402,F401
from bert4keras_blog.compat import K, keras, tf  # noqa: E402

if STRATEGY == 'mirrored':  # two logical CPUs stand in for two GPUs
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from bert4keras_blog.experiment.distribute import make_strategy, per_replica_batch_size  # noqa: E402

strategy = make_strategy(STRATEGY, ['/cpu:0', '/cpu:1'] if STRATEGY == 'mirrored' else None)

import numpy as np  # noqa: E402
from bert4keras.layers import Loss  # noqa: E402
from bert4keras.models import build_transformer_model  # noqa: E402
from bert4keras.optimizers import (  # noqa: E402
    Adam, extend_with_gradient_accumulation, extend_with_weight_decay)
from bert4keras_blog.checkpoints import tiny  # noqa: E402

GLOBAL_BATCH, LENGTH = 8, 24


class TargetCrossEntropy(Loss):
    """UniLM loss on the target half; every row has the same number of
    target tokens, so the mean over replicas equals the global mean."""

    def compute_loss(self, inputs, mask=None):
        token_ids, segment_ids, probabilities = inputs
        y_mask = segment_ids[:, 1:]
        loss = K.sparse_categorical_crossentropy(token_ids[:, 1:], probabilities[:, :-1])
        return K.sum(loss * y_mask) / K.sum(y_mask)


def batches(size):
    """The same stream of rows in every process, ``size`` rows a batch."""
    rows = np.random.default_rng(0).integers(14, 2000, (GLOBAL_BATCH * 100, LENGTH))
    segment = np.array([[0] * (LENGTH // 2) + [1] * (LENGTH // 2)] * size)
    for start in range(0, len(rows), size):
        yield (rows[start:start + size], segment), None


def optimizer():
    if OPTIMIZER == 'adam':
        return Adam(1e-3)
    if OPTIMIZER == 'adamw':
        return extend_with_weight_decay(Adam, 'AdamW')(1e-3, weight_decay_rate=0.5)
    if OPTIMIZER == 'accumulate':
        return extend_with_gradient_accumulation(Adam, 'AdamGA')(1e-3, grad_accum_steps=2)
    raise ValueError(OPTIMIZER)


per_replica_batch_size(GLOBAL_BATCH, strategy)  # Keras splits each batch over the replicas
paths = tiny('bert')
keras.utils.set_random_seed(0)
with strategy.scope():
    model = build_transformer_model(paths['config'], paths['checkpoint'], application='unilm',
                                    with_mlm=True, dropout_rate=0.0,
                                    attention_dropout_rate=0.0)  # same result on any replica
    output = TargetCrossEntropy(2)(model.inputs + model.outputs)
    trainer = keras.models.Model(model.inputs, output)
    trainer.compile(optimizer=optimizer())
history = trainer.fit(batches(GLOBAL_BATCH), steps_per_epoch=STEPS, epochs=1, verbose=0).history
np.savez(OUT, loss=np.array(history['loss']), *model.get_weights())
print('replicas=%d loss=%.4f' % (strategy.num_replicas_in_sync, history['loss'][-1]))
