"""Game records: ICCS move lists, one game a line.

    h2e2 h9g7 h0g2 i9h9 i0h0 b9c7 ... 1-0

Moves are separated by spaces; an optional last field is the result as PGN
writes it ('1-0' red won, '0-1' black won, '1/2-1/2', '*' unknown). A game
that starts from another position opens with its FEN in brackets:
``[4k4/8R/9/9/9/9/9/9/9/R2K5 w - - 0 1] a0a9 1-0``. Moves may be written
in upper case or with a dash (``H2E2``, ``H2-E2``, as most Chinese game
sites write ICCS); they are stored as ``h2e2``. Blank lines and lines
starting with '#' are skipped; files ending in '.gz' are read and written
compressed. Every move is checked against the rules, so an illegal or
unreadable move is reported with its file, line, game and ply numbers; that
game is skipped and the others are kept. A FEN is checked by our own strict
parser before Fairy-Stockfish sees it, and a game may hold at most
``rules.MAX_PLIES`` moves (a longer line is rejected unread), so a hostile
file can neither crash the rules engine nor fill memory.

PGN and XQF game files are not read (their Chinese-notation moves need a
converter we do not ship): such a file is recognised and refused with a
message saying which format it is; export the games as ICCS move lists.

Public API:
    Game(moves, result, fen=None)
    read_games(path, fen=None, strict=False) -> (games, problems)
    validate_game(moves, fen=None) -> None, raises IllegalMoveError
    write_games(path, games, append=False) -> str
    format_game(game) -> str: one game's line
    rejected_lines(path, games, problems) -> datafiles.RejectedLines
    RESULTS: '1-0', '0-1', '1/2-1/2' and '*' (unfinished).
"""
import collections
import gzip
import os
import re

import pyffish as sf

from bert4keras_blog.datafiles import OverlongLine, RejectedLines, text_lines
from bert4keras_blog.errors import BlogError, DataFormatError, IllegalMoveError
from bert4keras_blog.xiangqi.rules import (
    MAX_FEN_CHARS, MAX_PLIES, START_FEN, VARIANT, check_fen, iccs_to_fsf, is_iccs, normalize_iccs)

__all__ = ['Game', 'RESULTS', 'read_games', 'validate_game', 'write_games', 'format_game',
           'rejected_lines']

RESULTS = ('1-0', '0-1', '1/2-1/2', '*')

Game = collections.namedtuple('Game', 'moves result fen', defaults=(None,))

# A game line at the ply limit: '[FEN] ' + 'h2-e2 ' per move + a result.
MAX_LINE_BYTES = MAX_FEN_CHARS + 4 + 6 * MAX_PLIES + 10


def _open(path, mode):
    if str(path).endswith('.gz'):
        return gzip.open(path, mode + 't', encoding='utf-8')
    return open(path, mode, encoding='utf-8')


def validate_game(moves, fen=None, game=None, path=None, line=None):
    """Raises IllegalMoveError at the first move of ``moves`` (from ``fen``)
    that is not ICCS or not legal in its position.

    pyffish checks a whole move list in one call (each call costs about a
    millisecond, whatever its length); only a game that fails is searched,
    by halving, for its first bad move."""
    position = fen or START_FEN
    if len(moves) > MAX_PLIES:
        raise IllegalMoveError(moves[MAX_PLIES], 'the game is longer than %d plies, the limit '
                                                 'a record may hold' % MAX_PLIES,
                               game=game, ply=MAX_PLIES + 1, path=path, line=line)
    for ply, move in enumerate(moves, 1):
        if not is_iccs(move):
            raise IllegalMoveError(move, 'not an ICCS move (file a-i, rank 0-9, e.g. h2e2)',
                                   game=game, ply=ply, path=path, line=line)
    fsf = [iccs_to_fsf(m) for m in moves]

    def legal(count):
        try:
            sf.get_san_moves(VARIANT, position, fsf[:count])
            return True
        except ValueError:
            return False
    if legal(len(fsf)):
        return
    good, bad = 0, len(fsf)  # legal(good) holds, legal(bad) fails
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if legal(middle) else (good, middle)
    raise IllegalMoveError(moves[bad - 1], 'not legal in this position (%s)'
                           % sf.get_fen(VARIANT, position, fsf[:bad - 1]),
                           game=game, ply=bad, path=path, line=line)


def read_games(path, fen=None, strict=False):
    """Reads and checks a record file.

    Args:
        path: the file (``.gz`` allowed).
        fen: the position games without a bracketed FEN start from (default:
            the start position).
        strict: raise the first problem instead of skipping that game.

    Returns:
        (games, problems): the good games as ``Game`` tuples, in file order,
        and an IllegalMoveError for each game skipped (``str()`` names the
        file, line, game and ply).
    """
    games, problems = [], []
    number = 0
    _refuse_other_formats(path)
    if fen is not None:
        check_fen(fen)
    for line_number, text in enumerate(text_lines(path, MAX_LINE_BYTES), 1):
        overlong, text = isinstance(text, OverlongLine), text.strip()
        if not text or text.startswith('#'):
            continue
        number += 1
        try:
            if overlong:
                raise IllegalMoveError('', 'the line is %s, more than a game of %d plies needs'
                                       % (text, MAX_PLIES),
                                       game=number, path=path, line=line_number)
            game = _parse_game(text, fen, number, path, line_number)
        except IllegalMoveError as problem:
            if strict:
                raise
            problems.append(problem)
            continue
        games.append(game)
    return games, problems


def _parse_game(text, fen, number, path, line_number):
    start = fen
    if text.startswith('['):
        start, closed, text = text[1:].partition(']')
        if not closed:
            raise IllegalMoveError('', 'the [FEN] bracket is not closed',
                                   game=number, path=path, line=line_number)
    fields = [normalize_iccs(field) for field in text.split()]
    result = fields.pop() if fields and fields[-1] in RESULTS else '*'
    if not fields:
        raise IllegalMoveError('', 'the line has no moves', game=number, path=path,
                               line=line_number)
    if start != fen:
        try:
            check_fen(start)
        except BlogError as error:
            raise IllegalMoveError(fields[0], str(error), game=number, path=path,
                                   line=line_number) from None
    validate_game(fields, start, game=number, path=path, line=line_number)
    return Game(fields, result, start)


# Tag pairs open a PGN game: [Event "..."], [Game "Chinese Chess"], [FEN "..."].
_PGN_TAG = re.compile(r'^\[[A-Za-z]+\s+"')


def _refuse_other_formats(path):
    """PGN and XQF files are recognised and refused by name."""
    if str(path).endswith('.gz'):
        return
    with open(path, 'rb') as f:
        head = f.read(4096)
    if head[:2] == b'XQ':
        raise DataFormatError(path, None, 'an XQF game file (binary, from XQStudio); it is not '
                                          'read: export the games as ICCS move lists, one game a '
                                          'line (h2e2 h9g7 ... 1-0)')
    for number, line in enumerate(head.decode('utf-8', 'replace').splitlines()[:40], 1):
        if _PGN_TAG.match(line.strip()):
            raise DataFormatError(path, number, 'a PGN tag pair (%s); PGN files are not read: '
                                                'export the games as ICCS move lists, one game a '
                                                'line (h2e2 h9g7 ... 1-0)' % line.strip()[:40])


def rejected_lines(path, games, problems):
    """``read_games``' result as the report every data loader gives."""
    report = RejectedLines(path)
    report.kept = len(games)
    for problem in problems:
        where, text = '%s line %d' % (problem.path, problem.line), str(problem)
        report.add(problem.line, text[len(where):].lstrip(',: ') if text.startswith(where)
                   else text)
    return report


def format_game(game):
    """One Game as its line of a record file (with the newline)."""
    prefix = ['[%s]' % game.fen] if game.fen else []
    return ' '.join(prefix + list(game.moves) + [game.result]) + '\n'


def write_games(path, games, append=False):
    """Writes ``games`` (Game tuples or plain move lists) one a line;
    ``append`` adds them to the end of an existing file. A new file is
    written beside its name and moved into place, so an interrupted write
    never leaves an existing file emptied or half-written."""
    lines = [format_game(g if isinstance(g, Game) else Game(list(g), '*')) for g in games]
    if append:
        with _open(path, 'a') as f:
            f.write(''.join(lines))
        return str(path)
    path = str(path)
    root, ext = (path[:-3], '.gz') if path.endswith('.gz') else (path, '')
    partial = '%s.partial-%d%s' % (root, os.getpid(), ext)  # the same compression
    try:
        with _open(partial, 'w') as f:
            f.write(''.join(lines))
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return str(path)
