"""What a move model has learned, probed on positions from held-out games.

Three probes, each a set of positions and the moves that pass there:

- ``legal``: every position; the model passes when its own unconstrained
  first choice (four characters, greedy) is a legal move.
- ``hanging``: positions where a piece can be taken and no opponent move can
  take back on that square; the player passes when it takes one of them.
- ``mate``: positions with a move after which the opponent has no legal move
  (checkmate, or stalemate, also a loss in xiangqi); the player passes when
  it plays one.

The player is the post's: legal moves scored by the model's summed
log-probability (``MovePlayer``); the probes only choose positions and
check answers with the rules, they never help choose a move.

Public API:
    hanging_captures(moves, fen=None) -> list of capturing moves no reply can answer
    mating_moves(moves, fen=None) -> list of moves that leave the opponent no move
    find_positions(games, limit=200, seed=0) -> dict probe -> list of
        (moves, passing moves); positions are prefixes of ``games``
    run_probes(player, positions) -> dict probe -> {'share', 'low', 'high', 'positions'}
        (95% interval over positions)

Example:
```python
from bert4keras_blog.xiangqi.probes import hanging_captures, mating_moves
moves = ['b2b3', 'b7f7', 'b3b1', 'b9c7', 'b1c1', 'f7f6', 'c1g1', 'h9g7', 'i0i2']
assert hanging_captures(moves) == ['h7h0']    # black's cannon takes the horse, unanswered
assert mating_moves(moves) == []
```
"""
import numpy as np

from bert4keras_blog.experiment.claims import interval
from bert4keras_blog.xiangqi.rules import fen_after, legal_moves, parse_fen

__all__ = ['hanging_captures', 'mating_moves', 'find_positions', 'run_probes']

PROBES = ('legal', 'hanging', 'mate')


def _takes(board, move):
    """Whether ``move`` lands on a piece (``board``: ``parse_fen`` rows, ICCS
    rank 9 first); pyffish's own test costs a few milliseconds a call."""
    return board[9 - int(move[3])][ord(move[2]) - ord('a')] != '.'


def hanging_captures(moves, fen=None):
    """Captures after ``moves`` whose square no opponent reply can retake."""
    here = fen_after(moves, fen)  # one FEN: pyffish need not replay the game per call
    board = parse_fen(here)
    found = []
    for move in legal_moves([], here):
        if _takes(board, move):
            if not any(reply[2:] == move[2:] for reply in legal_moves([move], here)):
                found.append(move)
    return found


def mating_moves(moves, fen=None):
    """Moves after which the opponent has no legal move, so the mover wins."""
    here = fen_after(moves, fen)
    return [m for m in legal_moves([], here) if not legal_moves([m], here)]


def find_positions(games, limit=200, seed=0):
    """Up to ``limit`` positions per probe, in a seeded random order
    (``games``: Game tuples with ``.moves`` and ``.fen``). Mates in one are
    taken from the games that ended by mate (the position before the last
    move, with every mating move there); the other probes take any prefix."""
    rng = np.random.default_rng(seed)
    found = {probe: [] for probe in PROBES}
    prefixes = [(g, n) for g in games for n in range(len(g.moves))]
    for index in rng.permutation(len(prefixes)):
        if len(found['legal']) >= limit and len(found['hanging']) >= limit:
            break
        game, n = prefixes[index]
        moves = list(game.moves[:n])
        if len(found['legal']) < limit:
            found['legal'].append((moves, legal_moves(moves, game.fen)))
        if len(found['hanging']) < limit:
            answers = hanging_captures(moves, game.fen)
            if answers:
                found['hanging'].append((moves, answers))
    for index in rng.permutation(len(games)):
        game = games[index]
        if len(found['mate']) >= limit:
            break
        if game.moves and not legal_moves(game.moves, game.fen):  # the last move mated
            before = list(game.moves[:-1])
            found['mate'].append((before, mating_moves(before, game.fen)))
    return found


def run_probes(player, positions):
    """The share of positions where ``player`` passes each probe."""
    results = {}
    for probe, chosen in positions.items():
        passed = []
        for moves, answers in chosen:
            move = player(moves)
            passed.append(float((player.unconstrained_choice if probe == 'legal' else move)
                                in answers))
        if len(passed) >= 2:
            estimate = interval(passed)
            low, high = max(estimate.low, 0.0), min(estimate.high, 1.0)
        else:
            low = high = float('nan')
        results[probe] = {'share': float(np.mean(passed)) if passed else float('nan'),
                          'low': low, 'high': high, 'positions': len(passed)}
    return results
