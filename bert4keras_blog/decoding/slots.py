"""Slot and column bookkeeping of one search's key/value caches.

Every slot's content ends at column ``t``, so prompts of different lengths
sit side by side (left-padded) and a slot freed by a finished row can take a
new prompt between two steps. A row that branches (a beam with several
children) is copied to a free slot; other rows keep their slot, so greedy
decoding and sampling never move the cache.

Public API:
    State(slots, length, t): one search's caches and bookkeeping.
    slot_bucket(n), column_bucket(n), first_length(used, new_tokens).
    packed_grid(lengths, width): where packed prompts sit once left-padded.
    make_room(state, slots), place_rows(state, rows), resized(caches, slots,
        offset, length).
    COLUMNS, PLANNED_STEPS.
"""
import numpy as np

from bert4keras_blog.compat import tf

__all__ = ['State', 'slot_bucket', 'column_bucket', 'first_length', 'packed_grid',
           'make_room', 'place_rows', 'resized', 'COLUMNS', 'PLANNED_STEPS']

COLUMNS = 16  # column counts are rounded up to a multiple of this
PLANNED_STEPS = 64  # columns a search reserves at its start, at most, for its steps


def slot_bucket(n):
    """Slot counts: powers of two up to 16, then multiples of 16."""
    return 1 << max(n - 1, 0).bit_length() if n <= 16 else -(-n // 16) * 16


def column_bucket(n):
    return -(-n // COLUMNS) * COLUMNS


def first_length(used, new_tokens):
    """Columns a search starts with: ``used`` now and one per token it may
    add, up to ``PLANNED_STEPS`` (the buffers grow past that). Every step
    attends over all the columns, so fewer than the search needs would make
    it grow (a copy) and double, and many more would be read at every step
    of a search that ends early."""
    return column_bucket(used + min(max(new_tokens, 1), PLANNED_STEPS))


def packed_grid(lengths, width):
    """(b, width): the index of each prompt's tokens in the packed sequence
    of all prompts, left-padded (padding: the total token count)."""
    total = int(np.sum(lengths))
    grid = np.full((len(lengths), width), total, 'int32')
    offset = 0
    for row, length in enumerate(lengths):
        grid[row, width - length:] = np.arange(offset, offset + length)
        offset += length
    return grid


class State(object):
    """One search's caches and bookkeeping.

    ``self_kv``: per layer (keys, values) tensors (slots, heads, length, size);
    ``extra``: per-slot tensors a model keeps besides (T5: cross keys/values
    and the encoder mask); ``extra_of``: the admitted input whose ``extra``
    each slot holds (-1: none), so a copy between two slots of one input
    can leave ``extra`` alone; ``rows``: the slot of each row, in order;
    ``start``: each slot's first live column; ``t``: the next column.
    """

    def __init__(self, slots, length, t):
        self.slots, self.length, self.t = slots, length, t
        self.reserve = t  # columns kept before t for prompts admitted later
        self.rows = np.zeros(0, int)
        self.start = np.full(slots, t, 'int32')
        self.position = np.zeros(slots, 'int32')  # next position id (BERT)
        self.segment = np.zeros(slots, 'int32')  # next segment id (BERT)
        self.self_kv, self.extra = [], []
        self.extra_of = np.full(slots, -1)
        self.copies = None  # (sources, targets) of rows that branched

    def take_copies(self):
        """The pending row copies, cleared: the step's graph makes them."""
        copies, self.copies = self.copies, None
        return copies or (np.zeros(0, 'int32'), np.zeros(0, 'int32'))

    def extra_copies(self, sources, targets):
        """Of the copies (sources, targets), those between slots whose
        ``extra`` differ (their inputs); ``extra_of`` is updated for them."""
        moved = self.extra_of[sources] != self.extra_of[targets]
        self.extra_of[targets[moved]] = self.extra_of[sources[moved]]
        return sources[moved], targets[moved]

    def free_slots(self):
        return np.setdiff1d(np.arange(self.slots), self.rows)


def resized(caches, slots, offset, length):
    """New tensors: ``slots`` slots, columns from ``offset`` on, ``length`` long."""
    out = []
    for cache in caches:
        part = cache[:, :, offset:offset + length]
        out.append(tf.pad(part, [[0, slots - part.shape[0]], [0, 0],
                                 [0, length - part.shape[2]], [0, 0]]))
    return out


def make_room(state, slots):
    """At least ``slots`` slots and a free column at ``t``. Columns no live
    slot reads are dropped from the left; the buffers grow when less than
    half of them would be free."""
    grow_slots, shift = slots > state.slots, state.t >= state.length
    if not grow_slots and not shift:
        return
    offset = 0
    if shift:
        live = state.start[state.rows]
        offset = min(int(live.min()) if len(live) else state.t, state.t - state.reserve)
    used = state.t - offset + 1
    length = state.length if 2 * used <= state.length else column_bucket(2 * used)
    slots = slot_bucket(slots) if grow_slots else state.slots
    state.self_kv = resized(state.self_kv, slots, offset, length)
    state.extra = resized(state.extra, slots, 0, state.extra[0].shape[2]) \
        if state.extra else []
    pad = np.zeros(slots - state.slots, 'int32')
    state.start = np.maximum(np.concatenate([state.start - offset, pad]), 0)
    state.position = np.concatenate([state.position, pad])
    state.segment = np.concatenate([state.segment, pad])
    state.extra_of = np.concatenate([state.extra_of, pad - 1])
    state.t -= offset
    state.slots, state.length = slots, length


def place_rows(state, rows):
    """Slots for new rows continuing ``rows``: the first child of a row
    keeps its slot, later children get a copy in a free slot."""
    parents = state.rows[np.asarray(rows, int)]
    targets = parents.copy()
    seen = set()
    branch = []
    for j, slot in enumerate(parents):
        if slot in seen:
            branch.append(j)
        seen.add(slot)
    if branch:
        make_room(state, len(seen) + len(branch))
        free = np.setdiff1d(np.arange(state.slots), parents)[:len(branch)]
        targets[branch] = free
        sources = parents[branch].astype('int32')
        state.copies = sources, free.astype('int32')  # done by the next step's graph
        for array in (state.start, state.position, state.segment):
            array[free] = array[sources]
    state.rows = targets
