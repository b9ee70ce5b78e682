"""Training-step time of TeaForN with N = 1, 2, 3 against plain teacher
forcing (post 3's loss on the bert4keras UniLM), measured in the same run.

Model: a small BERT UniLM (4 layers, hidden 256, 4 heads, vocab 21128, random
weights), batch 16, 96 tokens of which 32 are target. Each setting is warmed
up, then the median of ``--steps`` ``train_on_batch`` calls is reported.

Usage: python benchmarks/teaforn.py [--steps 20]
Last line: step_cost_ratio_n3=<TeaForN N=3 step time / teacher forcing step time>.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import bert4keras_blog  # noqa: E402,F401
from bert4keras.layers import Loss  # noqa: E402
from bert4keras.models import build_transformer_model  # noqa: E402
from bert4keras.optimizers import Adam  # noqa: E402
from bert4keras_blog.compat import K, keras  # noqa: E402
from bert4keras_blog.teaforn import TeaForN  # noqa: E402

CONFIG = dict(vocab_size=21128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=1024, hidden_act='gelu', max_position=512, dropout_rate=0.1)


class CrossEntropy(Loss):
    """Teacher forcing as bert4keras' seq2seq examples write it."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        loss = K.sparse_categorical_crossentropy(y_true[:, 1:], y_pred[:, :-1])
        y_mask = K.cast(y_mask[:, 1:], K.floatx())
        return K.sum(loss * y_mask) / K.sum(y_mask)


def batch(rng, size=16, length=96, target=32):
    tokens = rng.integers(106, 21128, (size, length))
    segments = np.zeros((size, length))
    segments[:, -target:] = 1
    return [tokens, segments]


def step_time(trainer, data, steps):
    trainer.compile(optimizer=Adam(1e-4))
    for _ in range(3):
        trainer.train_on_batch(data)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_on_batch(data)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=20)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    data = batch(rng)
    keras.utils.set_random_seed(0)
    model = build_transformer_model(application='unilm', with_mlm=True, **CONFIG)
    plain = keras.models.Model(model.inputs, CrossEntropy(2)(model.inputs + model.outputs))
    baseline = step_time(plain, data, args.steps)
    rows = [('teacher forcing (bert4keras)', baseline)]
    for n in (1, 2, 3):
        keras.utils.set_random_seed(0)
        transformer = build_transformer_model(application='unilm', with_mlm=True,
                                              return_keras_model=False, **CONFIG)
        rows.append(('TeaForN N=%d' % n, step_time(TeaForN(transformer, n=n).build(), data,
                                                   args.steps)))
    print('batch 16 x 96 tokens, median of %d steps, CPU' % args.steps)
    print('%-30s %10s %8s' % ('training', 'step ms', 'ratio'))
    for name, seconds in rows:
        print('%-30s %10.1f %8.2f' % (name, 1000 * seconds, seconds / baseline))
    print('step_cost_ratio_n3=%.2f' % (rows[-1][1] / baseline))


if __name__ == '__main__':
    main()
