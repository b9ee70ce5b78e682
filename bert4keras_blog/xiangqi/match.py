"""Playing games: any two players, a random legal mover, matches with a tally.

A player is any callable ``player(moves, fen) -> move`` (ICCS) that returns
a legal move for the side to move; ``MovePlayer``, ``Engine.player()`` and
``RandomPlayer`` all are.

Public API:
    RandomPlayer(seed)
    play_game(red, black, fen=None, max_plies=300) -> (Game, reason)
    play_match(player, opponent, games, max_plies=300, desc=None) -> dict
"""
import numpy as np
from tqdm import tqdm

from bert4keras_blog.errors import IllegalMoveError
from bert4keras_blog.xiangqi.records import Game
from bert4keras_blog.xiangqi.rules import legal_moves, outcome

__all__ = ['RandomPlayer', 'play_game', 'play_match']


class RandomPlayer(object):
    """Plays a uniformly random legal move."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, moves, fen=None):
        legal = legal_moves(moves, fen)
        return legal[self.rng.integers(len(legal))]


def play_game(red, black, fen=None, max_plies=300):
    """Plays one game; every move is checked against the rules.

    Returns:
        (Game(moves, result), reason): reason is 'checkmate', 'stalemate',
        'rule' (repetition, perpetual check, move-count rule) or 'max_plies'
        (adjudicated a draw after ``max_plies`` plies).
    """
    moves = []
    players = (red, black) if (fen is None or fen.split()[1] == 'w') else (black, red)
    while True:
        ended = outcome(moves, fen)
        if ended is not None:
            return Game(moves, ended[0], fen), ended[1]
        if len(moves) >= max_plies:
            return Game(moves, '1/2-1/2', fen), 'max_plies'
        move = players[len(moves) % 2](moves, fen)
        if move not in legal_moves(moves, fen):
            raise IllegalMoveError(move, 'the player %r chose an illegal move'
                                   % type(players[len(moves) % 2]).__name__, ply=len(moves) + 1)
        moves.append(move)


def play_match(player, opponent, games, max_plies=300, desc=None, keep_games=False):
    """``games`` games, ``player`` red in the even ones and black in the odd.

    Returns:
        dict: win, draw, loss (from ``player``'s side), reasons (a count per
        way the games ended), plies (mean length), scores (per game: 1 won,
        0.5 drawn, 0 lost) and, with ``keep_games``, the games as Game tuples.
    """
    tally = {'win': 0, 'draw': 0, 'loss': 0}
    reasons, lengths, kept, scores = {}, [], [], []
    bar = tqdm(range(games), desc=desc, unit='game', leave=False, disable=desc is None)
    for i in bar:
        red_is_player = i % 2 == 0
        red, black = (player, opponent) if red_is_player else (opponent, player)
        game, reason = play_game(red, black, max_plies=max_plies)
        if game.result == '1/2-1/2':
            tally['draw'] += 1
            scores.append(0.5)
        elif (game.result == '1-0') == red_is_player:
            tally['win'] += 1
            scores.append(1.0)
        else:
            tally['loss'] += 1
            scores.append(0.0)
        reasons[reason] = reasons.get(reason, 0) + 1
        lengths.append(len(game.moves))
        if keep_games:
            kept.append(game)
        bar.set_postfix(tally)
    result = dict(tally, games=games, reasons=reasons, plies=float(np.mean(lengths)),
                  scores=scores)
    if keep_games:
        result['games_played'] = kept
    return result
