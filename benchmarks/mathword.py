"""Safe exact evaluation (mathword.evaluate) against the eval-based way the
blog post's script evaluates expressions, on the same 10,000 ape210k-style
expressions, measured in the same run.

The reference rewrites ape210k notation with regular expressions (mixed
fractions, percentages, ``^``) and hands the text to Python's ``eval``: it
runs arbitrary code and hangs on ``9**9**9**9``, which is why the library
does not do it. It is here only as the speed baseline.

Usage: python benchmarks/mathword.py [--quick]
Last line: ratio=<our expressions/s divided by eval's>.
"""
import argparse
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from bert4keras_blog.mathword import evaluate, generate  # noqa: E402


def eval_reference(expression):
    """The unsafe baseline: regex rewriting, then eval (float arithmetic)."""
    text = expression[2:] if expression.startswith('x=') else expression
    text = re.sub(r'(\d+)\((\d+)/(\d+)\)', r'(\1+\2/\3)', text)
    text = re.sub(r'(\d+(?:\.\d+)?)%', r'(\1/100)', text)
    return eval(text.replace('^', '**'))  # noqa: S307  (the baseline being measured)


def random_expression(rng, depth=0):
    """ape210k-like pieces: integers, decimals, percentages, mixed fractions."""
    if depth >= 3 or (depth > 0 and rng.random() < 0.3):
        kind = rng.integers(10)
        if kind < 5:
            return str(int(rng.integers(1, 1000)))
        if kind < 7:
            return '%d.%d' % (rng.integers(0, 100), rng.integers(1, 100))
        if kind < 9:
            return '%d%%' % rng.integers(1, 100)
        return '%d(%d/%d)' % (rng.integers(1, 10), rng.integers(1, 5), rng.integers(6, 10))
    op = '+-*/'[int(rng.integers(4))]
    left, right = random_expression(rng, depth + 1), random_expression(rng, depth + 1)
    text = '%s%s%s' % (left, op, right)
    return '(%s)' % text if depth and rng.random() < 0.5 else text


def expressions(n, seed=0):
    rng = np.random.default_rng(seed)
    half = n // 2
    from_templates = [r['equation'] for r in generate(half, seed=seed, segment=False)]
    return from_templates + ['x=' + random_expression(rng) for _ in range(n - half)]


def rate(function, items, repeat):
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='2,000 expressions')
    args = parser.parse_args(argv)
    items = expressions(2000 if args.quick else 10000)
    agree = sum(abs(float(evaluate(e)) - eval_reference(e)) <= 1e-9 * max(1, abs(eval_reference(e)))
                for e in items)
    ours = rate(evaluate, items, 3)
    baseline = rate(eval_reference, items, 3)
    print('%d expressions (half from the synthetic templates, half random ape210k-style)'
          % len(items))
    print('%-26s %14s' % ('evaluator', 'expressions/s'))
    print('%-26s %14.0f' % ('eval-based (unsafe)', baseline))
    print('%-26s %14.0f' % ('mathword.evaluate (exact)', ours))
    print('values agree on %d of %d' % (agree, len(items)))
    print('ratio=%.2f' % (ours / baseline))


if __name__ == '__main__':
    main()
