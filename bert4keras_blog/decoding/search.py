"""Beam search, greedy and sampling over a cached model, step for step as
bert4keras' ``AutoRegressiveDecoder`` does them.

Public API:
    UniLMDecoder, LMDecoder, T5Decoder, log_probabilities, step_differences
"""
import numpy as np

from bert4keras_blog.decoding.cache import BertCache, T5Cache, release_freed_memory, shared_cache

__all__ = ['UniLMDecoder', 'LMDecoder', 'T5Decoder', 'log_probabilities', 'step_differences']


def log_probabilities(logits, temperature=1.0):
    """log(softmax(logits / T) + 1e-12): AutoRegressiveDecoder's beam score."""
    scores = _Scores(logits, temperature)
    return scores._log(scores.exps, scores.sums)


class _Scores(object):
    """One step's scores, log(softmax(logits / T) + 1e-12), worked out
    only where they are read: a beam reads each row's best few tokens,
    sampling reads probabilities. The exponentials and their sums are
    taken once, as ``log_probabilities`` takes them, so a score read is
    the same bits. A beam step takes no logarithm of the other tokens and
    finds its best ones by ``argmax`` instead of partitioning the whole
    row: with mT5's 250k tokens those two were most of a batched step's
    Python time (a batch-16 beam search went from 10.1 s to 5.3 s)."""

    _BANNED = -1.0  # below any exponential: a token the constraint rules out

    def __init__(self, logits, temperature=1.0):
        x = np.asarray(logits) / temperature
        x -= x.max(axis=-1, keepdims=True)
        self.exps = np.exp(x, out=x)
        self.sums = self.exps.sum(axis=-1, keepdims=True)
        self.banned = False

    def ban(self, row, keep):
        """Row ``row`` may only continue with the tokens where ``keep``."""
        self.exps[row, ~keep] = self._BANNED
        self.banned = True

    def _log(self, exps, sums):
        with np.errstate(invalid='ignore'):
            logp = np.log(exps / sums + 1e-12)
        if self.banned:
            logp[exps == self._BANNED] = -np.inf
        return logp

    def probabilities(self, first, count):
        """softmax(logits / T) of rows first .. first + count - 1, 0 where
        ruled out."""
        part = slice(first, first + count)
        probas = self.exps[part] / self.sums[part]
        if self.banned:
            probas[probas < 0] = 0
        return probas

    def best(self, first, count, k):
        """Each of those rows' ``k`` best tokens: (tokens, scores), both
        (count, k), a row's tokens in no particular order."""
        exps = self.exps[first:first + count]
        k = min(k, exps.shape[1])
        if k > 8:
            tokens = np.argpartition(exps, -k, axis=1)[:, -k:]
        else:  # k passes of argmax, each hiding what it found, then restored
            tokens = np.empty((count, k), int)
            rows = np.arange(count)
            found = np.empty((count, k), exps.dtype)
            for j in range(k):
                tokens[:, j] = exps.argmax(axis=1)
                found[:, j] = exps[rows, tokens[:, j]]
                exps[rows, tokens[:, j]] = 2 * self._BANNED
            exps[rows[:, None], tokens] = found
        chosen = np.take_along_axis(exps, tokens, axis=1)
        return tokens, self._log(chosen, self.sums[first:first + count])


class _Beams(object):
    """One input's beams, kept exactly as AutoRegressiveDecoder keeps them."""

    def __init__(self, first_output_ids, topk):
        self.output_ids = first_output_ids
        self.scores = np.zeros(1)
        self.topk = topk
        self.result = None
        self.finished = []  # (ids, score) of every beam that ended, for candidates

    def advance(self, scores, first, count, end_id, minlen, min_ends):
        """One step: ``scores`` (``_Scores``) rows first .. first + count - 1
        are this input's live beams. Keeps the ``topk`` best extensions
        (found among each beam's ``topk`` best tokens), or sets ``result``
        when the best one is finished. Returns (the live beam each survivor
        extends, its token)."""
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
        """Out of steps: the best live beam is the result."""
        best = self.scores.argmax()
        self.result = self.output_ids[best]
        self.finished.append((self.result, float(self.scores[best])))


class _Samples(object):
    """One input's ``n`` samples: they start from one cache row, and each
    leaves when it ends."""

    def __init__(self, first_output_ids, n, rng, topk, topp):
        self.output_ids = np.repeat(first_output_ids, n, axis=0)
        self.sources = np.zeros(n, int)  # the incoming row each sample reads
        self.rng, self.topk, self.topp = rng, topk, topp
        self.results = []
        self.result = None

    def advance(self, scores, first, count, end_id, minlen, min_ends):
        probas = scores.probabilities(first, count)[self.sources]
        if self.topk is not None:
            cut = np.sort(probas, axis=1)[:, -self.topk][:, None]
            probas[probas < cut] = 0
        if self.topp is not None:
            probas /= probas.sum(axis=1, keepdims=True)
            # The nucleus: the most probable tokens up to the first whose
            # cumulative probability reaches topp. Sorting the values and
            # cutting at the last one kept is 5x faster than an argsort.
            descending = np.sort(probas, axis=1)[:, ::-1]
            kept = np.minimum((descending.cumsum(axis=1) < self.topp).sum(axis=1) + 1,
                              probas.shape[1])
            cut = descending[np.arange(len(probas)), kept - 1]
            probas[probas < cut[:, None]] = 0
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


class _CachedDecoder(object):
    """Shared search loop; subclasses choose the cached model."""

    start_id = None

    def __init__(self, cache, end_id, maxlen, minlen=1, start_id=None):
        self.cache = cache
        self.end_id, self.maxlen, self.minlen = end_id, maxlen, minlen
        if start_id is not None:
            self.start_id = start_id
        self.first_output_ids = np.empty((1, 0), dtype=int) if self.start_id is None \
            else np.array([[self.start_id]])

    def _start(self, batch, width=None):
        return self.cache.start(batch, width=width, new_tokens=self.maxlen)

    def cache_bytes(self, batch_size, length):
        """Memory of the key/value cache for ``batch_size`` rows of ``length`` tokens."""
        return self.cache.cache_bytes(batch_size, length)

    def _scores(self, logits, temperature, owners, groups, constraint):
        scores = _Scores(logits, temperature)
        if constraint is not None:
            offset = {}
            for row, i in enumerate(owners):
                j = offset.get(i, 0)
                offset[i] = j + 1
                allowed = constraint(i, groups[i].output_ids[j])
                if allowed is None:
                    continue
                allowed = np.asarray(allowed)
                scores.ban(row, allowed if allowed.dtype == bool else np.isin(
                    np.arange(logits.shape[1]), allowed))
        return scores

    def _run(self, *args):
        """``_steps``, then the freed buffers go back to the system (the
        search's caches are gone once ``_steps`` returns)."""
        try:
            self._steps(*args)
        finally:
            release_freed_memory()

    def _steps(self, batch, groups, rows_each, temperature, min_ends, constraint, max_rows):
        """The search loop shared by beam search and sampling: each step
        scores every live row, lets each input's group choose its rows'
        continuations, feeds them in one cached step, and admits waiting
        inputs into the rows that ended (at most ``max_rows`` rows at once)."""
        max_rows = max(max_rows or len(batch) * rows_each, rows_each)
        waiting = list(range(len(batch)))
        width = max(len(np.asarray(item[0]).reshape(-1)) for item in batch)
        first = max(1, max_rows // rows_each)
        owners, waiting = waiting[:first], waiting[first:]  # the input of each row
        logits, state = self._start([batch[i] for i in owners], width)
        first_length = self.first_output_ids.shape[1]
        while owners:
            scores = self._scores(logits, temperature, owners, groups, constraint)
            rows, tokens, new_owners = [], [], []
            first_row = 0
            for i in sorted(set(owners), key=owners.index):
                count = owners.count(i)
                group = groups[i]
                parents, next_tokens = group.advance(
                    scores, first_row, count, self.end_id, self.minlen, min_ends)
                if group.result is None and \
                        group.output_ids.shape[1] - first_length >= self.maxlen:
                    group.finish()
                if group.result is None:
                    rows += list(first_row + parents)
                    tokens += list(next_tokens)
                    new_owners += [i] * len(parents)
                first_row += count
            admitted = []
            while waiting and len(rows) + (len(admitted) + 1) * rows_each <= max_rows:
                admitted.append(waiting.pop(0))
            logits, state = self.cache.advance(state, rows, tokens)
            if admitted:
                logits = np.concatenate(
                    [logits, self.cache.admit(state, [batch[i] for i in admitted])])
            owners = new_owners + admitted

    def batch_beam_search(self, batch, topk, temperature=1, min_ends=1, constraint=None,
                          candidates=False, max_rows=None):
        """Beam search for several inputs at once.

        Args:
            batch: list of per-input ``inputs`` (see the module docstring).
            topk: int. Beam size; 1 is greedy.
            temperature: float. Divides the logits. Defaults to 1.
            min_ends: int. A beam is finished after this many end tokens.
            constraint: callable or None. See the module docstring.
            candidates: bool. Also return the beams that finished on the way.
            max_rows: int or None. At most this many cache rows (beams of all
                inputs together) in one step; inputs wait and take the rows
                of those that finish. None: all inputs at once.

        Returns:
            list of 1-D int arrays, the best sequence of each input (with
            the start token first where the model has one); with
            ``candidates``, for each input a list of (ids, log-probability):
            that best sequence first, then the beams that ended before it,
            most probable first.
        """
        beams = [_Beams(self.first_output_ids, topk) for _ in batch]
        self._run(batch, beams, topk, temperature, min_ends, constraint, max_rows)
        if candidates:
            return [b.finished[-1:] + sorted(b.finished[:-1], key=lambda c: -c[1])
                    for b in beams]
        return [b.result for b in beams]

    def beam_search(self, inputs, topk, temperature=1, min_ends=1, constraint=None):
        """``AutoRegressiveDecoder.beam_search`` for one input; returns its ids."""
        return self.batch_beam_search([inputs], topk, temperature, min_ends, constraint)[0]

    def batch_greedy(self, batch, temperature=1, min_ends=1, constraint=None, max_rows=None):
        """Greedy decoding (beam size 1) of several inputs."""
        return self.batch_beam_search(batch, 1, temperature, min_ends, constraint,
                                      max_rows=max_rows)

    def greedy(self, inputs, temperature=1, min_ends=1, constraint=None):
        """Greedy decoding of one input."""
        return self.batch_greedy([inputs], temperature, min_ends, constraint)[0]

    def batch_random_sample(self, batch, n=1, topk=None, topp=None, temperature=1,
                            min_ends=1, seed=None, constraint=None, max_rows=None):
        """Samples ``n`` sequences for each input of ``batch``; the other
        arguments as ``random_sample`` and ``batch_beam_search``. Returns
        one list of ``n`` arrays per input."""
        rng = np.random.default_rng(seed)
        samples = [_Samples(self.first_output_ids, n, rng, topk, topp) for _ in batch]
        self._run(batch, samples, n, temperature, min_ends, constraint, max_rows)
        return [s.result for s in samples]

    def random_sample(self, inputs, n, topk=None, topp=None, temperature=1, min_ends=1,
                      seed=None, constraint=None):
        """Samples ``n`` sequences for one input.

        Args:
            inputs: the input (see the module docstring).
            n: int. How many samples.
            topk: int or None. Sample among the ``topk`` most probable tokens.
            topp: float or None. Sample among the most probable tokens whose
                probabilities first reach ``topp`` in total.
            temperature: float. Defaults to 1.
            min_ends: int. Defaults to 1.
            seed: int or None. Same seed, same samples.
            constraint: callable or None.

        Returns:
            list of ``n`` 1-D int arrays, in the order they finished.
        """
        return self.batch_random_sample([inputs], n, topk, topp, temperature, min_ends, seed,
                                        constraint)[0]


def step_differences(decoder, other, inputs, steps):
    """The largest |logit difference| at each of ``steps`` steps between
    two decoders of one model (float32 and bfloat16, say), both fed
    ``decoder``'s greedy tokens after ``inputs``. The prompt's own logits
    are left out: both read it with the model's layers."""
    (mine, state), (theirs, other_state) = decoder._start([inputs]), other._start([inputs])
    gaps = []
    for _ in range(steps):
        token = int(mine[0].argmax())
        mine, state = decoder.cache.advance(state, [0], [token])
        theirs, other_state = other.cache.advance(other_state, [0], [token])
        gaps.append(float(np.abs(mine - theirs).max()))
    return gaps


class UniLMDecoder(_CachedDecoder):
    """Cached decoding for ``application='unilm'`` models (seq2seq on BERT).

    Args:
        model: the Keras model (or bert4keras object) from
            ``build_transformer_model(..., application='unilm', with_mlm=True)``.
        end_id: int. The end token, usually ``tokenizer._token_end_id``.
        maxlen: int. At most this many new tokens.
        minlen: int. Ends before this length do not count. Defaults to 1.
        precision: 'float32' (default: the same ids as bert4keras' decoder)
            or 'bfloat16': the steps' dense products in bfloat16, on copies
            of the kernels (about half the weights' memory); faster for
            batches, within rounding of float32 (figures in docs/decoding.md).

    ``inputs = [token_ids, segment_ids]`` of the source, as in bert4keras'
    seq2seq examples; the first token is predicted at the source's last
    position, later tokens carry segment 1.
    """

    def __init__(self, model, end_id, maxlen, minlen=1, precision='float32'):
        super().__init__(shared_cache(BertCache, model, False, precision), end_id, maxlen,
                         minlen)


class LMDecoder(_CachedDecoder):
    """Cached decoding for ``application='lm'`` models (GPT-style on BERT).

    Args: as ``UniLMDecoder``. ``inputs = [token_ids]`` of the prompt.
    """

    def __init__(self, model, end_id, maxlen, minlen=1, precision='float32'):
        super().__init__(shared_cache(BertCache, model, True, precision), end_id, maxlen,
                         minlen)


class T5Decoder(_CachedDecoder):
    """Cached decoding for T5 v1.1 / mT5 (``return_keras_model=False``).

    Args:
        model: the bert4keras T5 object.
        end_id: int. ``</s>`` is 1 in mT5's vocabulary.
        maxlen: int. At most this many decoder steps.
        minlen: int. Defaults to 1.
        start_id: int. The decoder's first input. Defaults to 0 (``<pad>``).

    ``inputs = [encoder_token_ids]``; results start with ``start_id``, as
    ``AutoRegressiveDecoder``'s do.
    """

    start_id = 0

    def __init__(self, model, end_id, maxlen, minlen=1, start_id=0):
        super().__init__(shared_cache(T5Cache, model), end_id, maxlen, minlen,
                         start_id)

    def _start(self, batch, width=None):
        return self.cache.start(batch, self.start_id, width, self.maxlen)
