"""What an architecture costs: parameters and FLOPs from its config, and
training throughput measured with every model in its own process.

Public API: parameter_count, width_for_parameters, flops_per_token,
compare_architectures (see ``pretrained``).
"""
import multiprocessing
import resource
import time

import numpy as np

from bert4keras.models import build_transformer_model
from bert4keras.optimizers import Adam

from bert4keras_blog.compat import K, keras

__all__ = ['parameter_count', 'width_for_parameters', 'flops_per_token',
           'compare_architectures']


def parameter_count(config, model='bert'):
    """Parameters of the encoder (embeddings and layers, no pooler or heads).

    Args:
        config: dict with vocab_size, hidden_size, num_hidden_layers,
            intermediate_size, max_position (or max_position_embeddings),
            optional embedding_size and segment_vocab_size (or type_vocab_size).
        model: 'bert', 'albert' (one shared layer) or 'albert_unshared'.
    """
    V, H, I = config['vocab_size'], config['hidden_size'], config['intermediate_size']
    E = config.get('embedding_size') or H
    P = config.get('max_position', config.get('max_position_embeddings', 512))
    T = config.get('segment_vocab_size', config.get('type_vocab_size', 2))
    embeddings = (V + P + T) * E + 2 * E + (E * H + H if E != H else 0)
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    layers = 1 if model == 'albert' else config['num_hidden_layers']
    return embeddings + layers * layer


def width_for_parameters(config, target, model='albert', step=4):
    """The hidden size (multiple of ``step``, intermediate = 4x) whose
    parameter count comes closest to ``target``."""
    best = None
    for hidden in range(step, 8 * config['hidden_size'] + step, step):
        trial = dict(config, hidden_size=hidden, intermediate_size=4 * hidden)
        gap = abs(parameter_count(trial, model) - target)
        if best is None or gap < best[0]:
            best = (gap, hidden)
    return best[1]


def flops_per_token(config, seq_len, model='bert'):
    """Forward multiply-adds x 2 per token of the encoder layers: the dense
    layers plus attention scores and their weighted sum. Sharing weights
    (ALBERT) does not change it; width does."""
    H, I, L = config['hidden_size'], config['intermediate_size'], config['num_hidden_layers']
    E = config.get('embedding_size') or H
    per_layer = 2 * (4 * H * H + 2 * H * I) + 2 * 2 * seq_len * H
    return L * per_layer + (2 * E * H if E != H else 0)


def _workloads(model_name, config, batch_size, seq_len, seed=0):
    """Builds one model; returns (parameters, predict step, train step)."""
    keras.utils.set_random_seed(seed)
    model = build_transformer_model(model=model_name, **config)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, config['vocab_size'], (batch_size, seq_len))
    inputs = [tokens, np.zeros_like(tokens)]
    trainer = keras.models.Model(model.inputs, model.output)
    trainer.compile(optimizer=Adam(1e-4), loss=lambda y, p: K.mean(K.square(p)))
    target = np.zeros((batch_size, seq_len, config['hidden_size']))
    infer = lambda: model.predict_on_batch(inputs)  # noqa: E731
    train = lambda: trainer.train_on_batch(inputs, target)  # noqa: E731
    for _ in range(3):  # graph building and TensorFlow's one-time start-up: not timed
        infer()
    for _ in range(2):
        train()
    return int(model.count_params()), infer, train


def _measure_interleaved(workloads, tokens, steps):
    """Times every model once per round, round after round, so drifts in
    machine speed hit all models alike; medians over the rounds.

    Both clocks are kept: wall time (what a user waits) and this process's
    CPU time (the computation itself). On a shared CPU machine the wall-time
    ratio of two equal models swings 0.65-1.9 between runs while the CPU-time
    ratio stays within a few per cent, so comparisons should use the latter.
    (On a GPU the CPU clock misses the device's work: use wall time there.)"""
    clocks = (('', time.perf_counter), ('_cpu', time.process_time))
    times = [{key + suffix: [] for key in ('infer', 'train') for suffix, _ in clocks}
             for _ in workloads]
    for _ in range(steps):
        for (_, infer, train), record in zip(workloads, times):
            for key, function in (('infer', infer), ('train', train)):
                starts = [clock() for _, clock in clocks]
                function()
                for (suffix, clock), start in zip(clocks, starts):
                    record[key + suffix].append(clock() - start)
    names = {'infer': 'inference_tokens_per_', 'train': 'training_tokens_per_'}
    rows = []
    for (parameters, _, _), record in zip(workloads, times):
        row = {'parameters': parameters}
        for key, prefix in names.items():
            row[prefix + 's'] = tokens / float(np.median(record[key]))
            row[prefix + 'cpu_s'] = tokens / max(float(np.median(record[key + '_cpu'])), 1e-9)
        rows.append(row)
    return rows


def _measure(model_name, config, batch_size, seq_len, steps, seed=0):
    workload = _workloads(model_name, config, batch_size, seq_len, seed)
    return _measure_interleaved([workload], batch_size * seq_len, steps)[0]


def _measure_in_child(args, queue):
    row = _measure(*args)
    row['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put(row)


def compare_architectures(named_configs, batch_size=8, seq_len=128, steps=5,
                          measure_memory=False):
    """Parameters, inference and training throughput (and peak memory) of
    several encoders, measured one after another in the same run.

    Args:
        named_configs: list of (name, bert4keras model name, config dict),
            e.g. ``('ALBERT', 'albert', {...})``.
        batch_size, seq_len: the batch every model gets.
        steps: timed repetitions after one warm-up.
        measure_memory: bool. Run each model in a fresh process and report
            its peak resident memory (MB); slower (TensorFlow starts each
            time). Otherwise all models live in this process and are timed in
            interleaved rounds, which is fairer on a busy machine.

    Returns:
        list of dicts: name, model, parameters, formula_parameters,
        flops_per_token, inference_tokens_per_s, training_tokens_per_s
        (wall clock), inference_tokens_per_cpu_s, training_tokens_per_cpu_s
        (process CPU time: the stable one for comparing models on a shared
        CPU machine) and, with measure_memory, peak_rss_mb.
    """
    if measure_memory:
        rows = []
        for name, model_name, config in named_configs:
            context = multiprocessing.get_context('spawn')
            queue = context.Queue()
            child = context.Process(target=_measure_in_child, args=(
                (model_name, config, batch_size, seq_len, steps), queue))
            child.start()
            rows.append(queue.get())
            child.join()
    else:
        workloads = [_workloads(model_name, config, batch_size, seq_len)
                     for _, model_name, config in named_configs]
        rows = _measure_interleaved(workloads, batch_size * seq_len, steps)
    for row, (name, model_name, config) in zip(rows, named_configs):
        row.update(name=name, model=model_name,
                   formula_parameters=parameter_count(config, model_name),
                   flops_per_token=flops_per_token(config, seq_len, model_name))
    return rows
