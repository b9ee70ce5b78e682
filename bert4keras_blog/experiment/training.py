"""What every example's training shares.

Public API:
    set_seed(seed): Python, NumPy and TensorFlow seeds in one call.
    KeepBest: Keras callback; evaluates after each epoch, saves the best
        weights, records the history.
(``distribute`` makes the tf.distribute strategy, ``plots`` the figures,
``runs`` the run folder.)
"""
import random
import time

import numpy as np

from bert4keras_blog.compat import keras

__all__ = ['set_seed', 'KeepBest']


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


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
