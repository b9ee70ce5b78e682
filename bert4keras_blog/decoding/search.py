"""Beam search, greedy and sampling over a cached model, step for step as
bert4keras' ``AutoRegressiveDecoder`` does them.

Public API:
    UniLMDecoder, LMDecoder, T5Decoder, log_probabilities
"""
import numpy as np

from bert4keras_blog.decoding.cache import BertCache, T5Cache, shared_cache

__all__ = ['UniLMDecoder', 'LMDecoder', 'T5Decoder', 'log_probabilities']


def log_probabilities(logits, temperature=1.0):
    """log(softmax(logits / T) + 1e-12): AutoRegressiveDecoder's beam score."""
    x = logits / temperature
    x = x - x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=-1, keepdims=True)
    return np.log(p + 1e-12)


class _Beams(object):
    """One input's beams, kept exactly as AutoRegressiveDecoder keeps them."""

    def __init__(self, first_output_ids, topk):
        self.output_ids = first_output_ids
        self.scores = np.zeros(1)
        self.topk = topk
        self.result = None
        self.finished = []  # (ids, score) of every beam that ended, for candidates

    def advance(self, scores, end_id, minlen, min_ends):
        """One step: ``scores`` (live beams, vocab) of the next token. Keeps
        the ``topk`` best extensions, or sets ``result`` when the best one is
        finished. Returns (the live beam each survivor extends, its token)."""
        total = self.scores.reshape((-1, 1)) + scores
        indices = total.argpartition(-self.topk, axis=None)[-self.topk:]
        parents, tokens = indices // total.shape[1], indices % total.shape[1]
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

    def _start(self, batch):
        return self.cache.start(batch)

    def cache_bytes(self, batch_size, length):
        """Memory of the key/value cache for ``batch_size`` rows of ``length`` tokens."""
        return self.cache.cache_bytes(batch_size, length)

    def _scores(self, logits, temperature, owners, beams, constraint):
        scores = log_probabilities(logits, temperature)
        if constraint is not None:
            offset = {}
            for row, i in enumerate(owners):
                j = offset.get(i, 0)
                offset[i] = j + 1
                allowed = constraint(i, beams[i].output_ids[j])
                if allowed is None:
                    continue
                allowed = np.asarray(allowed)
                keep = allowed if allowed.dtype == bool else np.isin(
                    np.arange(scores.shape[1]), allowed)
                scores[row, ~keep] = -np.inf
        return scores

    def batch_beam_search(self, batch, topk, temperature=1, min_ends=1, constraint=None,
                          candidates=False):
        """Beam search for several inputs at once.

        Args:
            batch: list of per-input ``inputs`` (see the module docstring).
            topk: int. Beam size; 1 is greedy.
            temperature: float. Divides the logits. Defaults to 1.
            min_ends: int. A beam is finished after this many end tokens.
            constraint: callable or None. See the module docstring.
            candidates: bool. Also return the beams that finished on the way.

        Returns:
            list of 1-D int arrays, the best sequence of each input (with
            the start token first where the model has one); with
            ``candidates``, for each input a list of (ids, log-probability):
            that best sequence first, then the beams that ended before it,
            most probable first.
        """
        beams = [_Beams(self.first_output_ids, topk) for _ in batch]
        logits, state = self._start(batch)
        owners = list(range(len(batch)))  # which input each cache row serves
        for step in range(self.maxlen):
            scores = self._scores(logits, temperature, owners, beams, constraint)
            rows, tokens, new_owners = [], [], []
            first_row = 0
            for i in sorted(set(owners), key=owners.index):
                count = len(beams[i].scores)
                parents, next_tokens = beams[i].advance(
                    scores[first_row:first_row + count], self.end_id, self.minlen, min_ends)
                rows += list(first_row + parents)
                tokens += list(next_tokens)
                new_owners += [i] * len(parents)
                first_row += count
            owners = new_owners
            if not owners or step == self.maxlen - 1:
                break
            logits, state = self.cache.advance(state, rows, tokens)
        for b in beams:
            if b.result is None:
                best = b.scores.argmax()
                b.result = b.output_ids[best]
                b.finished.append((b.result, float(b.scores[best])))
        if candidates:
            return [b.finished[-1:] + sorted(b.finished[:-1], key=lambda c: -c[1])
                    for b in beams]
        return [b.result for b in beams]

    def beam_search(self, inputs, topk, temperature=1, min_ends=1, constraint=None):
        """``AutoRegressiveDecoder.beam_search`` for one input; returns its ids."""
        return self.batch_beam_search([inputs], topk, temperature, min_ends, constraint)[0]

    def batch_greedy(self, batch, temperature=1, min_ends=1, constraint=None):
        """Greedy decoding (beam size 1) of several inputs."""
        return self.batch_beam_search(batch, 1, temperature, min_ends, constraint)

    def greedy(self, inputs, temperature=1, min_ends=1, constraint=None):
        """Greedy decoding of one input."""
        return self.batch_greedy([inputs], temperature, min_ends, constraint)[0]

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
        rng = np.random.default_rng(seed)
        logits, state = self._start([inputs])
        cache_rows = np.zeros(n, int)  # the cache row each sample continues from
        logits = logits[cache_rows]
        beams = [_Beams(np.repeat(self.first_output_ids, n, axis=0), n)]
        results = []
        for step in range(self.maxlen):
            output_ids = beams[0].output_ids
            scores = self._scores(logits, temperature, [0] * len(output_ids), beams, constraint)
            probas = np.exp(scores)
            probas[~np.isfinite(scores)] = 0
            if topk is not None:
                cut = np.sort(probas, axis=1)[:, -topk][:, None]
                probas[probas < cut] = 0
            if topp is not None:
                order = np.argsort(-probas, axis=1)
                sorted_p = np.take_along_axis(probas, order, axis=1)
                sorted_p /= sorted_p.sum(axis=1, keepdims=True)
                drop = np.roll(np.cumsum(sorted_p, axis=1) >= topp, 1, axis=1)
                drop[:, 0] = False
                np.put_along_axis(probas, order, np.where(drop, 0, sorted_p), axis=1)
            cumulative = probas.cumsum(axis=1)
            draws = rng.random((len(probas), 1)) * cumulative[:, -1:]
            sample = np.minimum((cumulative < draws).sum(axis=1), probas.shape[1] - 1)
            output_ids = np.concatenate([output_ids, sample[:, None]], 1)
            keep = np.ones(len(output_ids), bool)
            if output_ids.shape[1] >= self.minlen:
                done = (output_ids[:, -1] == self.end_id) & \
                    ((output_ids == self.end_id).sum(1) >= min_ends)
                results.extend(output_ids[done])
                keep = ~done
            beams[0].output_ids = output_ids = output_ids[keep]
            if not len(output_ids) or step == self.maxlen - 1:
                break
            logits, state = self.cache.advance(state, cache_rows[keep], sample[keep])
            cache_rows = np.arange(len(output_ids))
        results.extend(output_ids)
        return results


class UniLMDecoder(_CachedDecoder):
    """Cached decoding for ``application='unilm'`` models (seq2seq on BERT).

    Args:
        model: the Keras model (or bert4keras object) from
            ``build_transformer_model(..., application='unilm', with_mlm=True)``.
        end_id: int. The end token, usually ``tokenizer._token_end_id``.
        maxlen: int. At most this many new tokens.
        minlen: int. Ends before this length do not count. Defaults to 1.

    ``inputs = [token_ids, segment_ids]`` of the source, as in bert4keras'
    seq2seq examples; the first token is predicted at the source's last
    position, later tokens carry segment 1.
    """

    def __init__(self, model, end_id, maxlen, minlen=1):
        super().__init__(shared_cache(BertCache, model, False), end_id, maxlen, minlen)


class LMDecoder(_CachedDecoder):
    """Cached decoding for ``application='lm'`` models (GPT-style on BERT).

    Args: as ``UniLMDecoder``. ``inputs = [token_ids]`` of the prompt.
    """

    def __init__(self, model, end_id, maxlen, minlen=1):
        super().__init__(shared_cache(BertCache, model, True), end_id, maxlen, minlen)


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

    def _start(self, batch):
        return self.cache.start(batch, self.start_id)
