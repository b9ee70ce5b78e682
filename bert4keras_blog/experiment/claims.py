"""A claim over several seeds: each arm's mean with a 95% interval, and the
difference between two arms with its interval, so that a table can say
whether the difference stands out from run-to-run noise.

Public API:
    Estimate(mean, low, high, n): a mean and its interval.
    interval(values, level=0.95, method='t', seed=0) -> Estimate: Student-t
        interval of the mean, or ('bootstrap') the percentile bootstrap.
    difference(a, b, paired=False, level=0.95) -> Estimate of mean(a) - mean(b):
        per-seed differences when ``paired`` (same seeds in both arms), else
        Welch's interval (unequal variances).
    proportion(successes, n, level=0.95) -> Estimate: a share of ``n``
        independent trials (held-out problems, games) with Wilson's interval,
        for a single run's accuracy.
    distinguishable(estimate) -> bool: the interval excludes 0.
    describe(estimate, digits=4) -> str: ``0.1234 [0.1000, 0.1468] (n=5)``.
    compare(claim, a, b, values_a, values_b, paired=True, over='seeds') -> dict:
        one row of a claims table (each arm's mean and interval, the
        difference a − b with its interval, whether it is distinguishable
        from zero, and what the values are over: 'seeds', or 'examples' when
        one run pairs the arms example by example); this is what the
        examples print and save in metrics.json.
    table(rows, digits=4) -> str: those rows as an aligned text table.
    cells(row, digits=4) -> tuple of str: one row's cells, under HEADER (the
        text table and the docs' markdown tables share them).

Example:
```python
from bert4keras_blog.experiment.claims import difference, distinguishable, interval
teacher_forcing = [0.755, 0.742, 0.761, 0.748, 0.757]
teaforn = [0.781, 0.770, 0.779, 0.772, 0.784]
print(interval(teaforn))
gap = difference(teaforn, teacher_forcing, paired=True)
assert distinguishable(gap) and gap.low > 0
```
"""
import collections

import numpy as np
from scipy import stats

from bert4keras_blog.errors import SettingError

__all__ = ['Estimate', 'interval', 'difference', 'proportion', 'distinguishable', 'describe',
           'compare', 'table', 'cells', 'HEADER']

Estimate = collections.namedtuple('Estimate', 'mean low high n')
BOOTSTRAP_SAMPLES = 10000


def _values(values, name='values'):
    values = np.asarray(values, dtype=float).ravel()
    if len(values) < 2 or not np.all(np.isfinite(values)):
        raise SettingError('%s: an interval needs at least two finite numbers, got %s'
                           % (name, values.tolist()))
    return values


def _level(level):
    if not 0 < level < 1:
        raise SettingError('level must be between 0 and 1, got %r' % (level,))
    return level


def interval(values, level=0.95, method='t', seed=0):
    """The mean of ``values`` and a ``level`` interval for it."""
    values, level = _values(values), _level(level)
    mean = float(values.mean())
    if method == 't':
        half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) \
            / np.sqrt(len(values))
        return Estimate(mean, mean - half, mean + half, len(values))
    if method == 'bootstrap':
        rng = np.random.default_rng(seed)
        means = rng.choice(values, (BOOTSTRAP_SAMPLES, len(values))).mean(axis=1)
        low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
        return Estimate(mean, float(low), float(high), len(values))
    raise SettingError("method must be 't' or 'bootstrap', got %r" % (method,))


def difference(a, b, paired=False, level=0.95):
    """mean(a) − mean(b) with a ``level`` interval."""
    a, b, level = _values(a, 'a'), _values(b, 'b'), _level(level)
    if paired:
        if len(a) != len(b):
            raise SettingError('paired arms need one value per seed in each: %d and %d'
                               % (len(a), len(b)))
        return interval(a - b, level)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    # Welch-Satterthwaite degrees of freedom.
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    mean = float(a.mean() - b.mean())
    half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(va + vb)
    return Estimate(mean, mean - half, mean + half, min(len(a), len(b)))


def proportion(successes, n, level=0.95):
    """``successes`` of ``n`` trials: the share with Wilson's score interval
    (sensible near 0 and 1, where the t interval of 0/1 values is not)."""
    level = _level(level)
    if not (isinstance(n, (int, np.integer)) and n >= 1 and 0 <= successes <= n):
        raise SettingError('proportion needs 0 <= successes <= n and n >= 1, got %r of %r'
                           % (successes, n))
    z = stats.norm.ppf(0.5 + level / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return Estimate(share, float(centre - half), float(centre + half), int(n))


def distinguishable(estimate):
    """Whether the interval lies wholly on one side of zero."""
    return bool(estimate.low > 0 or estimate.high < 0)


def describe(estimate, digits=4):
    form = '%.{0}g [%.{0}g, %.{0}g] (n=%d)'.format(digits)
    return form % (estimate.mean, estimate.low, estimate.high, estimate.n)


def compare(claim, a, b, values_a, values_b, paired=True, level=0.95, over='seeds'):
    """One claims-table row: arm ``a`` against arm ``b`` over seeds.

    Args:
        claim: str. The quantity compared, e.g. '|grad L|^2 at L=0.1'.
        a, b: str. Names of the two arms.
        values_a, values_b: one number per seed (same seeds when ``paired``),
            or per held-out example of one run (``over='examples'``).
    """
    first, second = interval(values_a, level), interval(values_b, level)
    gap = difference(values_a, values_b, paired, level)
    return {'claim': claim, 'a': a, 'b': b,
            'mean_a': first.mean, 'low_a': first.low, 'high_a': first.high,
            'mean_b': second.mean, 'low_b': second.low, 'high_b': second.high,
            'difference': gap.mean, 'low': gap.low, 'high': gap.high, 'n': gap.n,
            'paired': bool(paired), 'over': over, 'distinguishable': distinguishable(gap)}


HEADER = ('claim', 'a', 'b', 'mean a [95%]', 'mean b [95%]', 'a − b [95%]', 'n',
          'distinguishable')


def cells(row, digits=4):
    """One claims row as the texts of its table cells (see ``HEADER``)."""
    def cell(mean, low, high):
        return ('%.{0}g [%.{0}g, %.{0}g]'.format(digits)) % (mean, low, high)
    return (row['claim'], row['a'], row['b'], cell(row['mean_a'], row['low_a'], row['high_a']),
            cell(row['mean_b'], row['low_b'], row['high_b']),
            cell(row['difference'], row['low'], row['high']),
            '%d %s' % (row['n'], row.get('over', 'seeds')),
            'yes' if row['distinguishable'] else 'no')


def table(rows, digits=4):
    """Claims rows as text: claim, a [interval], b [interval], a − b [interval]."""
    lines = [HEADER] + [cells(r, digits) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)
