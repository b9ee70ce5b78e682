"""The protocol every cached model family implements, and what they share.

A runner holds a model's traced graphs (prefill, step, write, copy); a
search holds a ``slots.State``. Each graph is traced for the first shapes
it meets and once more for any others, not per step.

The protocol (what the strategies and ``xiangqi.player`` call):
    runner.start(batch, width=None, new_tokens=1, rows=None) -> (logits, state):
        prefills ``batch``; ``width``: the longest input that will ever be
        admitted; ``new_tokens``: how many tokens the search may add to a row;
        ``rows``: the most rows it will hold, given slots from the start (a
        beam's first step would otherwise grow every buffer).
    runner.admit(state, batch) -> logits of the new rows (after the others).
    runner.advance(state, rows, tokens) -> (logits, state): feeds
        ``tokens[j]`` to a new row that continues row ``rows[j]``.
    runner.vocab_size, runner.cache_bytes(batch_size, length).

Public API:
    CachedRunner: the base (slot bookkeeping, buffers, traced calls).
    shared_runner(cls, model, *args): one runner (and its traces) per model.
    keras_model(model): the Keras model of a bert4keras object.
"""
import weakref

import numpy as np

from bert4keras_blog.compat import K, tf
from bert4keras_blog.decoding import slots, speed
from bert4keras_blog.decoding.attention import CachedAttention, update_rows, write_columns

__all__ = ['CachedRunner', 'shared_runner', 'keras_model']

_RUNNERS = weakref.WeakKeyDictionary()


def shared_runner(cls, model, *args):
    """One runner (and its traced graphs) per model and settings, so making
    a new decoder for the same model does not trace again."""
    per_model = _RUNNERS.setdefault(model, {})
    key = (cls, speed.enabled()) + args
    if key not in per_model:
        per_model[key] = cls(model, *args)
    return per_model[key]


def keras_model(model):
    return model.model if hasattr(model, 'model') and hasattr(model, 'layers') \
        and isinstance(model.layers, dict) else model


def layer_blocks(model, prefix, parts):
    """[(layer per part) for block 0, 1, ...] named ``prefix % i + part``."""
    names = {layer.name for layer in model.layers}
    blocks = []
    while prefix % len(blocks) + parts[0] in names:
        blocks.append(tuple(model.get_layer(prefix % len(blocks) + part) for part in parts))
    return blocks


class CachedRunner(object):
    """What every runner shares: sizes, buffers, the slot bookkeeping and
    ``advance``. A family fills ``start``, ``admit`` and ``run_step(state,
    fed) -> logits``, and sets ``layers`` and ``vocab_size``."""

    def use_sizes_of(self, attention_layer):
        speed.reuse_freed_memory()
        self.attention = CachedAttention(attention_layer)
        # One trace for every slot, column and prompt count (shapes left
        # open): a search starts with as many columns as it may use, so
        # searches of different lengths would otherwise trace again.
        caches = self.attention.cache_specs(len(self.layers))
        slot_ids, end = tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)
        self.write = tf.function(self.write_graph,
                                 input_signature=[caches, caches, slot_ids, end])
        self.traces = {}  # step function -> the caller of its concrete function

    def call_step(self, step, *args):
        """Runs ``step``'s one trace (made on first use)."""
        if step not in self.traces:
            self.traces[step] = speed.traced_call(step.get_concrete_function())
        return self.traces[step](*args)

    @staticmethod
    def write_graph(caches, values, slot_ids, end):
        return [write_columns(c, slot_ids, end, v) for c, v in zip(caches, values)]

    @staticmethod
    def copy_graph(caches, sources, targets, in_place=True):
        """Slots ``targets`` become copies of slots ``sources`` (in place
        unless told otherwise: ``attention.update_rows``)."""
        copied = []
        for cache in caches:
            shape = tf.shape(cache)
            flat = tf.reshape(cache, [shape[0], -1])
            rows = tf.gather(flat, sources)  # read before the same buffer is written
            copied.append(tf.reshape(update_rows(flat, targets, rows, in_place), shape))
        return copied

    @staticmethod
    def zeros(n_slots, shapes):
        return [tf.zeros((n_slots,) + shape, K.floatx()) for shape in shapes]

    def new_state(self, n_slots, length, t):
        state = slots.State(n_slots, length, t)
        state.self_kv = self.zeros(n_slots, self.attention.cache_shapes(length, len(self.layers)))
        return state

    def advance(self, state, rows, tokens):
        """Feeds ``tokens[j]`` to the row that continues ``rows[j]``."""
        if not len(rows):
            state.rows = np.zeros(0, int)
            return np.zeros((0, self.vocab_size), K.floatx()), state
        slots.place_rows(state, rows)
        slots.make_room(state, state.slots)
        fed = np.zeros(state.slots, 'int32')
        fed[state.rows] = tokens
        idle = state.free_slots()
        state.start[idle] = state.t  # an idle slot attends to itself only
        state.position[idle] = 0
        logits = self.run_step(state, fed)
        state.position[state.rows] += 1
        state.t += 1
        return logits.numpy()[state.rows], state

    def cache_bytes(self, batch_size, length):
        """Bytes of keys and values for ``batch_size`` rows of ``length`` positions."""
        itemsize = np.dtype(K.floatx()).itemsize
        a = self.attention
        return int(slots.slot_bucket(batch_size) * slots.column_bucket(length) * a.heads *
                   (a.key_size + a.head_size) * itemsize * len(self.layers))
