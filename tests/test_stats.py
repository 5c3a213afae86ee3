"""dm2_repro.results.stats on tiny hand-computed cases (the intervals claims.py uses at n = 5 seeds)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from dm2_repro.results import stats

A = [1.0, 2.0, 3.0, 4.0, 5.0]
B = [2.0, 4.0, 6.0, 8.0, 10.0]


def test_welch_interval_by_hand():
    # mean(A) - mean(B) = 3 - 6; s²_A = 2.5, s²_B = 10; s²/n terms 0.5 and 2.
    va, vb = 2.5 / 5, 10.0 / 5
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 4)   # Welch–Satterthwaite: 6.25 / 1.0625
    assert dof == pytest.approx(5.882352941)
    t = scipy.stats.t.ppf(0.975, dof)
    estimate, low, high, df = stats.welch_t_interval(A, B)
    assert estimate == pytest.approx(-3.0)
    assert df == pytest.approx(dof)                      # not the pooled test's 8
    assert (low, high) == pytest.approx((-3.0 - t * se, -3.0 + t * se))
    # A 90% interval is narrower, by the 0.95 quantile.
    _, low90, high90, _ = stats.welch_t_interval(A, B, confidence=0.9)
    t90 = scipy.stats.t.ppf(0.95, dof)
    assert (low90, high90) == pytest.approx((-3.0 - t90 * se, -3.0 + t90 * se))


def test_paired_interval_by_hand():
    # Differences A - B = -1 -2 -3 -4 -5: mean -3, s² = 2.5, se = sqrt(2.5 / 5), 4 dof.
    se = math.sqrt(2.5 / 5)
    t = scipy.stats.t.ppf(0.975, 4)
    estimate, low, high, df = stats.paired_t_interval(A, B)
    assert (estimate, df) == pytest.approx((-3.0, 4))
    assert (low, high) == pytest.approx((-3.0 - t * se, -3.0 + t * se))
    # Pairing removes the between-seed spread: narrower than Welch on the same numbers.
    _, wlow, whigh, _ = stats.welch_t_interval(A, B)
    assert high - low < whigh - wlow
    with pytest.raises(ValueError):
        stats.paired_t_interval(A, B[:4])


def test_factorial_effects_by_hand():
    # Two seeds; cells[seed, A level, B level]. Seed 1: A adds 4 at B=0 and 2 at B=1, B adds 1 under
    # A's first level and -1 under its second. Seed 2: B adds 3 under both levels of A, A nothing.
    cells = np.array([[[10.0, 9.0], [6.0, 7.0]],
                      [[8.0, 5.0], [8.0, 5.0]]])
    effects = stats.factorial_effects(cells)
    assert effects["A"] == pytest.approx([3.0, 0.0])    # mean of 10-6 and 9-7; of 8-8 and 5-5
    assert effects["B"] == pytest.approx([0.0, 3.0])    # mean of 10-9 and 6-7; of 8-5 and 8-5
    assert effects["AB"] == pytest.approx([2.0, 0.0])   # (10-6) - (9-7); (8-8) - (5-5)
    # swapping A's levels flips A and AB, not B; swapping B's flips B and AB, not A
    swapped = stats.factorial_effects(cells[:, ::-1, :])
    assert swapped["A"] == pytest.approx(-effects["A"]) and swapped["AB"] == pytest.approx(-effects["AB"])
    assert swapped["B"] == pytest.approx(effects["B"])
    swapped = stats.factorial_effects(cells[:, :, ::-1])
    assert swapped["B"] == pytest.approx(-effects["B"]) and swapped["A"] == pytest.approx(effects["A"])
    assert swapped["AB"] == pytest.approx(-effects["AB"])
    with pytest.raises(ValueError, match="cells"):
        stats.factorial_effects(np.zeros((5, 4)))


def test_bca_interval_is_deterministic_and_contains_the_mean():
    sample = np.array([0.71, 0.65, 0.80, 0.77, 0.69])
    first = stats.bca_interval(sample, seed=7)
    assert first == stats.bca_interval(sample, seed=7)
    estimate, low, high = first
    assert estimate == pytest.approx(sample.mean()) and low < sample.mean() < high
    assert sample.min() <= low and high <= sample.max()
    # It is scipy's BCa interval with that generator seed.
    ci = scipy.stats.bootstrap((sample,), np.mean, method="BCa",
                               rng=np.random.default_rng(7)).confidence_interval
    assert (low, high) == pytest.approx((ci.low, ci.high))
    # Two independent samples: the difference of means.
    estimate, low, high = stats.bca_interval(A, B, statistic=stats.mean_difference, seed=7)
    assert estimate == pytest.approx(-3.0) and low < -3.0 < high < 0
    # Undefined where every value is equal.
    assert all(math.isnan(v) for v in stats.bca_interval(np.ones(5))[1:])


def test_welch_interval_covers_at_n5_and_the_percentile_bootstrap_does_not():
    rng, boot = np.random.default_rng(11), np.random.default_rng(12)
    true_difference = -1.0
    welch = percentile = 0
    trials = 400
    for _ in range(trials):
        a, b = rng.normal(0.0, 1.0, 5), rng.normal(1.0, 2.0, 5)
        _, low, high, _ = stats.welch_t_interval(a, b)
        welch += low < true_difference < high
        draws = (boot.choice(a, (2000, 5)).mean(axis=1)
                 - boot.choice(b, (2000, 5)).mean(axis=1))
        low, high = np.percentile(draws, [2.5, 97.5])
        percentile += low < true_difference < high
    assert 0.92 <= welch / trials <= 0.98
    assert percentile / trials < 0.92   # why claims.py no longer uses it at 5 seeds


def test_iqm_by_hand():
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 100.0], [6.0, 7.0]])   # 4 runs x 2 tasks
    # Sorted: 1 2 3 4 5 6 7 100; the middle half is 3 4 5 6.
    assert stats.iqm(scores) == pytest.approx(4.5)
    assert stats.iqm(np.stack([scores, scores + 1])) == pytest.approx([4.5, 5.5])   # batch
    with pytest.raises(ValueError):
        stats.iqm([1.0, 2.0, 3.0])   # not (runs x tasks)


def test_probability_of_improvement_by_hand():
    x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])   # 3 runs x 2 tasks
    y = np.array([[2.0, 4.0], [0.0, 6.0]])               # 2 runs x 2 tasks
    # Task 0: x 1 2 3 against y 2 0: 1<2 1>0 2=2 2>0 3>2 3>0 -> (4 + 0.5 * 1) / 6 = 0.75.
    # Task 1: x 5 5 5 against y 4 6: three 5>4, three 5<6 -> 3 / 6 = 0.5.
    assert stats.probability_of_improvement(x, y) == pytest.approx((0.75 + 0.5) / 2)
    assert stats.probability_of_improvement(y, x) == pytest.approx(1 - 0.625)
    mann_whitney = [scipy.stats.mannwhitneyu(x[:, t], y[:, t]).statistic / 6 for t in (0, 1)]
    assert stats.probability_of_improvement(x, y) == pytest.approx(np.mean(mann_whitney))
    assert stats.probability_of_improvement(x, x) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        stats.probability_of_improvement(x, y[:, :1])


def test_stratified_bootstrap_resamples_within_tasks():
    # Every run of a task has the same score: resampling within tasks never changes the matrix
    # (pooling runs across tasks would), so the CI collapses onto the estimate.
    scores = np.array([[0.0, 10.0]] * 4)
    estimate, low, high = stats.stratified_bootstrap_ci(scores, lambda s: s.mean(axis=(-2, -1)),
                                                        n_resamples=500)
    assert estimate == low == high == pytest.approx(5.0)


def test_stratified_bootstrap_ci_is_deterministic():
    scores = np.random.default_rng(0).random((5, 3))
    first = stats.stratified_bootstrap_ci(scores, stats.iqm, n_resamples=2000, seed=3)
    assert first == stats.stratified_bootstrap_ci(scores, stats.iqm, n_resamples=2000, seed=3)
    assert first != stats.stratified_bootstrap_ci(scores, stats.iqm, n_resamples=2000, seed=4)
    estimate, low, high = first
    assert estimate == pytest.approx(stats.iqm(scores)) and low < estimate < high
    assert scores.min() <= low and high <= scores.max()


def test_probability_of_improvement_ci():
    x = np.array([[0.9, 0.8], [0.95, 0.85], [0.7, 0.9], [0.8, 0.75], [0.85, 0.8]])
    worse = x - 0.5
    assert stats.stratified_bootstrap_ci((x, worse), stats.probability_of_improvement,
                                         n_resamples=500) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(1)
    y = rng.random((5, 2))
    estimate, low, high = stats.stratified_bootstrap_ci((x, y), stats.probability_of_improvement,
                                                        n_resamples=2000)
    assert estimate == pytest.approx(stats.probability_of_improvement(x, y))
    assert 0 <= low <= estimate <= high <= 1 and low < high


def test_stratified_bootstrap_keeps_each_array_and_task_apart():
    # x's runs score 10-11 and y's 0-1, on tasks that differ by 100: any resample mixing arrays
    # or tasks would give min(x) - max(y) < 9 or a task mean outside its own range.
    x = np.array([[10.0, 110.0], [11.0, 111.0], [10.5, 110.5], [10.2, 110.2], [10.8, 110.8]])
    y = np.array([[0.0, 100.0], [1.0, 101.0], [0.5, 100.5]])   # fewer runs than x

    def gap(a, b):
        return np.min(a[..., 0], axis=-1) - np.max(b[..., 0], axis=-1)

    estimate, low, high = stats.stratified_bootstrap_ci((x, y), gap, n_resamples=400)
    assert estimate == pytest.approx(9.0) and 9.0 <= low <= estimate <= high <= 11.0

    def task_gap(a):   # task 1 minus task 0, each run's own pair of tasks not kept together
        return a[..., 1].mean(axis=-1) - a[..., 0].mean(axis=-1)

    _, low, high = stats.stratified_bootstrap_ci(x, task_gap, n_resamples=400)
    assert 99.0 <= low <= high <= 101.0


def test_stratified_bootstrap_ci_is_a_percentile_interval():
    # One task: the stratified bootstrap is the plain percentile bootstrap of the statistic.
    scores = np.array([[0.1], [0.4], [0.35], [0.8], [0.6]])
    estimate, low, high = stats.stratified_bootstrap_ci(scores, lambda s: s.mean(axis=(-2, -1)),
                                                        n_resamples=4000, seed=7)
    draws = np.random.default_rng(0).choice(scores[:, 0], size=(20000, 5)).mean(axis=1)
    assert estimate == pytest.approx(0.45)
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=0.02)


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])   # capped at 1
    np.testing.assert_allclose(stats.holm([0.02]), [0.02])           # a family of one: unchanged


@pytest.mark.parametrize("paired", [False, True])
def test_t_test_p_rejects_exactly_where_the_interval_excludes_the_null(paired):
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b = rng.normal(0.3, 1.0, 5), rng.normal(0.0, 1.0, 5)
        interval = stats.paired_t_interval if paired else stats.welch_t_interval
        _, low, high, _ = interval(a, b)
        null = rng.uniform(-1, 1)
        assert (stats.t_test_p(a, b, paired, null) < 0.05) == (not low <= null <= high)
        assert (stats.t_test_p(a, b, paired, null, "greater") < 0.025) == (low > null)
        assert (stats.t_test_p(a, b, paired, null, "less") < 0.025) == (high < null)
