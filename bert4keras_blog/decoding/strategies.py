"""Search strategies over a cached runner, step for step as bert4keras'
``AutoRegressiveDecoder`` does them. ``Search`` owns the loop; a strategy
says how many rows an input takes and keeps each input's hypotheses.

Public API:
    Hypotheses: one input's rows; subclasses fill advance(...) and finish().
    Beams(first_output_ids, topk), Samples(first_output_ids, n, rng, rules).
    Search(rules=(), min_ends=1, max_rows=None): the loop, .run(runner, batch,
        end_id, maxlen, minlen, first_output_ids, start) -> hypotheses per input.
    BeamSearch(topk, ...), Sampling(n, seed=None, ...).
"""
import numpy as np

from bert4keras_blog.decoding import speed
from bert4keras_blog.decoding.processors import LogitsRule, Scores

__all__ = ['Hypotheses', 'Beams', 'Samples', 'Search', 'BeamSearch', 'Sampling']


class Hypotheses(object):
    """One input's live rows. ``output_ids`` (rows, length) are the rows'
    tokens so far; ``result`` is set when the input is done."""

    result = None

    def advance(self, scores, first, count, end_id, minlen, min_ends):
        """One step: ``scores`` rows first .. first + count - 1 are this
        input's live rows. Returns (the live row each survivor extends, its
        token), both arrays; sets ``result`` when done."""
        raise NotImplementedError

    def finish(self):
        """Out of steps: sets ``result`` from the live rows."""
        raise NotImplementedError


class Beams(Hypotheses):
    """One input's beams, kept exactly as AutoRegressiveDecoder keeps them."""

    def __init__(self, first_output_ids, topk):
        self.output_ids = first_output_ids
        self.scores = np.zeros(1)
        self.topk = topk
        self.finished = []  # (ids, score) of every beam that ended, for candidates

    def advance(self, scores, first, count, end_id, minlen, min_ends):
        """Keeps the ``topk`` best extensions (found among each beam's
        ``topk`` best tokens), or sets ``result`` when the best one is
        finished."""
        candidates, logp = scores.best(first, count, self.topk)
        total = self.scores.reshape((-1, 1)) + logp
        indices = total.argpartition(-self.topk, axis=None)[-self.topk:] \
            if total.size > self.topk else np.arange(total.size)
        parents, tokens = indices // total.shape[1], candidates.reshape(-1)[indices]
        self.output_ids = np.concatenate([self.output_ids[parents], tokens[:, None]], 1)
        self.scores = np.take_along_axis(total, indices, axis=None)
        keep = np.ones(len(indices), bool)
        if self.output_ids.shape[1] >= minlen:
            is_end = self.output_ids[:, -1] == end_id
            end_counts = (self.output_ids == end_id).sum(1)
            best = self.scores.argmax()
            if is_end[best] and end_counts[best] >= min_ends:
                self.result = self.output_ids[best]
                self.finished.append((self.result, float(self.scores[best])))
                return parents[:0], tokens[:0]
            keep = ~is_end | (end_counts < min_ends)
            if not keep.all():  # finished beams leave; the beam narrows
                self.finished += [(ids, float(score)) for ids, score in
                                  zip(self.output_ids[~keep], self.scores[~keep])]
                self.output_ids, self.scores = self.output_ids[keep], self.scores[keep]
                self.topk = int(keep.sum())
        return parents[keep], tokens[keep]

    def finish(self):
        best = self.scores.argmax()
        self.result = self.output_ids[best]
        self.finished.append((self.result, float(self.scores[best])))


class Samples(Hypotheses):
    """One input's ``n`` samples: they start from one cache row, and each
    leaves when it ends."""

    def __init__(self, first_output_ids, n, rng, rules=()):
        self.output_ids = np.repeat(first_output_ids, n, axis=0)
        self.sources = np.zeros(n, int)  # the incoming row each sample reads
        self.rng, self.rules = rng, rules
        self.results = []

    def advance(self, scores, first, count, end_id, minlen, min_ends):
        probas = scores.probabilities(first, count)[self.sources]
        for rule in self.rules:
            probas = rule.probabilities(probas)
        cumulative = probas.cumsum(axis=1)
        draws = self.rng.random((len(probas), 1)) * cumulative[:, -1:]
        sample = np.minimum((cumulative < draws).sum(axis=1), probas.shape[1] - 1)
        self.output_ids = np.concatenate([self.output_ids, sample[:, None]], 1)
        keep = np.ones(len(sample), bool)
        if self.output_ids.shape[1] >= minlen:
            done = (sample == end_id) & ((self.output_ids == end_id).sum(1) >= min_ends)
            self.results.extend(self.output_ids[done])
            keep = ~done
        parents = self.sources[keep]
        self.output_ids = self.output_ids[keep]
        self.sources = np.arange(keep.sum())
        if not keep.any():
            self.result = self.results
        return parents, sample[keep]

    def finish(self):
        self.results.extend(self.output_ids)
        self.result = self.results


class Search(object):
    """The loop every strategy shares: each step scores every live row,
    lets each input's hypotheses choose their rows' continuations, feeds
    them in one cached step, and admits waiting inputs into the rows that
    ended (at most ``max_rows`` rows at once).

    A strategy sets ``rows_each`` (rows an input may take) and fills
    ``hypotheses(first_output_ids)``."""

    rows_each = 1

    def __init__(self, rules=(), min_ends=1, max_rows=None):
        self.rules, self.min_ends, self.max_rows = list(rules), min_ends, max_rows
        self.temperature = float(np.prod([r.temperature for r in self.rules])) \
            if self.rules else 1.0
        self.restricting = [r for r in self.rules if type(r).restrict is not LogitsRule.restrict]

    def hypotheses(self, first_output_ids):
        raise NotImplementedError

    def scores(self, logits, owners, groups):
        scores = Scores(logits, self.temperature)
        if not self.restricting:
            return scores
        histories, offset = [], {}
        for i in owners:
            j = offset.get(i, 0)
            offset[i] = j + 1
            histories.append((i, groups[i].output_ids[j]))
        for rule in self.restricting:
            rule.restrict(scores, histories)
        return scores

    def run(self, runner, batch, end_id, maxlen, minlen, first_output_ids, start):
        """Every input's hypotheses, done; ``start(inputs, width, rows)``
        starts the runner's search. The freed buffers go back to the system
        at the end (the search's caches are gone by then)."""
        groups = [self.hypotheses(first_output_ids) for _ in batch]
        try:
            self._steps(runner, batch, groups, end_id, maxlen, minlen,
                        first_output_ids.shape[1], start)
        finally:
            speed.release_freed_memory()
        return groups

    def _steps(self, runner, batch, groups, end_id, maxlen, minlen, first_length, start):
        rows_each = self.rows_each
        max_rows = max(self.max_rows or len(batch) * rows_each, rows_each)
        waiting = list(range(len(batch)))
        width = max(len(np.asarray(item[0]).reshape(-1)) for item in batch)
        first = max(1, max_rows // rows_each)
        owners, waiting = waiting[:first], waiting[first:]  # the input of each row
        # slots for every row it will hold: a beam's first step would grow them
        logits, state = start([batch[i] for i in owners], width,
                              min(max_rows, len(batch) * rows_each))
        while owners:
            scores = self.scores(logits, owners, groups)
            rows, tokens, new_owners = [], [], []
            first_row = 0
            for i in sorted(set(owners), key=owners.index):
                count = owners.count(i)
                group = groups[i]
                parents, next_tokens = group.advance(
                    scores, first_row, count, end_id, minlen, self.min_ends)
                if group.result is None and group.output_ids.shape[1] - first_length >= maxlen:
                    group.finish()
                if group.result is None:
                    rows += list(first_row + parents)
                    tokens += list(next_tokens)
                    new_owners += [i] * len(parents)
                first_row += count
            admitted = []
            while waiting and len(rows) + (len(admitted) + 1) * rows_each <= max_rows:
                admitted.append(waiting.pop(0))
            logits, state = runner.advance(state, rows, tokens)
            if admitted:
                logits = np.concatenate([logits, runner.admit(state, [batch[i] for i in admitted])])
            owners = new_owners + admitted


class BeamSearch(Search):
    """Beam search of ``topk`` beams (1: greedy)."""

    def __init__(self, topk, rules=(), min_ends=1, max_rows=None):
        super().__init__(rules, min_ends, max_rows)
        self.rows_each = self.topk = topk

    def hypotheses(self, first_output_ids):
        return Beams(first_output_ids, self.topk)


class Sampling(Search):
    """``n`` samples per input; rules such as ``TopK``/``TopP`` shape the
    sampled probabilities."""

    def __init__(self, n, seed=None, rules=(), min_ends=1, max_rows=None):
        super().__init__(rules, min_ends, max_rows)
        self.rows_each = self.n = n
        self.rng = np.random.default_rng(seed)

    def hypotheses(self, first_output_ids):
        return Samples(first_output_ids, self.n, self.rng, self.rules)
