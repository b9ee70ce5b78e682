"""The probes of post 7's learning curve: positions and answers checked
against Fairy-Stockfish's own capture test and game outcome."""
import numpy as np
import pyffish as sf
import pytest

from bert4keras_blog.xiangqi import DEFAULT_GAMES, read_games
from bert4keras_blog.xiangqi.probes import (
    find_positions, hanging_captures, mating_moves, run_probes)
from bert4keras_blog.xiangqi.rules import (
    START_FEN, VARIANT, iccs_to_fsf, legal_moves, outcome, side_to_move)

OPENING = ['b2b3', 'b7f7', 'b3b1', 'b9c7', 'b1c1', 'f7f6', 'c1g1', 'h9g7', 'i0i2']


@pytest.fixture(scope='module')
def games():
    return read_games(DEFAULT_GAMES)[0][:120]


def fsf_captures(moves):
    """Captures by pyffish's is_capture (not our board reading)."""
    history = [iccs_to_fsf(m) for m in moves]
    return [m for m in legal_moves(moves)
            if sf.is_capture(VARIANT, START_FEN, history, iccs_to_fsf(m))]


def test_a_known_hanging_piece():
    assert hanging_captures(OPENING) == ['h7h0']  # black's cannon takes the horse
    assert 'h7h0' in fsf_captures(OPENING)
    assert not any(r[2:] == 'h0' for r in legal_moves(OPENING + ['h7h0']))


def test_hanging_captures_agree_with_pyffish_on_game_positions(games):
    rng = np.random.default_rng(0)
    checked = 0
    for index in rng.choice(len(games), 15, replace=False):
        game = games[index]
        n = int(rng.integers(len(game.moves)))
        moves = list(game.moves[:n])
        expected = [m for m in fsf_captures(moves)
                    if not any(r[2:] == m[2:] for r in legal_moves(moves + [m]))]
        assert hanging_captures(moves) == expected, (moves, expected)
        checked += bool(expected)
    assert checked >= 1  # some positions did have a hanging piece


def test_mating_moves_win_for_the_mover(games):
    found = find_positions(games, limit=5, seed=1)
    assert len(found['mate']) == 5 and len(found['hanging']) == 5 and len(found['legal']) == 5
    for moves, answers in found['mate']:
        assert answers and set(answers) <= set(legal_moves(moves))
        for move in answers:
            result, _ = outcome(moves + [move])
            assert result == ('1-0' if side_to_move(moves) == 'red' else '0-1')
        others = [m for m in legal_moves(moves) if m not in answers]
        assert all(outcome(moves + [m]) is None or outcome(moves + [m])[1] == 'rule'
                   for m in others[:10])
    assert mating_moves(OPENING) == []


class Scripted(object):
    """A player that plays the first answer (or a move that is none)."""

    def __init__(self, positions, right):
        self.answers = {tuple(m): a for chosen in positions.values() for m, a in chosen}
        self.legal = {tuple(m): legal_moves(m) for chosen in positions.values() for m, _ in chosen}
        self.right, self.unconstrained_choice = right, None

    def __call__(self, moves):
        answers = self.answers[tuple(moves)]
        wrong = [m for m in self.legal[tuple(moves)] if m not in answers]
        move = answers[0] if self.right or not wrong else wrong[0]
        self.unconstrained_choice = move if self.right else 'z9z9'
        return move


def test_run_probes_scores_the_player_with_intervals(games):
    positions = find_positions(games, limit=6, seed=2)
    good = run_probes(Scripted(positions, True), positions)
    assert all(good[p]['share'] == 1.0 and good[p]['positions'] == 6 for p in good)
    bad = run_probes(Scripted(positions, False), positions)
    assert bad['legal']['share'] == 0.0 and bad['hanging']['share'] == 0.0
    assert 0 <= bad['hanging']['low'] <= bad['hanging']['high'] <= 1
