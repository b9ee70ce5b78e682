"""From problem text to token ids and back, and the UniLM solver.

The source is the problem text as bert4keras' ``Tokenizer`` splits it. The
target is the normalized expression one character a token, then ``[SEP]``:
the model writes the digits itself, as in the post. With ``number_slots``
each number of the text becomes a slot token instead (``[unused1]`` ...
``[unused9]``, which Google's Chinese vocabulary has) and the target refers
to the slot, so a small model need not learn to copy digits. Decoding is restricted to
those tokens (a constraint in ``decoding``), and the decoded text is
evaluated by ``evaluate``, never by ``eval``.

Public API:
    ProblemCodec(tokenizer, maxlen=192, number_slots=False)
    Seq2SeqGenerator(records, codec, batch_size): batches for a UniLM, source
        then target in one sequence, segment ids 1 on the target
    MathSolver(model, codec, maxlen=64, topk=1)
        .solve(texts) -> [(expression, Fraction or None)], .accuracy(records) -> dict,
        .candidates(text) -> [(expression, log-probability, Fraction or None)]
    math_vocabulary(dict_path, trim) -> (token_dict, keep_tokens): the
        vocabulary, trimmed as the post does for real checkpoints (keeping
        the specials and the number slots), or whole.
    save_solver(folder, config_path, dict_path, maxlen, number_slots,
        keep_tokens): writes ``solver.json``, what ``load_solver`` reads.
    load_solver(folder, topk=3) -> MathSolver: a model trained by the post-3
        example, from its ``solver.json`` and best weights.
    solve(text, solver) -> (expression, Fraction or None)
    token_accuracy(predicted, gold) -> share of the gold characters matched by position.
    SLOTS: the number-slot tokens, [unused1] ... [unused9].
"""
import json
import os
import re

import numpy as np

from bert4keras_blog import compat  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras_blog.compat import special_tokens
from bert4keras_blog.decoding import UniLMDecoder
from bert4keras_blog.errors import BlogError, MathExpressionError, SettingError
from bert4keras_blog.mathword.answers import answers_match, normalize
from bert4keras_blog.mathword.expression import evaluate
from bert4keras.models import build_transformer_model
from bert4keras.tokenizers import Tokenizer, load_vocab

__all__ = ['ProblemCodec', 'Seq2SeqGenerator', 'MathSolver', 'load_solver', 'save_solver',
           'solve', 'SLOTS',
           'math_vocabulary',
           'token_accuracy']

SLOTS = ['[unused%d]' % i for i in range(1, 10)]
EXPRESSION_CHARACTERS = '0123456789.+-*/^()%'
_NUMBER = re.compile(r'\d+(?:\.\d+)?')
_DIGITS = str.maketrans('０１２３４５６７８９．％', '0123456789.%')
_EXPRESSION_TOKEN = re.compile(r'\d+(?:\.\d+)?|.')


class ProblemCodec(object):
    """Token ids for problems and expressions.

    Args:
        tokenizer: bert4keras ``Tokenizer``.
        maxlen: int. Longest source in tokens (with [CLS] and [SEP]).
        number_slots: bool. Replace the problem's numbers by slot tokens.
            Defaults to False (the post's way).
    """

    def __init__(self, tokenizer, maxlen=192, number_slots=False):
        self.tokenizer, self.maxlen, self.number_slots = tokenizer, maxlen, number_slots
        self.slot_ids = [tokenizer.token_to_id(s) for s in SLOTS]
        unk = special_tokens(tokenizer).unk
        self.char_ids = {c: tokenizer.token_to_id(c) for c in EXPRESSION_CHARACTERS}
        missing = [c for c, i in self.char_ids.items() if i == unk]
        if missing or unk in self.slot_ids:
            raise SettingError('the vocabulary lacks %s' % (missing or 'the [unused1-9] slots'))
        self.id_chars = {i: c for c, i in self.char_ids.items()}
        self.id_slots = {i: k for k, i in enumerate(self.slot_ids)}
        self.end_id = special_tokens(tokenizer).end

    def numbers(self, text):
        """The numbers of a problem, in order, as written (ASCII digits)."""
        return _NUMBER.findall(text.translate(_DIGITS))

    def encode_problem(self, text):
        """Returns (token_ids, segment_ids, numbers) of the source."""
        text = text.translate(_DIGITS)
        ids, numbers, position = [], [], 0
        for match in _NUMBER.finditer(text):
            ids += self.tokenizer.encode(text[position:match.start()])[0][1:-1]
            numbers.append(match.group())
            if self.number_slots and len(numbers) <= len(SLOTS):
                ids.append(self.slot_ids[len(numbers) - 1])
            else:
                ids += self.tokenizer.encode(match.group())[0][1:-1]
            position = match.end()
        ids += self.tokenizer.encode(text[position:])[0][1:-1]
        ids = [special_tokens(self.tokenizer).start] + ids[:self.maxlen - 2] + [self.end_id]
        return ids, [0] * len(ids), numbers

    def encode_expression(self, expression, numbers):
        """Target ids of an expression (normalized first), ending with [SEP]."""
        ids = []
        for piece in _EXPRESSION_TOKEN.findall(normalize(expression)):
            slot = self._slot_of(piece, numbers)
            if slot is not None:
                ids.append(self.slot_ids[slot])
            else:
                ids += [self.char_ids[c] for c in piece]
        return ids + [self.end_id]

    def _slot_of(self, piece, numbers):
        if not self.number_slots or not piece[0].isdigit():
            return None
        for k, number in enumerate(numbers[:len(SLOTS)]):
            if number == piece or (evaluate(number) == evaluate(piece)):
                return k
        return None

    def encode(self, text, equation):
        """Training ids: source then target, segments 0 then 1."""
        token_ids, segment_ids, numbers = self.encode_problem(text)
        target = self.encode_expression(equation, numbers)
        return token_ids + target, segment_ids + [1] * len(target)

    def decode(self, ids, numbers):
        """Expression text from target ids (slots filled in); stops at [SEP]."""
        parts = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in self.id_slots:
                k = self.id_slots[i]
                parts.append(numbers[k] if k < len(numbers) else '?')
            else:
                parts.append(self.id_chars.get(i, '?'))
        return ''.join(parts)

    def allowed_mask(self, vocab_size):
        """Boolean mask of the tokens an expression can use."""
        mask = np.zeros(vocab_size, bool)
        mask[list(self.char_ids.values()) + [self.end_id]] = True
        if self.number_slots:
            mask[self.slot_ids] = True
        return mask


class Seq2SeqGenerator(DataGenerator):
    """Batches of problems: source then target, segment ids mark the target."""

    def __init__(self, records, codec, batch_size):
        super().__init__(records, batch_size)
        self.codec = codec

    def __iter__(self, random=False):
        tokens, segments = [], []
        for is_end, record in self.sample(random):
            token_ids, segment_ids = self.codec.encode(record['original_text'], record['equation'])
            tokens.append(token_ids)
            segments.append(segment_ids)
            if len(tokens) == self.batch_size or is_end:
                # A tuple: tf_keras would stack a list of equal-shape arrays into one input.
                yield (sequence_padding(tokens), sequence_padding(segments)), None
                tokens, segments = [], []


def token_accuracy(predicted, gold):
    """Share of the gold expression's characters matched position by position."""
    gold = normalize(gold)
    if not gold:
        return 0.0
    return sum(a == b for a, b in zip(predicted, gold)) / max(len(gold), len(predicted))


def _value(expression):
    """The exact value of a decoded expression, None when it is not valid."""
    try:
        return evaluate(expression)
    except MathExpressionError:
        return None


class MathSolver(object):
    """Decodes expressions with the UniLM and evaluates them safely.

    Args:
        model: the UniLM Keras model (``application='unilm'``, ``with_mlm=True``).
        codec: ProblemCodec.
        maxlen: int. Longest expression in tokens. Defaults to 64.
        topk: int. Beam size; 1 is greedy. Defaults to 1.
        batch_size: int. Problems decoded together. Defaults to 64.
        precision: 'float32' (default) or 'bfloat16' (``UniLMDecoder``).
    """

    def __init__(self, model, codec, maxlen=64, topk=1, batch_size=64, precision='float32'):
        self.codec, self.topk, self.batch_size = codec, topk, batch_size
        self.decoder = UniLMDecoder(model, end_id=codec.end_id, maxlen=maxlen,
                                    precision=precision)
        mask = codec.allowed_mask(self.decoder.runner.vocab_size)
        self.constraint = lambda index, output_ids: mask

    def solve(self, texts):
        """Returns [(expression, value or None)] for each problem text."""
        results = []
        for start in range(0, len(texts), self.batch_size):
            encoded = [self.codec.encode_problem(t) for t in texts[start:start + self.batch_size]]
            batch = [[np.array(ids), np.array(segments)] for ids, segments, _ in encoded]
            outputs = self.decoder.batch_beam_search(batch, self.topk, constraint=self.constraint)
            for ids, (_, _, numbers) in zip(outputs, encoded):
                expression = self.codec.decode(ids, numbers)
                results.append((expression, _value(expression)))
        return results

    def candidates(self, text):
        """The beams of one problem: [(expression, log-probability, value or
        None)], the answer ``solve`` gives first."""
        ids, segments, numbers = self.codec.encode_problem(text)
        found = self.decoder.batch_beam_search([[np.array(ids), np.array(segments)]], self.topk,
                                               constraint=self.constraint, candidates=True)[0]
        expressions = [(self.codec.decode(ids, numbers), score) for ids, score in found]
        return [(expression, score, _value(expression)) for expression, score in expressions]

    def accuracy(self, records):
        """Share of records whose decoded expression gives the right answer."""
        solved = self.solve([r['original_text'] for r in records])
        right = sum(value is not None and answers_match(value, r['ans'])
                    for (_, value), r in zip(solved, records))
        valid = sum(value is not None for _, value in solved)
        tokens = sum(token_accuracy(expression, r['equation'])
                     for (expression, _), r in zip(solved, records))
        count = max(len(records), 1)
        return {'accuracy': right / count, 'valid_expressions': valid / count,
                'token_accuracy': tokens / count, 'problems': len(records)}


def math_vocabulary(dict_path, trim):
    """(token_dict, keep_tokens) of a BERT vocab.txt.

    ``trim``: keep only what bert4keras' ``load_vocab(simplified=True)``
    keeps (Chinese vocabularies shrink by about a third), plus the specials
    and number slots; ``keep_tokens`` then slices the checkpoint to match.
    Otherwise the whole vocabulary and ``keep_tokens=None``.
    """
    if not trim:
        return load_vocab(dict_path), None
    return load_vocab(dict_path, simplified=True,
                      startswith=['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + SLOTS)


def save_solver(folder, config_path, dict_path, maxlen, number_slots, keep_tokens,
                weights='best.weights.h5'):
    """Writes ``solver.json``: what ``load_solver`` (and ``bert4keras-blog
    math``) needs to rebuild a model trained into ``folder``. Returns its path."""
    config = {'config': os.path.abspath(config_path), 'dict': os.path.abspath(dict_path),
              'maxlen': maxlen, 'number_slots': number_slots, 'keep_tokens': keep_tokens,
              'weights': os.path.abspath(os.path.join(folder, weights))}
    path = os.path.join(folder, 'solver.json')
    with open(path, 'w') as f:
        json.dump(config, f)
    return path


def load_solver(folder, topk=3, precision='float32'):
    """Rebuilds the solver the post-3 example trained into ``folder``.

    Raises:
        BlogError: the folder has no ``solver.json`` (train first).
    """
    path = os.path.join(folder, 'solver.json')
    if not os.path.exists(path):
        raise BlogError('%s not found: train a solver first with '
                        'python examples/post3_math_word_problems.py' % path)
    with open(path) as f:
        saved = json.load(f)
    token_dict, _ = math_vocabulary(saved['dict'], trim=bool(saved['keep_tokens']))
    model = build_transformer_model(saved['config'], application='unilm', with_mlm=True,
                                    keep_tokens=saved['keep_tokens'])
    model.load_weights(saved['weights'])
    codec = ProblemCodec(Tokenizer(token_dict, do_lower_case=True), saved['maxlen'],
                         saved['number_slots'])
    return MathSolver(model, codec, topk=topk, precision=precision)


def solve(text, solver):
    """Solves one problem: returns (expression, exact value or None)."""
    return solver.solve([text])[0]
