"""What importing bert4keras_blog changes for plain tf_keras code that does
not use bert4keras: the same script runs in a process without the package
and in one with it, and every behaviour it records must either agree or be
one of the differences ``docs/compat.md`` lists (``PATCHED_FOR_EVERYONE``).
"""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Plain tf_keras code; ``keras`` is tf_keras in both processes.
PLAIN_KERAS = r'''
import json, os, sys, tempfile
import numpy as np
if sys.argv[1] == 'with':
    import bert4keras_blog
    from bert4keras_blog.compat import keras
else:
    os.environ['TF_USE_LEGACY_KERAS'] = '1'
    import tf_keras as keras
import tensorflow as tf

seen = {}
folder = tempfile.mkdtemp()
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).standard_normal((32, 4)).astype('float32')
y = (x.sum(1) > 0).astype('int64')


def seeded_model():
    inputs = keras.Input((4,), name='x')
    hidden = keras.layers.Dense(8, activation='relu', name='hidden',
                                kernel_initializer=keras.initializers.GlorotUniform(1))(inputs)
    outputs = keras.layers.Dense(2, activation='softmax', name='out',
                                 kernel_initializer=keras.initializers.GlorotUniform(2))(hidden)
    return keras.Model(inputs, outputs, name='seeded')


# Agree: seeded training, evaluation, saving with explicit formats, optimizers.
model = seeded_model()
model.compile(keras.optimizers.Adam(0.01), 'sparse_categorical_crossentropy',
              metrics=['sparse_categorical_accuracy'])
history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
seen['seeded fit losses'] = [round(v, 6) for v in history.history['loss']]
seen['evaluate'] = [round(v, 6) for v in model.evaluate(x, y, verbose=0)]
seen['predict'] = round(float(model.predict(x, verbose=0).sum()), 4)
model.save_weights(os.path.join(folder, 'w.h5'))
reloaded = seeded_model()
reloaded.load_weights(os.path.join(folder, 'w.h5'))
seen['explicit h5 reload'] = bool(np.array_equal(reloaded.predict(x, verbose=0),
                                                 model.predict(x, verbose=0)))
seen['optimizer class'] = type(keras.optimizers.Adam()).__module__
seen['floatx'] = keras.backend.floatx()
seen['relu serialized'] = keras.activations.serialize(keras.activations.relu)
seen['named layer'] = keras.layers.Dense(1, name='mine').name
seen['tensor shapes'] = keras.backend.int_shape(keras.backend.zeros((2, 3)))

# Differ, by design (docs/compat.md, "What importing the package changes").
seen['default layer name'] = keras.layers.Dense(1).name
unseeded = keras.initializers.GlorotUniform()
seen['unseeded initializer repeats'] = bool(np.array_equal(unseeded((3, 3)), unseeded((3, 3))))
fresh = seeded_model()
fresh.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
seen['metrics_names after compile'] = fresh.metrics_names
path = os.path.join(folder, 'weights')
fresh.save_weights(path)
seen['save_weights without suffix'] = 'h5' if os.path.isfile(path) else 'tf'
# 'best' is the first epoch's (highest) loss; training runs to its last epoch
stopper = keras.callbacks.EarlyStopping(monitor='loss', mode='max', patience=10,
                                        restore_best_weights=True)
trained = seeded_model()
trained.compile(keras.optimizers.Adam(0.01), 'sparse_categorical_crossentropy')
last = {}
record = keras.callbacks.LambdaCallback(
    on_epoch_end=lambda epoch, logs: last.update(weights=trained.get_weights()))
trained.fit(x, y, epochs=3, verbose=0, callbacks=[record, stopper], shuffle=False)
seen['EarlyStopping restores at the last epoch'] = not all(
    np.array_equal(a, b) for a, b in zip(last['weights'], trained.get_weights()))


@tf.function
def traced_zeros():
    return keras.backend.zeros((2,)) + 1.0
try:
    seen['K.zeros in a traced function'] = traced_zeros().numpy().tolist()
except Exception as error:
    seen['K.zeros in a traced function'] = type(error).__name__
try:
    seen['K.eye(rows, columns)'] = keras.backend.eye((2, 3)).shape.as_list()
except Exception as error:
    seen['K.eye(rows, columns)'] = type(error).__name__
print('@@' + json.dumps(seen))
'''

# Each difference, and the step that makes it (docs/compat.md).
PATCHED_FOR_EVERYONE = {
    'default layer name': 'step 19: layers and models are named from 1',
    'unseeded initializer repeats': 'step 6: unseeded initializers draw fresh values',
    'metrics_names after compile': 'step 20: metrics_names right after compile',
    'save_weights without suffix': 'step 21: HDF5 unless the name asks for TF format',
    'EarlyStopping restores at the last epoch': 'step 22: restores only when it stopped',
    'K.zeros in a traced function': 'step 14: K.zeros/ones/eye are tensors in a trace',
    'K.eye(rows, columns)': 'step 14: K.eye takes (rows, columns) again',
}


def _behaviours(mode):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='3')
    done = subprocess.run([sys.executable, '-c', PLAIN_KERAS, mode], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith('@@'))
    return json.loads(line[2:])


@pytest.fixture(scope='module')
def both():
    return _behaviours('without'), _behaviours('with')


def test_plain_tf_keras_code_sees_only_the_listed_changes(both):
    without, with_package = both
    assert set(without) == set(with_package)
    differ = {name for name in without if without[name] != with_package[name]}
    assert differ == set(PATCHED_FOR_EVERYONE), (
        {n: (without[n], with_package[n]) for n in differ ^ set(PATCHED_FOR_EVERYONE)})


def test_what_differs_is_what_keras_2_3_1_did(both):
    without, with_package = both
    assert (without['default layer name'], with_package['default layer name']) == \
        ('dense', 'dense_1')
    assert without['unseeded initializer repeats'] and \
        not with_package['unseeded initializer repeats']
    assert without['metrics_names after compile'] == []
    assert with_package['metrics_names after compile'] == ['loss', 'accuracy']
    assert (without['save_weights without suffix'],
            with_package['save_weights without suffix']) == ('tf', 'h5')
    assert with_package['K.zeros in a traced function'] == [1.0, 1.0]
    assert with_package['K.eye(rows, columns)'] == [2, 3]


def test_docs_list_every_change_plain_code_sees():
    with open(os.path.join(ROOT, 'docs', 'compat.md'), encoding='utf-8') as f:
        text = f.read()
    section = text[text.index('## What importing the package changes'):]
    for name, step in PATCHED_FOR_EVERYONE.items():
        assert re.search(r'\| `?%s`? \|' % re.escape(name), section), name
        assert step.split(':')[0] in section, step
