"""Post 7: a GPT-style language model over ICCS moves that plays xiangqi
(Chinese chess) and never plays an illegal move.

Modules, one job each:
    rules    Fairy-Stockfish's rules (pyffish) in ICCS notation, the board
    records  game files: ICCS move lists, one game a line, checked move by move
    match    playing games between players; a random mover; match tallies
    engine   the Fairy-Stockfish engine over UCI; engine-generated games
    lm       tokenizer, staged-length batches, the model, saving and loading
    player   the model as a legal-move-only player
    terminal a game against the model in the terminal

The names most users need are re-exported here:
    START_FEN, draw_board, fsf_to_iccs, iccs_to_fsf, legal_moves, outcome (rules)
    Game, read_games, write_games (records)
    RandomPlayer, play_game, play_match (match)
    DEFAULT_GAMES: the engine games that ship with the package (gzip, ICCS)
"""
from bert4keras_blog.xiangqi.rules import (  # noqa: F401
    START_FEN, draw_board, fsf_to_iccs, iccs_to_fsf, legal_moves, outcome)
from bert4keras_blog.xiangqi.records import Game, read_games, write_games  # noqa: F401
from bert4keras_blog.xiangqi.match import RandomPlayer, play_game, play_match  # noqa: F401

__all__ = ['START_FEN', 'draw_board', 'fsf_to_iccs', 'iccs_to_fsf', 'legal_moves', 'outcome',
           'Game', 'read_games', 'write_games', 'RandomPlayer', 'play_game', 'play_match',
           'DEFAULT_GAMES']

import os as _os

DEFAULT_GAMES = _os.path.join(_os.path.dirname(__file__), 'data', 'engine_games.txt.gz')
