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
    parse_fen(fen) -> 10 board rows; BlogError names the bad field
    check_fen(fen) -> fen: parse_fen, then Fairy-Stockfish; BlogError if invalid
    MAX_PLIES, MAX_FEN_CHARS: what a record may hold
    legal_moves(moves, fen=None) -> list[str] (ICCS)
    fen_after(moves, fen=None) -> str
    side_to_move(moves, fen=None) -> 'red' | 'black'
    outcome(moves, fen=None) -> None | (result, reason)
    board_rows(moves, fen=None) -> list of 10 strings (ICCS rank 9 first)
    draw_board(moves, fen=None, color=False) -> str, Chinese piece names
"""
import functools
import os
import re
import sys

import pyffish as sf

from bert4keras_blog.errors import BlogError, IllegalMoveError

__all__ = ['VARIANT', 'START_FEN', 'iccs_to_fsf', 'fsf_to_iccs', 'is_iccs', 'normalize_iccs',
           'parse_fen', 'check_fen', 'MAX_PLIES', 'MAX_FEN_CHARS', 'legal_moves', 'fen_after',
           'side_to_move', 'outcome', 'board_rows', 'draw_board']

VARIANT = 'xiangqi'

ICCS_PATTERN = re.compile(r'^([a-i])([0-9])([a-i])([0-9])$')
FSF_PATTERN = re.compile(r'^([a-i])(10|[1-9])([a-i])(10|[1-9])$')

# Fairy-Stockfish's letters: uppercase red, lowercase black.
PIECE_NAMES = {'K': '帥', 'A': '仕', 'B': '相', 'N': '傌', 'R': '俥', 'C': '炮', 'P': '兵',
               'k': '將', 'a': '士', 'b': '象', 'n': '馬', 'r': '車', 'c': '砲', 'p': '卒'}


START_FEN = sf.start_fen(VARIANT)


def normalize_iccs(text):
    """``H2E2``, ``H2-E2`` (how most Chinese game sites write ICCS) ->
    ``h2e2``; anything else comes back unchanged, for the caller to reject."""
    found = re.match(r'^([a-iA-I])([0-9])-?([a-iA-I])([0-9])$', text)
    return ''.join(found.groups()).lower() if found else text


def is_iccs(text):
    """True if ``text`` is written like an ICCS move (legal or not)."""
    return bool(ICCS_PATTERN.match(text))


def iccs_to_fsf(move):
    """``h2e2`` -> ``h3e3``; raises IllegalMoveError (a ValueError) on anything else."""
    found = ICCS_PATTERN.match(move)
    if not found:
        raise IllegalMoveError(move, 'not an ICCS move (file a-i, rank 0-9, twice)')
    a, r1, b, r2 = found.groups()
    return '%s%d%s%d' % (a, int(r1) + 1, b, int(r2) + 1)


def fsf_to_iccs(move):
    """``h3e3`` -> ``h2e2``; raises IllegalMoveError (a ValueError) on anything else."""
    found = FSF_PATTERN.match(move)
    if not found:
        raise IllegalMoveError(move, 'not a Fairy-Stockfish move (file a-i, rank 1-10, '
                                     'twice)')
    a, r1, b, r2 = found.groups()
    return '%s%d%s%d' % (a, int(r1) - 1, b, int(r2) - 1)


# Bounds on what a record may hold before any of it reaches native code:
# real games end well inside 600 plies (Fairy-Stockfish's move-count rule
# draws long before), and a FEN with every field spelled out is under 100
# characters. Longer input is refused, so memory stays bounded.
MAX_PLIES = 1000
MAX_FEN_CHARS = 120
_PIECE_LIMITS = {'k': 1, 'a': 2, 'b': 2, 'n': 2, 'r': 2, 'c': 2, 'p': 5}
_RANK = re.compile(r'^(?:[KABNRCPkabnrcp]|[1-9](?![0-9]))+$')


def parse_fen(fen):
    """Checks a xiangqi FEN field by field, in Python, before Fairy-Stockfish
    sees it: pyffish's own check accepts some malformed boards (a rank of 10
    files) and then corrupts memory.

    Returns:
        the board as 10 strings of 9 characters (FEN letters, '.' empty),
        ICCS rank 9 first.

    Raises:
        BlogError naming the field (rank, piece, side to move, counters).
    """
    def bad(reason):
        raise BlogError('not a valid xiangqi FEN (%s): %r' % (reason, _shown(fen)))
    if not isinstance(fen, str):
        bad('not text')
    if len(fen) > MAX_FEN_CHARS:
        bad('longer than %d characters' % MAX_FEN_CHARS)
    fields = fen.split()
    if not 2 <= len(fields) <= 6:
        bad('%d fields; a FEN has the board, the side to move and up to four counters'
            % len(fields))
    ranks = fields[0].split('/')
    if len(ranks) != 10:
        bad('%d ranks, xiangqi has 10' % len(ranks))
    rows = []
    for index, rank in enumerate(ranks):
        if not _RANK.match(rank):
            bad('rank %d (%r): only the letters KABNRCP/kabnrcp and the digits 1-9, '
                'one digit at a time' % (9 - index, rank))
        row = re.sub(r'[1-9]', lambda m: '.' * int(m.group()), rank)
        if len(row) != 9:
            bad('rank %d (%r) covers %d files, xiangqi has 9' % (9 - index, rank, len(row)))
        rows.append(row)
    board = ''.join(rows)
    for letter, limit in _PIECE_LIMITS.items():
        for piece, side in ((letter.upper(), 'red'), (letter, 'black')):
            count = board.count(piece)
            if count > limit or (letter == 'k' and count != 1):
                bad('%d %s %r; %s %d' % (count, side, piece,
                                          'exactly' if letter == 'k' else 'at most', limit))
    for piece, first_rank in (('K', 0), ('k', 7)):  # ICCS ranks of the palaces
        rank = 9 - board.index(piece) // 9
        file = board.index(piece) % 9
        if not (3 <= file <= 5 and first_rank <= rank <= first_rank + 2):
            bad('the %s king is outside its palace' % ('red' if piece == 'K' else 'black'))
    if fields[1] not in ('w', 'b'):
        bad("side to move %r; 'w' (red) or 'b' (black)" % fields[1][:10])
    for name, value in zip(('castling', 'en passant'), fields[2:4]):
        if value != '-':
            bad("%s field %r; xiangqi has none, write '-'" % (name, value[:10]))
    for name, value in zip(('half-move clock', 'move number'), fields[4:6]):
        if not value.isdigit() or len(value) > 4:
            bad('%s %r; a number below 10000' % (name, value[:10]))
    return rows


def _shown(text):
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= 80 else text[:77] + '...'


def check_fen(fen):
    """Returns ``fen`` if our strict parser and then Fairy-Stockfish accept
    it as a xiangqi position, else raises BlogError."""
    parse_fen(fen)
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)  # pyffish prints its reason on the C stderr; ours is clearer
    try:
        code = sf.validate_fen(fen, VARIANT)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    if code != sf.FEN_OK:
        raise BlogError('not a valid xiangqi FEN (Fairy-Stockfish code %d): %r' % (code, fen))
    # Fairy-Stockfish does not ask whether the side that just moved left its
    # king in check; it then lists the king's capture, and playing that
    # crashes it. Asked of the position with the other side to move.
    fields = fen.split()
    other = ' '.join([fields[0], 'b' if fields[1] == 'w' else 'w'] + fields[2:])
    if sf.gives_check(VARIANT, other, []):
        raise BlogError('not a valid xiangqi FEN (the side not to move, %s, is in check): %r'
                        % ('red' if fields[1] == 'b' else 'black', _shown(fen)))
    return fen


@functools.lru_cache(maxsize=256)
def _checked_fen(fen):
    return check_fen(fen)


def _position(moves, fen):
    """(fen, Fairy-Stockfish moves), checked before they reach native code."""
    fen = START_FEN if fen is None else _checked_fen(fen)
    if len(moves) > MAX_PLIES:
        raise BlogError('%d moves; games are limited to %d plies' % (len(moves), MAX_PLIES))
    return fen, [iccs_to_fsf(m) for m in moves]


def legal_moves(moves, fen=None):
    """Legal moves (ICCS, sorted) after ``moves`` (ICCS) from ``fen``
    (default: the start position)."""
    fen, history = _position(moves, fen)
    try:
        found = sf.legal_moves(VARIANT, fen, history)
    except (ValueError, SystemError):  # pyffish's answer to an illegal move
        raise BlogError('the moves %s are not legal from %s' % (' '.join(moves)[:200], fen)) \
            from None
    return sorted(fsf_to_iccs(m) for m in found)


def fen_after(moves, fen=None):
    """The FEN of the position after ``moves``."""
    fen, history = _position(moves, fen)
    return sf.get_fen(VARIANT, fen, history)


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
    if legal_moves(moves, fen):
        fen, history = _position(moves, fen)
        ended, value = sf.is_immediate_game_end(VARIANT, fen, history)
        if not ended:
            ended, value = sf.is_optional_game_end(VARIANT, fen, history)
        if not ended:
            return None
        reason = 'rule'
    else:
        fen, history = _position(moves, fen)
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
