"""Intervals for claims over seeds: checked against textbook values, an
independent implementation (scipy's Welch test) and their coverage."""
import numpy as np
import pytest
from scipy import stats

from bert4keras_blog.experiment.claims import (
    compare, describe, difference, distinguishable, interval, proportion, table)
from bert4keras_blog.errors import SettingError


def test_t_interval_matches_the_textbook_quantile():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, sd sqrt(2.5)
    estimate = interval(values)
    half = 2.7764 * np.sqrt(2.5) / np.sqrt(5)  # t(0.975, 4) from a table
    assert estimate.mean == 3.0 and estimate.n == 5
    assert abs(estimate.high - 3 - half) < 1e-3 and abs(3 - estimate.low - half) < 1e-3


def test_t_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials = 4000
    hits = sum(est.low <= 10 <= est.high for est in
               (interval(rng.normal(10, 3, size=5)) for _ in range(trials)))
    assert abs(hits / trials - 0.95) < 0.015


def test_bootstrap_agrees_with_t_on_a_large_sample_and_is_seeded():
    values = np.random.default_rng(1).normal(0.5, 0.1, size=400)
    t, boot = interval(values), interval(values, method='bootstrap', seed=3)
    assert abs((boot.high - boot.low) / (t.high - t.low) - 1) < 0.08
    assert boot == interval(values, method='bootstrap', seed=3)


def test_welch_difference_equals_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.5, size=6), rng.normal(0.6, 0.1, size=4)
    ours = difference(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose([ours.low, ours.high], [ref.low, ref.high], rtol=1e-10)
    assert ours.mean == pytest.approx(a.mean() - b.mean())


def test_pairing_by_seed_removes_the_shared_noise():
    """Two arms that differ by a small constant on every seed: the paired
    interval finds it, the unpaired one drowns in the seeds' spread."""
    base = np.random.default_rng(4).normal(0.7, 0.05, size=5)
    better = base + 0.01
    assert distinguishable(difference(better, base, paired=True))
    assert not distinguishable(difference(better, base))
    assert describe(difference(better, base, paired=True)).startswith('0.01 [')


@pytest.mark.parametrize('bad, message', [
    (dict(values=[1.0]), 'at least two'),
    (dict(values=[1.0, float('nan')]), 'finite'),
    (dict(values=[1.0, 2.0], level=95), 'level'),
    (dict(values=[1.0, 2.0], method='z'), 'method'),
])
def test_bad_arguments_are_named(bad, message):
    with pytest.raises(SettingError, match=message):
        interval(**bad)
    with pytest.raises(SettingError, match='paired arms'):
        difference([1, 2, 3], [1, 2], paired=True)


def test_compare_row_holds_each_arm_and_the_paired_difference():
    a, b = [0.80, 0.82, 0.79, 0.81], [0.70, 0.73, 0.69, 0.72]
    row = compare('accuracy', 'TeaForN', 'TF', a, b)
    assert (row['mean_a'], row['mean_b']) == (interval(a).mean, interval(b).mean)
    gap = difference(a, b, paired=True)
    assert (row['difference'], row['low'], row['high']) == (gap.mean, gap.low, gap.high)
    assert row['distinguishable'] and row['n'] == 4
    unclear = compare('accuracy', 'x', 'y', [0.5, 0.7, 0.4], [0.6, 0.5, 0.55])
    assert not unclear['distinguishable']
    text = table([row, unclear]).splitlines()
    assert len(text) == 3 and text[1].startswith('accuracy') and text[1].endswith('yes')
    assert text[2].endswith('no') and '0.095 [0.08581, 0.1042]' in text[1]


def test_proportion_is_wilsons_interval_as_scipy_computes_it():
    for successes, n in ((388, 400), (0, 20), (20, 20), (7, 13)):
        ours = proportion(successes, n)
        ref = stats.binomtest(successes, n).proportion_ci(0.95, method='wilson')
        np.testing.assert_allclose([ours.low, ours.high], [ref.low, ref.high], atol=1e-12)
        assert ours.mean == successes / n and ours.n == n
    with pytest.raises(SettingError, match='0 <= successes <= n'):
        proportion(5, 4)
