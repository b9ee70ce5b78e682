"""Exact, safe arithmetic for ape210k-style expressions.

The text is tokenised and parsed by a small recursive-descent parser into a
tree of numbers and operators, then evaluated with ``fractions.Fraction``.
Nothing is ever passed to ``eval``/``exec``/``compile``, and every input is
bounded (length, tokens, nesting, literal size, exponent and result size), so
hostile text fails fast with ``MathExpressionError`` naming the position.

Grammar (after mapping full-width characters and ``×÷：`` to ASCII)::

    expression := ['x' '='] sum
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/' | ':') unary)*
    unary      := ('-' | '+') unary | power
    power      := postfix [('^' | '**') unary]          (right-associative)
    postfix    := atom '%'*
    atom       := number ['(' number '/' number ')']   (mixed fraction a(b/c))
                | '(' sum ')'                          ([] and {} work too)

Public API:
    parse(text) -> tree; evaluate(text) -> Fraction.
    LIMITS: the bounds the evaluator enforces (characters, tokens, depth, ...).
(``answers`` normalises expressions and compares answers.)
"""
import re
from fractions import Fraction
from math import gcd

from bert4keras_blog.errors import MathExpressionError

__all__ = ['parse', 'evaluate', 'LIMITS']

LIMITS = {
    'characters': 1000,  # longer text is refused before tokenising
    'tokens': 400,
    'depth': 60,  # brackets and unary operators nested
    'digits': 40,  # per number literal
    'exponent': 1000,  # |integer exponent|
    'bits': 16384,  # numerator or denominator of any intermediate result
}

_FULL_WIDTH = str.maketrans(
    '０１２３４５６７８９．（）［］｛｝＋－×＊÷／：％＝ｘＸ＾，',
    '0123456789.()[]{}+-**//:%=xX^,')
_OPEN, _CLOSE = ('(', '[', '{'), (')', ']', '}')
_TOKEN = re.compile(r'\s*(?:(\d+(?:\.\d*)?|\.\d+)|(\*\*|[-+*/:^%()\[\]{}=xX]))')


def _fail(text, position, reason):
    raise MathExpressionError(text, position, reason)


def _tokenise(text):
    if not isinstance(text, str):
        raise MathExpressionError(repr(text)[:50], 0, 'expected a string, got %s'
                                  % type(text).__name__)
    if len(text) > LIMITS['characters']:
        _fail(text[:50] + '...', LIMITS['characters'],
              'longer than %d characters' % LIMITS['characters'])
    mapped = text.translate(_FULL_WIDTH)
    tokens, position = [], 0
    while position < len(mapped):
        if mapped[position:].strip() == '':
            break
        match = _TOKEN.match(mapped, position)
        if match is None:
            start = position + len(mapped[position:]) - len(mapped[position:].lstrip())
            _fail(text, start, 'unexpected character %r' % mapped[start])
        start = match.start(1) if match.group(1) else match.start(2)
        if match.group(1):
            if len(match.group(1).replace('.', '')) > LIMITS['digits']:
                _fail(text, start, 'number longer than %d digits' % LIMITS['digits'])
            tokens.append(('num', match.group(1), start))
        else:
            tokens.append(('op', match.group(2), start))
        if len(tokens) > LIMITS['tokens']:
            _fail(text, start, 'more than %d tokens' % LIMITS['tokens'])
        position = match.end()
    return tokens


class _Parser(object):
    def __init__(self, text):
        self.text = text
        self.tokens = _tokenise(text)
        self.i = 0
        self.depth = 0

    def peek(self, offset=0):
        i = self.i + offset
        return self.tokens[i] if i < len(self.tokens) else ('end', '', len(self.text))

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def expect(self, values, what):
        kind, value, position = self.take()
        if kind != 'op' or value not in values:
            _fail(self.text, position, '%s expected, found %s' % (
                what, repr(value) if value else 'the end'))
        return value

    def deeper(self, position):
        self.depth += 1
        if self.depth > LIMITS['depth']:
            _fail(self.text, position, 'nested more than %d deep' % LIMITS['depth'])

    def parse(self):
        if self.peek()[1] in ('x', 'X') and self.peek(1)[1] == '=':
            self.i += 2
        tree = self.sum()
        kind, value, position = self.peek()
        if kind != 'end':
            _fail(self.text, position, 'unexpected %r' % value)
        return tree

    def sum(self):
        left = self.product()
        while self.peek()[1] in ('+', '-'):
            _, op, position = self.take()
            left = ('bin', op, left, self.product(), position)
        return left

    def product(self):
        left = self.unary()
        while self.peek()[1] in ('*', '/', ':'):
            _, op, position = self.take()
            left = ('bin', '/' if op == ':' else op, left, self.unary(), position)
        return left

    def unary(self):
        kind, value, position = self.peek()
        if kind == 'op' and value in ('-', '+'):
            self.take()
            self.deeper(position)
            operand = self.unary()
            self.depth -= 1
            return ('neg', operand, position) if value == '-' else operand
        return self.power()

    def power(self):
        base = self.postfix()
        if self.peek()[1] in ('^', '**'):
            _, _, position = self.take()
            self.deeper(position)
            exponent = self.unary()
            self.depth -= 1
            return ('bin', '^', base, exponent, position)
        return base

    def postfix(self):
        node = self.atom()
        while self.peek()[1] == '%':
            _, _, position = self.take()
            node = ('pct', node, position)
        return node

    def atom(self):
        kind, value, position = self.take()
        if kind == 'num':
            if self.peek()[1] == '(' and self.peek(1)[0] == 'num' and self.peek(2)[1] == '/' \
                    and self.peek(3)[0] == 'num' and self.peek(4)[1] == ')':
                whole, numerator, denominator = value, self.peek(1)[1], self.peek(3)[1]
                self.i += 5
                return ('mixed', whole, numerator, denominator, position)
            if self.peek()[1] in _OPEN:
                _fail(self.text, self.peek()[2], 'a number cannot be followed by a bracket '
                      '(write the multiplication; a(b/c) is a mixed fraction)')
            return ('num', value, position)
        if kind == 'op' and value in _OPEN:
            self.deeper(position)
            inner = self.sum()
            self.expect(_CLOSE[_OPEN.index(value)], 'closing %r' % _CLOSE[_OPEN.index(value)])
            self.depth -= 1
            return inner
        _fail(self.text, position, 'number or bracket expected, found %s'
              % (repr(value) if value else 'the end'))


def parse(text):
    """Parses ``text`` into a tree; raises MathExpressionError when malformed."""
    return _Parser(text).parse()


def _check_size(text, value, position):
    limit = LIMITS['bits']
    if value.numerator.bit_length() > limit or value.denominator.bit_length() > limit:
        _fail(text, position, 'intermediate result larger than %d bits' % limit)
    return value


def _exact_root(value, degree):
    """The exact ``degree``-th root of a non-negative Fraction, or None."""
    def root(n):
        r = round(n ** (1.0 / degree)) if n.bit_length() < 1000 else None
        if r is None:
            return None
        for candidate in (r - 1, r, r + 1):
            if candidate >= 0 and candidate ** degree == n:
                return candidate
        return None
    num, den = root(value.numerator), root(value.denominator)
    return None if num is None or den is None else Fraction(num, den)


def _power(text, base, exponent, position):
    if exponent.denominator != 1:
        if exponent.denominator > 12 or base < 0:
            _fail(text, position, 'power with exponent %s has no exact rational value' % exponent)
        root = _exact_root(base, exponent.denominator)
        if root is None:
            _fail(text, position, 'power with exponent %s has no exact rational value' % exponent)
        base, exponent = root, Fraction(exponent.numerator)
    e = exponent.numerator
    if abs(e) > LIMITS['exponent']:
        _fail(text, position, 'exponent %d is larger than %d' % (e, LIMITS['exponent']))
    size = max(base.numerator.bit_length(), base.denominator.bit_length())
    if size * abs(e) > LIMITS['bits']:
        _fail(text, position, 'power result larger than %d bits' % LIMITS['bits'])
    if base == 0 and e < 0:
        _fail(text, position, 'zero to a negative power')
    return base ** e


def _value(text, node):
    kind = node[0]
    if kind == 'num':
        return Fraction(node[1])
    if kind == 'mixed':
        _, whole, numerator, denominator, position = node
        if Fraction(denominator) == 0:
            _fail(text, position, 'mixed fraction with denominator 0')
        return Fraction(whole) + Fraction(numerator) / Fraction(denominator)
    if kind == 'pct':
        return _value(text, node[1]) / 100
    if kind == 'neg':
        return -_value(text, node[1])
    _, op, left, right, position = node
    a, b = _value(text, left), _value(text, right)
    if op == '+':
        result = a + b
    elif op == '-':
        result = a - b
    elif op == '*':
        result = a * b
    elif op == '/':
        if b == 0:
            _fail(text, position, 'division by zero')
        result = a / b
    else:
        result = _power(text, a, b, position)
    return _check_size(text, result, position)


def _evaluate_tree(text):
    """Parse tree then value: slow, but every error names its position."""
    return _value(text, parse(text))


class _Slow(Exception):
    """The fast evaluator met something it leaves to the tree evaluator."""


_FAST_TOKEN = re.compile(r'(\d+(?:\.\d*)?|\.\d+)|(\*\*|[-+*/:^%()\[\]{}])|(\S)')
_BINARY = {'+': (1, False), '-': (1, False), '*': (2, False), '/': (2, False),
           ':': (2, False), '^': (4, True), '**': (4, True)}
_PAIRS = {'(': ')', '[': ']', '{': '}'}
_REDUCE_BITS = 256


def _number(literal):
    if '.' in literal:
        whole, _, fraction = literal.partition('.')
        return int(whole or '0') * 10 ** len(fraction) + int(fraction or '0'), 10 ** len(fraction)
    return int(literal), 1


def _small(n, d):
    """Reduces (n, d) when it grows, and refuses results over the size limit."""
    if d.bit_length() > _REDUCE_BITS or n.bit_length() > _REDUCE_BITS:
        g = gcd(n, d)
        n, d = n // g, d // g
        if n.bit_length() > LIMITS['bits'] or d.bit_length() > LIMITS['bits']:
            raise _Slow()
    return n, d


def _apply(op, values):
    bn, bd = values.pop()
    if op == 'neg':
        values.append((-bn, bd))
        return
    an, ad = values.pop()
    if op == '+':
        values.append(_small(an * bd + bn * ad, ad * bd))
    elif op == '-':
        values.append(_small(an * bd - bn * ad, ad * bd))
    elif op == '*':
        values.append(_small(an * bn, ad * bd))
    elif op in ('/', ':'):
        if bn == 0:
            raise _Slow()
        values.append(_small(an * bd, ad * bn) if bn > 0 else _small(-an * bd, -ad * bn))
    else:  # power: integer exponents here, roots and limits in _power
        if bd != 1 or abs(bn) > LIMITS['exponent'] or (an == 0 and bn < 0) \
                or max(an.bit_length(), ad.bit_length()) * abs(bn) > LIMITS['bits']:
            raise _Slow()
        if bn >= 0:
            values.append((an ** bn, ad ** bn))
        else:
            values.append((ad ** -bn, an ** -bn) if an > 0 else (-(ad ** -bn), -(an ** -bn)))


def _evaluate_fast(mapped):
    """Shunting-yard over (numerator, denominator) integer pairs."""
    tokens = _FAST_TOKEN.findall(mapped)
    if len(tokens) > LIMITS['tokens']:
        raise _Slow()
    values, ops = [], []  # ops: operator strings or opening brackets
    expect_operand, depth, i, n_tokens = True, 0, 0, len(tokens)
    while i < n_tokens:
        number, op, bad = tokens[i]
        if bad:
            raise _Slow()
        if expect_operand:
            if number:
                if len(number) > LIMITS['digits']:
                    raise _Slow()
                if i + 5 < n_tokens and tokens[i + 1][1] == '(' and tokens[i + 2][0] \
                        and tokens[i + 3][1] == '/' and tokens[i + 4][0] and tokens[i + 5][1] == ')':
                    (wn, wd), (fn, fd), (gn, gd) = (_number(number), _number(tokens[i + 2][0]),
                                                    _number(tokens[i + 4][0]))
                    if gn == 0:
                        raise _Slow()
                    values.append(_small(wn * fd * gn + fn * gd * wd, wd * fd * gn))
                    i += 6
                    expect_operand = False
                    continue
                if i + 1 < n_tokens and tokens[i + 1][1] in _PAIRS:
                    raise _Slow()
                values.append(_number(number))
                expect_operand = False
            elif op == '-' or op == '+':
                depth += 1
                if depth > LIMITS['depth']:
                    raise _Slow()
                if op == '-':
                    ops.append('neg')
            elif op in _PAIRS:
                depth += 1
                if depth > LIMITS['depth']:
                    raise _Slow()
                ops.append(op)
            else:
                raise _Slow()
        elif op == '%':
            vn, vd = values.pop()
            values.append((vn, vd * 100))
        elif op in _BINARY:
            precedence, right = _BINARY[op]
            while ops and ops[-1] not in _PAIRS:
                top = ops[-1]
                top_precedence = 3 if top == 'neg' else _BINARY[top][0]
                if top_precedence > precedence or (top_precedence == precedence and not right):
                    _apply(ops.pop(), values)
                else:
                    break
            ops.append('^' if op == '**' else op)
            expect_operand = True
        elif op in (')', ']', '}'):
            while ops and ops[-1] not in _PAIRS:
                _apply(ops.pop(), values)
            if not ops or _PAIRS[ops.pop()] != op:
                raise _Slow()
        else:
            raise _Slow()
        i += 1
    if expect_operand:
        raise _Slow()
    while ops:
        top = ops.pop()
        if top in _PAIRS:
            raise _Slow()
        _apply(top, values)
    n, d = values[0]
    return Fraction(n, d)


def evaluate(text):
    """The exact value of an arithmetic expression.

    Accepts the ape210k conventions (``x=`` prefix, ``20%``, mixed fractions
    ``3(1/2)``, ``:`` for division, ``^``/``**`` for powers, full-width
    characters, ``[]``/``{}`` brackets).

    Args:
        text: str. The expression.

    Returns:
        fractions.Fraction.

    Raises:
        MathExpressionError: malformed or unsafe input, division by zero, a
            power without an exact rational value or too large; the message
            names the position.

    Example:
    ```python
    from bert4keras_blog.mathword import evaluate
    assert evaluate('x=150*20%/5%-150') == 450
    assert evaluate('1(1/2)+（2÷4）') == 2
    ```
    """
    # A fast shunting-yard pass handles well-formed input; anything it
    # declines (errors, fractional powers) goes to the tree evaluator, which
    # gives the exact message and position.
    if isinstance(text, str) and len(text) <= LIMITS['characters']:
        mapped = text.translate(_FULL_WIDTH)
        stripped = mapped.lstrip()
        if stripped[:1] in ('x', 'X'):
            rest = stripped[1:].lstrip()
            mapped = rest[1:] if rest[:1] == '=' else '\x00'
        try:
            return _evaluate_fast(mapped)
        except (_Slow, IndexError):
            pass
    return _evaluate_tree(text)
