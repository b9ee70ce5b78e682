"""Xiangqi rules, from Fairy-Stockfish (``pyffish``), spoken in ICCS.

Why pyffish: it is the rules code of the engine we play against (one
definition of legality, check, perpetual-check and repetition for both), it
is C++ (a legal-move list costs microseconds), and its move generator is
verified here by perft 44 / 1,920 / 79,666 from the start position. The pure
Python ``cchess`` package would be slower and a second opinion on the rules.

Fairy-Stockfish numbers the ranks 1-10 (``h3e3``, ``a10a9``); ICCS numbers
them 0-9 (``h2e2``, ``a9a8``). Files are a-i in both, red at the bottom. The
conversion lives here and nowhere else: everything outside this module speaks
ICCS.

Public API:
    VARIANT, START_FEN
    iccs_to_fsf(move) -> str, fsf_to_iccs(move) -> str
    is_iccs(text) -> bool
    normalize_iccs(text) -> str: upper-case and dashed ICCS made canonical
    check_fen(fen) -> fen, raises BlogError if invalid
    legal_moves(moves, fen=None) -> list[str] (ICCS)
    fen_after(moves, fen=None) -> str
    side_to_move(moves, fen=None) -> 'red' | 'black'
    outcome(moves, fen=None) -> None | (result, reason)
    board_rows(moves, fen=None) -> list of 10 strings (ICCS rank 9 first)
    draw_board(moves, fen=None, color=False) -> str, Chinese piece names
"""
import re

from bert4keras_blog.errors import BlogError

__all__ = ['VARIANT', 'START_FEN', 'iccs_to_fsf', 'fsf_to_iccs', 'is_iccs', 'normalize_iccs',
           'check_fen', 'legal_moves', 'fen_after', 'side_to_move', 'outcome', 'board_rows', 'draw_board']

VARIANT = 'xiangqi'

try:
    import pyffish as _sf
except ImportError:  # pragma: no cover - pyffish is in requirements/stack.txt
    _sf = None

ICCS_PATTERN = re.compile(r'^([a-i])([0-9])([a-i])([0-9])$')
FSF_PATTERN = re.compile(r'^([a-i])(10|[1-9])([a-i])(10|[1-9])$')

# Fairy-Stockfish's letters: uppercase red, lowercase black.
PIECE_NAMES = {'K': '帥', 'A': '仕', 'B': '相', 'N': '傌', 'R': '俥', 'C': '炮', 'P': '兵',
               'k': '將', 'a': '士', 'b': '象', 'n': '馬', 'r': '車', 'c': '砲', 'p': '卒'}


def _rules():
    if _sf is None:
        raise BlogError('xiangqi rules need pyffish: pip install pyffish')
    return _sf


START_FEN = _sf.start_fen(VARIANT) if _sf is not None else \
    'rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w - - 0 1'


def normalize_iccs(text):
    """``H2E2``, ``H2-E2`` (how most Chinese game sites write ICCS) ->
    ``h2e2``; anything else comes back unchanged, for the caller to reject."""
    found = re.match(r'^([a-iA-I])([0-9])-?([a-iA-I])([0-9])$', text)
    return ''.join(found.groups()).lower() if found else text


def is_iccs(text):
    """True if ``text`` is written like an ICCS move (legal or not)."""
    return bool(ICCS_PATTERN.match(text))


def iccs_to_fsf(move):
    """``h2e2`` -> ``h3e3``; raises ValueError on anything else."""
    found = ICCS_PATTERN.match(move)
    if not found:
        raise ValueError('%r is not an ICCS move (file a-i, rank 0-9, twice)' % (move,))
    a, r1, b, r2 = found.groups()
    return '%s%d%s%d' % (a, int(r1) + 1, b, int(r2) + 1)


def fsf_to_iccs(move):
    """``h3e3`` -> ``h2e2``; raises ValueError on anything else."""
    found = FSF_PATTERN.match(move)
    if not found:
        raise ValueError('%r is not a Fairy-Stockfish move (file a-i, rank 1-10, twice)'
                         % (move,))
    a, r1, b, r2 = found.groups()
    return '%s%d%s%d' % (a, int(r1) - 1, b, int(r2) - 1)


def check_fen(fen):
    """Returns ``fen`` if Fairy-Stockfish accepts it as a xiangqi position,
    else raises BlogError."""
    import os
    import sys
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)  # pyffish prints its reason on the C stderr; ours is clearer
    try:
        code = _rules().validate_fen(fen, VARIANT)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    if code != _sf.FEN_OK:
        raise BlogError('not a valid xiangqi FEN (Fairy-Stockfish code %d): %r' % (code, fen))
    return fen


def _fsf(moves):
    return [iccs_to_fsf(m) for m in moves]


def legal_moves(moves, fen=None):
    """Legal moves (ICCS, sorted) after ``moves`` (ICCS) from ``fen``
    (default: the start position)."""
    found = _rules().legal_moves(VARIANT, fen or START_FEN, _fsf(moves))
    return sorted(fsf_to_iccs(m) for m in found)


def fen_after(moves, fen=None):
    """The FEN of the position after ``moves``."""
    return _rules().get_fen(VARIANT, fen or START_FEN, _fsf(moves))


def side_to_move(moves, fen=None):
    """'red' or 'black'."""
    first = (fen or START_FEN).split()[1]
    red_first = first == 'w'
    return 'red' if red_first == (len(moves) % 2 == 0) else 'black'


def outcome(moves, fen=None):
    """None while the game goes on, else ``(result, reason)``: result is
    '1-0' (red won), '0-1' or '1/2-1/2'; reason is 'checkmate', 'stalemate'
    (a loss in xiangqi) or 'rule' (repetition, perpetual check or the
    move-count rule, as Fairy-Stockfish decides them)."""
    sf = _rules()
    fen = fen or START_FEN
    history = _fsf(moves)
    if sf.legal_moves(VARIANT, fen, history):
        ended, value = sf.is_immediate_game_end(VARIANT, fen, history)
        if not ended:
            ended, value = sf.is_optional_game_end(VARIANT, fen, history)
        if not ended:
            return None
        reason = 'rule'
    else:
        value = sf.game_result(VARIANT, fen, history)
        reason = 'checkmate' if sf.gives_check(VARIANT, fen, history) else 'stalemate'
    if value == 0:
        return '1/2-1/2', reason
    mover_won = value > 0
    red_won = mover_won == (side_to_move(moves, fen) == 'red')
    return ('1-0' if red_won else '0-1'), reason


def board_rows(moves, fen=None):
    """The board as 10 strings of 9 characters (FEN letters, '.' empty),
    ICCS rank 9 (black's back rank) first."""
    placement = fen_after(moves, fen).split()[0]
    rows = []
    for rank in placement.split('/'):
        rows.append(re.sub(r'\d+', lambda m: '.' * int(m.group()), rank))
    return rows


def draw_board(moves, fen=None, color=False, last_move=None):
    """The position in Chinese piece names, ranks 9..0 down, files a..i
    across, the river between ranks 5 and 4. ``color`` paints red pieces
    red (ANSI); ``last_move`` (ICCS) is marked with brackets."""
    marked = set()
    if last_move:
        marked = {(last_move[0], int(last_move[1])), (last_move[2], int(last_move[3]))}
    files = 'abcdefghi'
    header = '   ' + '   '.join(files)
    lines = [header]
    for i, row in enumerate(board_rows(moves, fen)):
        rank = 9 - i
        cells = []
        for file, piece in zip(files, row):
            text = PIECE_NAMES.get(piece, '十')
            if color and piece.isupper():
                text = '\033[31m%s\033[0m' % text
            cells.append(('[%s]' if (file, rank) in marked else ' %s ') % text)
        lines.append('%d ' % rank + ''.join(cells).rstrip() + ' %d' % rank)
        if rank == 5:
            lines.append('   ' + '～' * 4 + ' 楚河    漢界 ' + '～' * 4)
    lines.append(header)
    return '\n'.join(lines)
