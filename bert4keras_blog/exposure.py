"""Exposure bias, measured: seq2seq tasks with long outputs and the accuracy
of decoded outputs position by position.

Teacher forcing trains position t on the true prefix; at decoding time the
prefix is the model's own. Where an early mistake changes what follows, the
damage grows along the output, so the signature of exposure bias is greedy
accuracy falling with the output position, and a gap between greedy and
beam decoding. Post 4 compares teacher forcing with TeaForN on such a task.

``SortingTask``: the source is a string of random digits, the target the same
digits sorted. An output that repeats or drops one digit shifts every later
digit, so mistakes compound; its length is set (tens of tokens by default)
and examples are unlimited. ``MathTask`` wraps post 3's word problems (the
synthetic ones or ape210k) in the same interface.

Public API:
    digit_vocabulary(dict_path) -> (token_dict, keep_tokens): the specials and
        the ten digits of a BERT vocab.txt, and the rows to keep.
    SortingTask(token_dict, length=24, valid=200, test=400, seed=0)
    MathTask(train, valid, test, codec, vocab_size)
        .train_batch(count, rng) -> (token_ids, segment_ids), padded arrays
        .valid, .test: lists of (source ids, target ids without [SEP])
        .end_id, .max_target, .constraint (None or a decoder constraint)
    decode(decoder, pairs, topk, constraint=None, batch_size=64) -> list of ids
    score(outputs, targets, end_id) -> dict: exact, exact_by_example, token_accuracy,
        by_position (share right at each target position)

Example:
```python
import numpy as np
from bert4keras_blog.checkpoints import tiny
from bert4keras_blog.exposure import SortingTask, digit_vocabulary, score
token_dict, keep_tokens = digit_vocabulary(tiny('bert')['dict'])
task = SortingTask(token_dict, length=6, valid=2, test=2)
token_ids, segment_ids = task.train_batch(3, np.random.default_rng(0))
assert token_ids.shape == (3, 1 + 6 + 1 + 6 + 1)
source, target = task.test[0]
print(score([target + [task.end_id]], [target], task.end_id)['exact'])   # 1.0
```
"""
import numpy as np

from bert4keras_blog import compat  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.snippets import sequence_padding
from bert4keras.tokenizers import load_vocab
from bert4keras_blog.errors import BlogError

__all__ = ['digit_vocabulary', 'SortingTask', 'MathTask', 'decode', 'score']

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
DIGITS = [str(d) for d in range(10)]


def digit_vocabulary(dict_path):
    """A ten-digit vocabulary cut from a BERT ``vocab.txt``.

    Raises:
        BlogError: a special token or a digit is not in the file.
    """
    vocab = load_vocab(dict_path)
    missing = [t for t in SPECIALS + DIGITS if t not in vocab]
    if missing:
        raise BlogError('%s: lacks %s, which the sorting task needs'
                        % (dict_path, ', '.join(missing)))
    tokens = SPECIALS + DIGITS
    return {t: i for i, t in enumerate(tokens)}, [vocab[t] for t in tokens]


class SortingTask(object):
    """Sort ``length`` random digits. Validation and test strings come from
    their own seeds, so none is a training example by construction (with
    10**length strings, a repeat is vanishingly rare anyway)."""

    def __init__(self, token_dict, length=24, valid=200, test=400, seed=0):
        self.length = length
        self.start_id, self.end_id = token_dict['[CLS]'], token_dict['[SEP]']
        self.digit_ids = np.array([token_dict[d] for d in DIGITS])
        self.max_target = length
        self.constraint = None
        self.valid = self._pairs(valid, np.random.default_rng([seed, 1]))
        self.test = self._pairs(test, np.random.default_rng([seed, 2]))

    def _digits(self, count, rng):
        digits = rng.integers(0, 10, (count, self.length))
        return self.digit_ids[digits], self.digit_ids[np.sort(digits, axis=1)]

    def _pairs(self, count, rng):
        sources, targets = self._digits(count, rng)
        return [([self.start_id] + s.tolist() + [self.end_id], t.tolist())
                for s, t in zip(sources, targets)]

    def train_batch(self, count, rng):
        sources, targets = self._digits(count, rng)
        column = np.full((count, 1), 0)
        token_ids = np.concatenate([column + self.start_id, sources, column + self.end_id,
                                    targets, column + self.end_id], axis=1)
        segment_ids = np.zeros_like(token_ids)
        segment_ids[:, self.length + 2:] = 1
        return token_ids, segment_ids


class MathTask(object):
    """Post 3's problems (records with ``original_text`` and ``equation``)
    through a ``ProblemCodec``; the target is the encoded expression."""

    def __init__(self, train, valid, test, codec, vocab_size):
        self.train, self.codec, self.end_id = train, codec, codec.end_id
        self.valid, self.test = self._pairs(valid), self._pairs(test)
        # Room beyond the longest known target, so a decoder that overruns shows as wrong.
        self.max_target = max(len(t) for _, t in self.valid + self.test) + 8
        self._mask = codec.allowed_mask(vocab_size)

    def _pairs(self, records):
        pairs = []
        for r in records:
            source, _, numbers = self.codec.encode_problem(r['original_text'])
            pairs.append((source, self.codec.encode_expression(r['equation'], numbers)[:-1]))
        return pairs

    def constraint(self, index, output_ids):
        return self._mask  # the expression's characters, slots and [SEP]

    def train_batch(self, count, rng):
        chosen = rng.integers(0, len(self.train), count)
        encoded = [self.codec.encode(self.train[i]['original_text'], self.train[i]['equation'])
                   for i in chosen]
        return (sequence_padding([e[0] for e in encoded]),
                sequence_padding([e[1] for e in encoded]))


def decode(decoder, pairs, topk, constraint=None, batch_size=64):
    """Decodes each source of ``pairs`` with beam size ``topk`` (1 = greedy)."""
    outputs = []
    for start in range(0, len(pairs), batch_size):
        batch = [[np.array(source), np.zeros(len(source), int)]
                 for source, _ in pairs[start:start + batch_size]]
        outputs += decoder.batch_beam_search(batch, topk, constraint=constraint)
    return outputs


def _until_end(ids, end_id):
    ids = [int(i) for i in ids]
    return ids[:ids.index(end_id)] if end_id in ids else ids


def score(outputs, targets, end_id):
    """Exact match (overall and ``exact_by_example``, 0 or 1 per target),
    token accuracy and accuracy by target position.

    ``by_position[i]``: among targets at least ``i + 1`` long, the share whose
    output has the target's token at position ``i``.
    """
    if not targets:
        raise BlogError('no targets to score')
    longest = max(len(t) for t in targets)
    right, present = np.zeros(longest), np.zeros(longest)
    exact, tokens = [], 0.0
    for output, target in zip(outputs, targets):
        output = _until_end(output, end_id)
        hits = [a == b for a, b in zip(output, target)]
        right[:len(hits)] += hits
        present[:len(target)] += 1
        exact.append(int(output == list(target)))
        tokens += sum(hits) / max(len(target), len(output), 1)
    return {'exact': sum(exact) / len(targets), 'token_accuracy': tokens / len(targets),
            'by_position': (right / np.maximum(present, 1)).tolist(), 'exact_by_example': exact}
