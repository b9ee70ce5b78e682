"""tf.distribute: the tiny UniLM trained with MirroredStrategy over two
logical CPUs, and with MultiWorkerMirroredStrategy over two processes on
127.0.0.1, ends where one device ends with the same global batch.

Each run is a fresh process (tests/distributed_worker.py): a strategy must
exist before TensorFlow sets up its devices.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'distributed_worker.py')
ROOT = os.path.dirname(os.path.dirname(WORKER))


def run(strategy, optimizer, steps, out, env=None):
    return subprocess.Popen([sys.executable, WORKER, strategy, optimizer, str(steps), str(out)],
                            cwd=ROOT, env=dict(os.environ, **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process):
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def weights(path):
    with np.load(path) as data:
        return data['loss'], [data[k] for k in data.files if k != 'loss']


def max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


OPTIMIZERS = ('adam', 'adamw', 'accumulate')
OUTPUTS = {}  # (strategy, optimizer) -> what the run printed


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
    """Every optimizer on one device and mirrored over two, all six runs side
    by side (the 2 cores are shared; each run is a short process)."""
    folder = tmp_path_factory.mktemp('one-device')
    runs = {(strategy, optimizer): run(strategy, optimizer, 4,
                                       folder / ('%s-%s.npz' % (strategy, optimizer)))
            for strategy in ('default', 'mirrored') for optimizer in OPTIMIZERS}
    OUTPUTS.update((key, finish(process)) for key, process in runs.items())
    for optimizer in OPTIMIZERS:  # the names the other tests read
        os.replace(folder / ('default-%s.npz' % optimizer), folder / (optimizer + '.npz'))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize('optimizer', OPTIMIZERS)
def test_mirrored_over_two_devices_equals_one_device(one_device, optimizer):
    """Adam, bert4keras' weight decay and its gradient accumulation."""
    assert 'replicas=2' in OUTPUTS['mirrored', optimizer]
    loss, mirrored = weights(one_device / ('mirrored-%s.npz' % optimizer))
    reference_loss, reference = weights(one_device / (optimizer + '.npz'))
    assert max_difference(mirrored, reference) <= 1e-5
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-5)
    start = weights(one_device / 'adam.npz')[1]
    if optimizer != 'adam':  # the variants really train differently
        assert max_difference(reference, start) > 1e-4


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_weights(one_device, tmp_path):
    cluster = ['127.0.0.1:%d' % free_port(), '127.0.0.1:%d' % free_port()]
    processes = []
    for index in range(2):
        config = {'cluster': {'worker': cluster}, 'task': {'type': 'worker', 'index': index}}
        processes.append(run('multiworker', 'adam', 4, tmp_path / ('worker%d.npz' % index),
                             env={'TF_CONFIG': json.dumps(config)}))
    for process in processes:
        assert 'replicas=2' in finish(process)
    first, second = (weights(tmp_path / ('worker%d.npz' % i))[1] for i in range(2))
    assert max_difference(first, second) == 0.0
    assert max_difference(first, weights(one_device / 'adam.npz')[1]) <= 1e-5
    assert max_difference(first, weights(one_device / 'adamw.npz')[1]) > 1e-4


def test_strategy_errors_are_clear(monkeypatch):
    from bert4keras_blog.errors import BlogError
    from bert4keras_blog.experiment.distribute import make_strategy, per_replica_batch_size
    monkeypatch.delenv('TF_CONFIG', raising=False)
    with pytest.raises(BlogError, match='TF_CONFIG'):
        make_strategy('multiworker')
    with pytest.raises(BlogError, match='unknown strategy'):
        make_strategy('parameter-server')

    class TwoReplicas(object):
        num_replicas_in_sync = 2
    with pytest.raises(BlogError, match='does not split over 2 replicas'):
        per_replica_batch_size(7, TwoReplicas())
    assert per_replica_batch_size(8, TwoReplicas()) == 4
