"""The model as a player that can only play legal moves.

Every legal move is scored by the summed log-probability of its four
characters given the game so far; the best is played (or one is sampled with
a temperature among the top k). The four characters of all legal moves form
a trie of at most a few dozen prefixes, so one pass over the game plus three
cached steps (``decoding.bert_runner``, the runner behind
``decoding.LMDecoder``) score them all.

The same pass also follows the model's own unconstrained first choice,
character by character, so ``legal_top1_rate`` says how often the rules had
nothing to correct.

Public API:
    MovePlayer(transformer, tokenizer, temperature=0, topk=None, seed=0)
        .scores(moves) -> dict move -> log-probability
        (moves, fen=None) -> move       (a player for ``match.play_game``)
        .legal_top1_rate, .unconstrained_choice
"""
import numpy as np

from bert4keras_blog.decoding import bert_runner, log_probabilities
from bert4keras_blog.errors import BlogError
from bert4keras_blog.xiangqi.lm import TOKENS
from bert4keras_blog.xiangqi.rules import legal_moves

__all__ = ['MovePlayer']


class MovePlayer(object):
    """Args:
        transformer: the move LM (bert4keras object or Keras model).
        tokenizer: its MoveTokenizer.
        temperature: 0 plays the highest-scoring move; above 0 samples from
            softmax(score / temperature).
        topk: sample among the k best moves only.
        seed: for sampling.
    """

    def __init__(self, transformer, tokenizer, temperature=0.0, topk=None, seed=0):
        if not (isinstance(temperature, (int, float)) and 0 <= temperature < float('inf')):
            raise BlogError('temperature %r: a finite number, 0 or more' % (temperature,))
        if topk is not None and (not isinstance(topk, int) or topk < 1):
            raise BlogError('topk %r: a whole number, 1 or more (or None)' % (topk,))
        self.runner = bert_runner(transformer, lm=True)
        self.tokenizer = tokenizer
        self.max_position = self.runner.max_position
        self.temperature, self.topk = temperature, topk
        self.rng = np.random.default_rng(seed)
        self.predictions = self.legal_predictions = 0
        self.unconstrained_choice = None

    def _context(self, moves):
        """Token ids of the game; a game longer than the model's positions
        keeps the start token and its latest whole moves."""
        ids = self.tokenizer.encode(moves)
        room = (self.max_position - 4) // 4 * 4  # three more tokens go in while scoring
        if len(ids) - 1 > room:
            ids = ids[:1] + ids[len(ids) - room:]
        return ids

    def scores(self, moves, fen=None, legal=None):
        """Log-probability of every legal move after ``moves``."""
        legal = legal if legal is not None else legal_moves(moves, fen)
        ids = {m: tuple(self.tokenizer.token_to_id[c] for c in m) for m in legal}
        logits, state = self.runner.start([[self._context(moves)]], new_tokens=3)
        logp = log_probabilities(logits)
        rows = {(): 0}
        greedy = ()
        total = dict.fromkeys(legal, 0.0)
        for depth in range(4):
            for move, path in ids.items():
                total[move] += float(logp[rows[path[:depth]], path[depth]])
            greedy += (int(np.argmax(logp[rows[greedy]])),)  # the unconstrained choice
            if depth == 3:
                break
            prefixes = sorted({path[:depth + 1] for path in ids.values()} | {greedy})
            logits, state = self.runner.advance(state, [rows[p[:depth]] for p in prefixes],
                                               [p[depth] for p in prefixes])
            logp = log_probabilities(logits)
            rows = {p: i for i, p in enumerate(prefixes)}
        self.unconstrained_choice = ''.join(TOKENS[i] for i in greedy)
        self.predictions += 1
        self.legal_predictions += self.unconstrained_choice in total
        return total

    @property
    def legal_top1_rate(self):
        """Share of the model's unconstrained first choices that were legal."""
        return self.legal_predictions / max(self.predictions, 1)

    def __call__(self, moves, fen=None):
        scores = self.scores(moves, fen)
        legal = sorted(scores, key=scores.get, reverse=True)
        if self.temperature <= 0:
            return legal[0]
        if self.topk:
            legal = legal[:self.topk]
        values = np.array([scores[m] for m in legal]) / self.temperature
        p = np.exp(values - values.max())
        return legal[self.rng.choice(len(legal), p=p / p.sum())]
