"""Pre-training on a clock, and the small releases it writes.

ELECTRA's claim is about compute: its step also runs the generator, so equal
steps would flatter it. Here each arm trains until a budget of seconds is
spent, logging its losses on the way, and what it learned is written in the
release layout (config, vocabulary, checkpoint), so every example's
``--pretrained`` and ``bert4keras-blog check`` read it like a download.

Public API:
    SMALL: the configuration every arm shares (hidden 128, 4 layers, the
        3,000 commonest characters of People's Daily).
    write_initial(kind, folder, seed=0, **sizes) -> paths: a randomly
        initialised ``SMALL`` release of ``kind`` ('bert', 'electra', 'albert').
    TimeBudget(seconds, clock='wall', log_every=10, say=print): a Keras
        callback that stops ``fit`` once ``seconds`` are spent.
    pretrain_for(trainer, batches, seconds, clock='wall', ...) -> dict with
        'steps', 'seconds', 'cpu_seconds' (after the first, tracing step),
        'first_step_seconds' and 'curve' (one row per
        ``log_every`` steps: step, seconds, the mean losses of those steps).
    write_release(models, initial, folder) -> paths: trained weights beside
        copies of the initial release's config(s) and vocabulary.
"""
import os
import shutil
import time

from bert4keras_blog.checkpoints import save_checkpoint, write_tiny
from bert4keras_blog.compat import keras
from bert4keras_blog.errors import SettingError

__all__ = ['SMALL', 'write_initial', 'TimeBudget', 'pretrain_for', 'write_release']

SMALL = dict(hidden_size=128, num_attention_heads=2, intermediate_size=512,
             num_hidden_layers=4, num_chars=3000)
# ELECTRA-Small's proportions: the discriminator is BERT's shape (embedding
# size = hidden size) and the generator a quarter of its width.
_EXTRA = {'electra': dict(embedding_size=128, generator_hidden_size=32,
                          generator_num_attention_heads=1, generator_intermediate_size=128),
          'albert': dict(embedding_size=64)}
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}
MAX_STEPS = 10 ** 9  # fit's epoch length; the budget ends the epoch


def write_initial(kind, folder, seed=0, **sizes):
    """A random ``SMALL`` release of ``kind`` in ``folder`` (the tiny writer's
    layout at a useful size); ``sizes`` override ``SMALL``."""
    settings = dict(SMALL, **_EXTRA.get(kind, {}))
    settings.update(sizes)
    return write_tiny(kind, folder, seed=seed, **settings)


class TimeBudget(keras.callbacks.Callback):
    """Stops training when ``seconds`` have passed on ``clock`` ('wall' or
    'cpu': this process's CPU time, fair when other work shares the cores).

    The clock starts after the first step, which traces the graph (a cost
    of the program, paid once by every arm; reported as
    ``first_step_seconds``). The curve starts with that step's losses, then
    every ``log_every`` steps keeps a row (the mean of each metric over
    those steps, then resets them); every ``report_every`` seconds it says
    where it is.
    """

    def __init__(self, seconds, clock='wall', log_every=10, say=print, report_every=30,
                 name='pretraining'):
        super().__init__()
        if clock not in CLOCKS:
            raise SettingError('clock must be one of %s, got %r' % (', '.join(CLOCKS), clock))
        if not seconds > 0:
            raise SettingError('a pre-training budget must be positive, got %r seconds'
                               % (seconds,))
        self.seconds, self.clock, self.log_every = float(seconds), CLOCKS[clock], log_every
        self.say, self.report_every, self.name = say, report_every, name
        self.curve, self.steps = [], 0

    def _now(self):
        return {'clock': self.clock(), 'wall': time.perf_counter(), 'cpu': time.process_time()}

    def on_train_begin(self, logs=None):
        self.began, self.reported, self.first_step, self.ended = self._now(), 0.0, None, None

    def spent(self, clock='clock'):
        now = self.ended[clock] if self.ended else \
            (self.clock if clock == 'clock' else CLOCKS[clock])()
        return now - self.began[clock]

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.first_step is None:
            # The first step traces the graph: a one-off cost of the program,
            # not of the method, so the budget starts after it (both arms).
            self.first_step = round(self.spent('wall'), 2)
            self.began = self._now()
            self._log(logs)
            return
        spent = self.spent()
        done = spent >= self.seconds
        if (self.steps - 1) % self.log_every == 0 or done:
            self._log(logs)
        if spent - self.reported >= self.report_every or done:
            self.reported = spent
            losses = ', '.join('%s %.4g' % (k, float(v)) for k, v in (logs or {}).items())
            self.say('  %s: %.0f of %.0f s, step %d, %s'
                     % (self.name, spent, self.seconds, self.steps, losses))
        if done:
            self.ended = self._now()  # fit's own teardown is not the arm's time
            self.model.stop_training = True

    def _log(self, logs):
        row = {'step': self.steps, 'seconds': round(self.spent('wall'), 2)}
        row.update((k, float(v)) for k, v in (logs or {}).items())
        self.curve.append(row)
        self.model.reset_metrics()  # the next row averages its own steps only

    def summary(self):
        return {'steps': self.steps, 'seconds': round(self.spent('wall'), 2),
                'cpu_seconds': round(self.spent('cpu'), 2), 'first_step_seconds': self.first_step,
                'curve': self.curve}


def pretrain_for(trainer, batches, seconds, clock='wall', log_every=10, say=print,
                 name='pretraining'):
    """Fits a compiled ``trainer`` (``ElectraPretraining``,
    ``MaskedLMPretraining``) on ``batches`` (a generator of
    ``([token_ids, segment_ids], None)``) until ``seconds`` are spent.

    Returns ``TimeBudget.summary()``.
    """
    budget = TimeBudget(seconds, clock, log_every, say, name=name)
    trainer.fit(batches, steps_per_epoch=MAX_STEPS, epochs=1, verbose=0, callbacks=[budget])
    return budget.summary()


def write_release(models, initial, folder):
    """Writes trained ``models`` (one bert4keras object, or ELECTRA's
    ``(discriminator, generator)``) as a release in ``folder``: copies of
    ``initial``'s config(s) and vocabulary, and the checkpoint under
    ``initial``'s checkpoint name. Returns the new paths."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for key in ('config', 'generator_config', 'dict'):
        if key in initial:
            paths[key] = os.path.join(folder, os.path.basename(initial[key]))
            shutil.copyfile(initial[key], paths[key])
    paths['checkpoint'] = save_checkpoint(
        models, os.path.join(folder, os.path.basename(initial['checkpoint'])))
    return paths
