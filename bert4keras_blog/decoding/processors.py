"""One step's scores and the rules that shape them, each a small class (as
Hugging Face's logits processors and warpers are).

``Scores`` holds log(softmax(logits / T) + 1e-12), bert4keras'
``AutoRegressiveDecoder`` beam score, worked out only where it is read: a
beam reads each row's best few tokens, sampling reads probabilities. The
exponentials and their sums are taken once, so a score read is the same
bits. A beam step takes no logarithm of the other tokens and finds its best
ones by ``argmax`` instead of partitioning the whole row (``docs/decoding.md``
measures it on mT5's 250k tokens).

Rules:
    Temperature(t): divides the logits (before everything else).
    Constraint(allowed): ``allowed(input_index, output_ids)`` -> the token
        ids a row may take next (an iterable or a boolean mask), or None.
    TopK(k), TopP(p): sampling among the k most probable tokens, or the
        most probable ones whose probabilities first reach p.

Public API:
    Scores(logits, temperature=1.0): .ban(row, keep), .best(first, count, k),
        .probabilities(first, count).
    LogitsRule: the base: logits(x), restrict(scores, histories),
        probabilities(p), each a no-op unless a rule fills it.
    Temperature, Constraint, TopK, TopP, rules(temperature, constraint, topk, topp).
    log_probabilities(logits, temperature=1.0).
"""
import numpy as np

__all__ = ['Scores', 'LogitsRule', 'Temperature', 'Constraint', 'TopK', 'TopP', 'rules',
           'log_probabilities']


def log_probabilities(logits, temperature=1.0):
    """log(softmax(logits / T) + 1e-12): AutoRegressiveDecoder's beam score."""
    scores = Scores(logits, temperature)
    return scores.log(scores.exps, scores.sums)


class Scores(object):
    """One step's scores of every row (see the module docstring)."""

    BANNED = -1.0  # below any exponential: a token a constraint rules out

    def __init__(self, logits, temperature=1.0):
        x = np.asarray(logits) / temperature
        x -= x.max(axis=-1, keepdims=True)
        self.exps = np.exp(x, out=x)
        self.sums = self.exps.sum(axis=-1, keepdims=True)
        self.banned = False

    def ban(self, row, keep):
        """Row ``row`` may only continue with the tokens where ``keep``."""
        self.exps[row, ~keep] = self.BANNED
        self.banned = True

    def log(self, exps, sums):
        with np.errstate(invalid='ignore'):
            logp = np.log(exps / sums + 1e-12)
        if self.banned:
            logp[exps == self.BANNED] = -np.inf
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
                exps[rows, tokens[:, j]] = 2 * self.BANNED
            exps[rows[:, None], tokens] = found
        chosen = np.take_along_axis(exps, tokens, axis=1)
        return tokens, self.log(chosen, self.sums[first:first + count])


class LogitsRule(object):
    """A rule on a step's scores; each hook is a no-op unless filled."""

    temperature = 1.0

    def restrict(self, scores, histories):
        """Bans tokens on ``scores``; ``histories[row] = (input index, output ids)``."""

    def probabilities(self, probas):
        """A sampled row's probabilities, (rows, vocab), changed in place or returned."""
        return probas


class Temperature(LogitsRule):
    def __init__(self, temperature):
        self.temperature = temperature


class Constraint(LogitsRule):
    def __init__(self, allowed):
        self.allowed = allowed

    def restrict(self, scores, histories):
        vocab = scores.exps.shape[1]
        for row, (i, output_ids) in enumerate(histories):
            allowed = self.allowed(i, output_ids)
            if allowed is None:
                continue
            allowed = np.asarray(allowed)
            scores.ban(row, allowed if allowed.dtype == bool else np.isin(
                np.arange(vocab), allowed))


class TopK(LogitsRule):
    def __init__(self, k):
        self.k = k

    def probabilities(self, probas):
        cut = np.sort(probas, axis=1)[:, -self.k][:, None]
        probas[probas < cut] = 0
        return probas


class TopP(LogitsRule):
    def __init__(self, p):
        self.p = p

    def probabilities(self, probas):
        probas /= probas.sum(axis=1, keepdims=True)
        # The nucleus: the most probable tokens up to the first whose
        # cumulative probability reaches p. Sorting the values and cutting
        # at the last one kept is faster than an argsort.
        descending = np.sort(probas, axis=1)[:, ::-1]
        kept = np.minimum((descending.cumsum(axis=1) < self.p).sum(axis=1) + 1,
                          probas.shape[1])
        cut = descending[np.arange(len(probas)), kept - 1]
        probas[probas < cut[:, None]] = 0
        return probas


def rules(temperature=1, constraint=None, topk=None, topp=None):
    """The rules of bert4keras' decoder arguments, in the order they apply."""
    found = [Temperature(temperature)]
    if constraint is not None:
        found.append(Constraint(constraint))
    if topk is not None:
        found.append(TopK(topk))
    if topp is not None:
        found.append(TopP(topp))
    return found
