"""Property-based tests (hypothesis) of everything that reads untrusted text:
the maths evaluator, the data-line readers, ICCS moves and FENs.

Each property holds for every input hypothesis generates (a few hundred per
property, shrunk to the smallest failing one if any): the functions return
a value or raise our own error naming the problem, never anything else.
"""
import os
import re
from fractions import Fraction

from hypothesis import HealthCheck, given, settings, strategies as st

from bert4keras_blog.datafiles import json_object, read_lines
from bert4keras_blog.errors import BlogError, DataFormatError, MathExpressionError
from bert4keras_blog.mathword import LIMITS, answers_match, evaluate, normalize
from bert4keras_blog.xiangqi import rules
from bert4keras_blog.xiangqi.records import read_games

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# ------------------------------------------------------------ the evaluator

MATH_CHARACTERS = st.sampled_from(list('0123456789.+-*/^%()[]{}:=xX ') +
                                  ['**', '（', '）', '×', '÷', '％', '\x00', '１', 'e', 'é'])


@SETTINGS
@given(st.lists(MATH_CHARACTERS, max_size=40).map(''.join))
def test_evaluate_returns_a_fraction_or_says_why(text):
    try:
        value = evaluate(text)
    except MathExpressionError as error:
        assert error.expression is not None
        return
    assert isinstance(value, Fraction)
    assert max(value.numerator.bit_length(), value.denominator.bit_length()) <= LIMITS['bits']
    assert evaluate(normalize(text)) == value  # the canonical form means the same


@SETTINGS
@given(st.text(max_size=60), st.text(max_size=20))
def test_answers_match_never_raises(predicted, gold):
    assert answers_match(predicted, gold) in (True, False)


def expressions(depth=3):
    """(text, exact value) of random well-formed expressions, with a value
    computed independently by Python's Fraction arithmetic."""
    number = st.integers(0, 999).map(lambda n: (str(n), Fraction(n)))
    if depth == 0:
        return number

    def combine(pair):
        (a, x), op, (b, y) = pair
        if op == '/' and y == 0:
            return a, x
        value = {'+': x + y, '-': x - y, '*': x * y, '/': x / y if y else None}[op]
        return '(%s%s%s)' % (a, op, b), value
    return st.one_of(number, st.tuples(expressions(depth - 1), st.sampled_from('+-*/'),
                                       expressions(depth - 1)).map(combine))


@SETTINGS
@given(expressions())
def test_evaluate_agrees_with_fraction_arithmetic(pair):
    text, value = pair
    assert evaluate(text) == value
    assert evaluate('x=' + text.replace('*', '×').replace('/', '÷')) == value


@SETTINGS
@given(st.integers(2, 99), st.integers(100, 5000))
def test_huge_powers_are_refused_or_exact_never_an_overflow(base, exponent):
    text = '%d^%d' % (base, exponent)
    try:
        value = evaluate(text)
    except MathExpressionError:
        return
    assert value == Fraction(base) ** exponent
    assert answers_match(text, '1') is False


# ------------------------------------------------------------- data lines

@SETTINGS
@given(st.text(max_size=80))
def test_json_object_returns_a_dict_or_a_reason(text):
    try:
        record = json_object(text, fields=('a',))
    except ValueError as error:
        assert str(error)
        return
    assert isinstance(record, dict) and 'a' in record


def read_bytes(folder, raw, read):
    """``read(path)`` of a file holding ``raw``, or None after a
    DataFormatError that names the file."""
    path = os.path.join(str(folder), 'data.txt')
    with open(path, 'wb') as f:
        f.write(raw)
    try:
        return read(path)
    except DataFormatError as error:
        assert str(error).startswith(path)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_read_as_lines_or_a_named_error(tmp_path, raw):
    read = read_bytes(tmp_path, raw, lambda path: read_lines(path, json_object))
    if read is not None:
        records, report = read
        assert report.kept == len(records) and report.lines <= raw.count(b'\n') + 1


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_as_a_game_record_read_or_named(tmp_path, raw):
    read = read_bytes(tmp_path, raw, read_games)
    for game in (read[0] if read is not None else []):
        rules.legal_moves(game.moves, game.fen)  # every game kept is legal


# --------------------------------------------------------------- ICCS moves

SQUARES = st.tuples(st.sampled_from('abcdefghi'), st.integers(0, 9))


@SETTINGS
@given(SQUARES, SQUARES)
def test_iccs_and_fairy_stockfish_spellings_round_trip(start, end):
    move = '%s%d%s%d' % (start + end)
    assert rules.is_iccs(move)
    fsf = rules.iccs_to_fsf(move)
    assert re.match(r'^[a-i](10|[1-9])[a-i](10|[1-9])$', fsf)
    assert rules.fsf_to_iccs(fsf) == move
    assert rules.normalize_iccs(move.upper()) == move
    assert rules.normalize_iccs('%s-%s' % (move[:2].upper(), move[2:])) == move


@SETTINGS
@given(st.text(max_size=8))
def test_normalize_iccs_gives_a_move_or_the_text_back(text):
    normal = rules.normalize_iccs(text)
    assert rules.is_iccs(normal) or normal == text
    for convert in (rules.iccs_to_fsf, rules.fsf_to_iccs):
        try:
            convert(text)
        except ValueError:
            pass


# -------------------------------------------------------------------- FENs

@st.composite
def positions(draw):
    """Legal-looking xiangqi boards: a king in each palace, within the
    piece counts, anything else anywhere."""
    board = [['.'] * 9 for _ in range(10)]  # row 0 is ICCS rank 9
    board[draw(st.integers(7, 9))][draw(st.integers(3, 5))] = 'K'
    board[draw(st.integers(0, 2))][draw(st.integers(3, 5))] = 'k'
    for piece in 'ABNRCPabnrcp':
        for _ in range(draw(st.integers(0, 5 if piece in 'Pp' else 2))):
            row, column = draw(st.integers(0, 9)), draw(st.integers(0, 8))
            if board[row][column] == '.':
                board[row][column] = piece
    rows = [''.join(row) for row in board]
    placement = '/'.join(re.sub(r'\.+', lambda m: str(len(m.group())), row) for row in rows)
    return rows, '%s %s - - 0 1' % (placement, draw(st.sampled_from('wb')))


@SETTINGS
@given(positions())
def test_well_formed_boards_parse_back_to_themselves(position):
    rows, fen = position
    assert rules.parse_fen(fen) == rows
    try:
        rules.check_fen(fen)  # Fairy-Stockfish may still refuse (a king in check, ...)
    except BlogError:
        return
    assert rules.board_rows([], fen) == rows
    legal = rules.legal_moves([], fen)
    assert all(rules.is_iccs(move) for move in legal)


@SETTINGS
@given(positions(), st.integers(0, 120), st.sampled_from(list('KkPpRr0123456789/ -wb') +
                                                          ['10', 'Z', '\x00']))
def test_edited_fens_are_refused_or_consistent(position, place, text):
    _, fen = position
    edited = fen[:place] + text + fen[place + 1:]
    try:
        rows = rules.parse_fen(edited)
    except BlogError as error:
        assert 'not a valid xiangqi FEN' in str(error)
        return
    assert len(rows) == 10 and all(len(row) == 9 for row in rows)
    assert sum(row.count('K') for row in rows) == 1 == sum(row.count('k') for row in rows)
