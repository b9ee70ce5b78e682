"""Expressions and answers in one canonical form, and answers compared
exactly (``expression`` parses and evaluates).

Public API:
    normalize(text) -> str: the expression with only the brackets it needs.
    to_text(value) -> str: a Fraction as ape210k writes answers.
    answers_match(predicted, gold) -> bool.
"""
from fractions import Fraction

from bert4keras_blog.errors import MathExpressionError
from bert4keras_blog.mathword.expression import evaluate, parse

__all__ = ['normalize', 'to_text', 'answers_match']

# How tightly each operator binds: a child needs brackets below its parent.
_PRECEDENCE = {'+': 1, '-': 1, '*': 2, '/': 2, 'neg': 3, '^': 4, '%': 5}


def _format(node, parent=None, side=None):
    kind = node[0]
    if kind == 'num':
        text, own = node[1], 6
    elif kind == 'mixed':
        text, own = '%s(%s/%s)' % node[1:4], 6
    elif kind == 'pct':
        text, own = _format(node[1], '%', 'left') + '%', 5
    elif kind == 'neg':
        text, own = '-' + _format(node[1], 'neg', 'right'), 3
    else:
        op = node[1]
        text = _format(node[2], op, 'left') + op + _format(node[3], op, 'right')
        own = _PRECEDENCE[op]
    if parent is None:
        return text
    need = _PRECEDENCE[parent]
    if parent == '^':
        brackets = own <= need if side == 'left' else own < need
    elif parent in ('%', 'neg'):
        brackets = own < (6 if parent == '%' else need)
    else:
        brackets = own < need or (side == 'right' and own == need and parent in ('-', '/'))
    return '(' + text + ')' if brackets else text


def normalize(text):
    """The canonical form of an expression: ASCII operators, ``^`` for powers,
    ``/`` for ``:``, no ``x=``, only the brackets precedence needs.

    The tree is kept (``a+(b+c)`` becomes ``a+b+c`` only because that is the
    same value exactly); numbers, percentages and mixed fractions are
    written as given.

    Example:
    ```python
    from bert4keras_blog.mathword import normalize
    assert normalize('x=（（150×20％））÷5%-150') == '150*20%/5%-150'
    ```
    """
    return _format(parse(text))


def to_text(value):
    """A Fraction as an exact decimal when it terminates, else ``p/q``."""
    value = Fraction(value)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return '%d/%d' % (value.numerator, value.denominator)
    if value.denominator == 1:
        return str(value.numerator)
    digits = 0
    scaled = value
    while scaled.denominator != 1:
        scaled *= 10
        digits += 1
    sign = '-' if scaled < 0 else ''
    magnitude = str(abs(scaled.numerator)).rjust(digits + 1, '0')
    return '%s%s.%s' % (sign, magnitude[:-digits], magnitude[-digits:])


def answers_match(predicted, gold):
    """Whether a predicted answer equals the gold one.

    Both may be expressions or numbers in ape210k's forms (``450``,
    ``1(1/2)``, ``50%``, ``3/4``, decimals). Exactly equal values match;
    otherwise they match when they agree to 6 decimal places, the blog post's
    rule, which accepts gold answers that were written rounded.

    Returns:
        bool; False when either side does not evaluate.
    """
    try:
        a = predicted if isinstance(predicted, Fraction) else evaluate(str(predicted))
        b = gold if isinstance(gold, Fraction) else evaluate(str(gold))
    except MathExpressionError:
        return False
    # Rounded as fractions: float() overflows on values such as 3^1000,
    # which evaluate's limits allow.
    return a == b or round(a, 6) == round(b, 6)
