"""A game against the model in the terminal.

The user types moves in ICCS (``h2e2``: file a-i, rank 0-9, from then to).
Fairy-Stockfish's form with ranks 1-10 (``h3e3``) is read too: a move with a
rank 10, or one that is illegal in ICCS but legal read as ranks 1-10, is
taken that way and the ICCS spelling is shown (``notation fsf`` makes 1-10
the first reading). Commands: help, board, moves, undo, hint, resign, quit
(Ctrl-D or Ctrl-C too). Anything else is explained and the game goes on; at
the end the game is appended to a record file in ICCS.

Public API:
    read_move(text, legal, notation='iccs') -> (move, note)
    TerminalGame(player, human='red', fen=None, ...).run() -> Game
"""
import datetime
import os
import tempfile

import numpy as np

from bert4keras_blog.errors import IllegalMoveError, SettingError
from bert4keras_blog.xiangqi.records import Game, write_games
from bert4keras_blog.xiangqi.rules import (
    draw_board, fsf_to_iccs, iccs_to_fsf, is_iccs, legal_moves, outcome, side_to_move)

__all__ = ['read_move', 'TerminalGame']

HELP = """Type a move in ICCS, file a-i and rank 0-9, from then to: h2e2 (cannon to the centre).
Fairy-Stockfish's ranks 1-10 (h3e3) work too. Commands:
  board    draw the board again          moves   the game so far in ICCS
  undo     take back your last move      hint    the model's three favourite moves for you
  resign   give up the game              quit    stop (Ctrl-D, Ctrl-C); the game is saved
  notation iccs|fsf                      which reading of a move comes first"""


def read_move(text, legal, notation='iccs'):
    """The legal ICCS move the user meant, and a note on how it was read.

    Raises IllegalMoveError (with the reason) when no reading is legal.
    """
    text = text.strip().lower().replace('-', '')
    readings = []  # (ICCS move, note)
    iccs = (text, '') if is_iccs(text) else None
    try:
        fsf = (fsf_to_iccs(text), 'read as ranks 1-10: ICCS %s' % fsf_to_iccs(text))
    except ValueError:
        fsf = None
    for reading in ((iccs, fsf) if notation == 'iccs' else (fsf, iccs)):
        if reading is not None:
            readings.append(reading)
    if not readings:
        raise IllegalMoveError(text, 'not a move: write file a-i and rank 0-9 twice, e.g. '
                                     'h2e2 (or type help)')
    for move, note in readings:
        if move in legal:
            return move, note
    move = readings[0][0]
    starts = sorted({m[2:] for m in legal if m[:2] == move[:2]})
    if starts:
        reason = 'not legal here; the piece on %s can go to %s' % (move[:2], ', '.join(starts))
    else:
        reason = 'not legal here: you have no piece that can move from %s' % move[:2]
    raise IllegalMoveError(move, reason)


class TerminalGame(object):
    """One game, the user against ``player``.

    Args:
        player: a player callable (``MovePlayer``); it also gives hints if
            it has ``scores``.
        human: 'red' (moves first) or 'black'.
        fen: start position (default: the usual one).
        read, write: input and output functions (``input``, ``print``).
        color: paint red pieces red (ANSI).
        save_path: the record file the game is appended to (None: not saved).
        max_plies: the game is a draw after this many plies.
    """

    def __init__(self, player, human='red', fen=None, read=input, write=print, color=False,
                 save_path=None, max_plies=300, notation='iccs'):
        if human not in ('red', 'black'):
            raise SettingError("human must be 'red' or 'black', not %r" % (human,))
        self.player, self.human, self.fen = player, human, fen
        self.read, self.write, self.color = read, write, color
        self.save_path, self.max_plies, self.notation = save_path, max_plies, notation
        self.moves = []

    def show(self):
        last = self.moves[-1] if self.moves else None
        self.write(draw_board(self.moves, self.fen, color=self.color, last_move=last))

    def finish(self, result, reason):
        if reason not in ('stopped', 'resigned'):
            self.show()
        self.write('Game over: %s (%s).' % (result, reason))
        game = Game(list(self.moves), result, self.fen)
        if self.save_path:
            self.write('Saved the game (%d moves, ICCS) to %s.' % (
                len(self.moves), self.save(game)))
        return game

    def save(self, game):
        """Appends ``game`` to the record file; if that cannot be written, to
        a new file in the temporary folder, so a finished game is never lost."""
        try:
            folder = os.path.dirname(os.path.abspath(self.save_path))
            os.makedirs(folder, exist_ok=True)
            return write_games(self.save_path, [game], append=True)
        except OSError as error:
            handle, fallback = tempfile.mkstemp(prefix='xiangqi-game-', suffix='.txt')
            os.close(handle)
            self.write('Could not write %s (%s).' % (self.save_path, error.strerror or error))
            return write_games(fallback, [game])

    def human_turn(self):
        """Reads until a move is made; returns a (result, reason) to end the game."""
        legal = legal_moves(self.moves, self.fen)
        while True:
            try:
                text = self.read('your move (%s) > ' % self.human)
            except (EOFError, KeyboardInterrupt):
                self.write('')
                return '*', 'stopped'
            command = text.strip().lower()
            if not command:
                self.write('Empty line: type a move such as %s, or help.' % legal[0])
            elif command == 'help':
                self.write(HELP)
            elif command == 'board':
                self.show()
            elif command == 'moves':
                self.write(' '.join(self.moves) or '(no moves yet)')
            elif command in ('quit', 'exit'):
                return '*', 'stopped'
            elif command == 'resign':
                return ('0-1' if self.human == 'red' else '1-0'), 'resigned'
            elif command == 'hint':
                self.hint(legal)
            elif command == 'undo':
                if self.undo():
                    self.show()
                    legal = legal_moves(self.moves, self.fen)
            elif command.startswith('notation'):
                choice = command.split()[-1]
                if choice in ('iccs', 'fsf'):
                    self.notation = choice
                    self.write('Moves are read as %s first.' % choice.upper())
                else:
                    self.write('notation iccs (ranks 0-9) or notation fsf (ranks 1-10)')
            else:
                try:
                    move, note = read_move(command, legal, self.notation)
                except IllegalMoveError as error:
                    self.write(str(error))
                    continue
                if note:
                    self.write('(%s)' % note)
                self.moves.append(move)
                return None

    def hint(self, legal):
        if not hasattr(self.player, 'scores'):
            self.write('This opponent gives no hints.')
            return
        scores = self.player.scores(self.moves, self.fen, legal)
        best = sorted(scores, key=scores.get, reverse=True)[:3]
        self.write('The model would play: ' + ', '.join(
            '%s (%s, p=%.2f)' % (m, iccs_to_fsf(m), np.exp(scores[m])) for m in best))

    def undo(self):
        """Takes back the user's last move and the reply to it."""
        mine = 0 if side_to_move([], self.fen) == self.human else 1
        if len(self.moves) <= mine:
            self.write('Nothing of yours to undo yet.')
            return False
        back = 2 if (len(self.moves) - mine) % 2 == 0 else 1
        del self.moves[-back:]
        self.write('Took back %d plies.' % back)
        return True

    def run(self):
        """Plays until the end; returns the Game (result '*' if stopped).
        Ctrl-C at any moment, also while the model thinks, stops the game and
        saves the moves so far."""
        try:
            return self._play()
        except KeyboardInterrupt:
            self.write('')
            return self.finish('*', 'stopped')

    def _play(self):
        when = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
        self.write('Xiangqi against the model, %s. You are %s. Type help for help.'
                   % (when, self.human))
        self.show()
        while True:
            ended = outcome(self.moves, self.fen)
            if ended is not None:
                return self.finish(*ended)
            if len(self.moves) >= self.max_plies:
                return self.finish('1/2-1/2', 'max plies')
            if side_to_move(self.moves, self.fen) == self.human:
                stop = self.human_turn()
                if stop is not None:
                    return self.finish(*stop)
            else:
                move = self.player(self.moves, self.fen)
                self.moves.append(move)
                self.write('The model plays %s (%s).' % (move, iccs_to_fsf(move)))
                self.show()
