"""Small-sample statistics for comparing training curves over seeds (valid at n = 5 seeds).

Pure functions over numpy arrays; every interval is deterministic (bootstraps take a fixed seed).

Per comparison (one map, two curves, one value per seed):
- `welch_t_interval`: the difference of means of two independent samples with the
  Welch–Satterthwaite t interval (unequal variances). The default for runs that are not paired
  by design, e.g. two different algorithms.
- `paired_t_interval`: the mean of the per-pair differences with a paired t interval, for designs
  paired on purpose (the same learner seed with different demonstrations).
- `bca_interval`: a bias-corrected and accelerated bootstrap interval (`scipy.stats.bootstrap`,
  method="BCa"), reported beside the t interval.
- `t_test_p`: the p-value of the same t test (Welch or paired) against a shifted null, one- or
  two-sided: what a verdict's interval rule rejects, as a p-value for `holm`.
- `holm`: Holm–Bonferroni step-down adjusted p-values over a family of comparisons.
- `factorial_effects`: a 2x2 design's main effects and interaction per seed, from
  `cells[seeds, 2, 2]` (Figure 3: co-trained or independent experts x concurrent sampling or not);
  each effect is then one paired sample for the intervals above.

Across tasks (maps), rliable-style (Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"), on `scores[runs, tasks]` arrays:
- `iqm`: interquartile mean of all run x task scores (`scipy.stats.trim_mean(flat, 0.25)`, as
  rliable's `aggregate_iqm`);
- `probability_of_improvement`: the average over tasks of P(X > Y) + 0.5 P(X = Y) for a random
  run X of one algorithm and Y of the other, i.e. the Mann–Whitney U statistic / (n_x n_y)
  (rliable's `probability_of_improvement`);
- `stratified_bootstrap_ci`: a percentile CI from resampling runs with replacement within each
  task independently (rliable's `StratifiedBootstrap` + `get_interval_estimates`), done by
  `scipy.stats.bootstrap(method="percentile")` with one sample per task.

rliable itself is not a dependency (rliable 1.2 pins arch<8, and arch 7 breaks on pandas 3): its
methods are re-implemented here with numpy and scipy.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import scipy.stats

DEFAULT_SEED = 20220601


def _sample(values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D sample, got shape {array.shape}")
    return array


def welch_t_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean(a) - mean(b), low, high, dof): Welch's t interval with Welch–Satterthwaite dof."""
    a, b = _sample(a), _sample(b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's interval needs at least 2 values per sample")
    result = scipy.stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(confidence_level=confidence)
    return float(a.mean() - b.mean()), float(ci.low), float(ci.high), float(result.df)


def paired_t_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean(a - b), low, high, dof): the paired t interval; a[i] and b[i] are one pair."""
    a, b = _sample(a), _sample(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    if len(a) < 2:
        raise ValueError("the paired interval needs at least 2 pairs")
    result = scipy.stats.ttest_rel(a, b)
    ci = result.confidence_interval(confidence_level=confidence)
    return float((a - b).mean()), float(ci.low), float(ci.high), float(result.df)


def t_test_p(a, b, paired: bool, null: float = 0.0, alternative: str = "two-sided") -> float:
    """p-value of Welch's t test (paired: the paired t test) of H0: mean(a) - mean(b) = null against
    `alternative` ("two-sided", "greater": the difference exceeds null, "less"). The same t statistic
    and degrees of freedom as welch_t_interval / paired_t_interval: the 95% interval excludes `null`
    exactly when the two-sided p < 0.05, and lies above it when the "greater" p < 0.025."""
    a, b = _sample(a) - null, _sample(b)
    result = (scipy.stats.ttest_rel(a, b, alternative=alternative) if paired
              else scipy.stats.ttest_ind(a, b, equal_var=False, alternative=alternative))
    return float(result.pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the input's order: with p sorted ascending, the i-th
    (0-based) of m becomes max over j <= i of min(1, (m - j) p_(j)). Rejecting where the adjusted p
    < alpha controls the family-wise error rate at alpha (Holm 1979)."""
    p = _sample(pvalues) if np.ndim(pvalues) else np.asarray([pvalues], dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def mean_difference(a, b, axis=-1):
    """mean(a) - mean(b) along `axis` (vectorised, as scipy.stats.bootstrap wants)."""
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bca_interval(*samples, statistic: Callable = np.mean, confidence: float = 0.95,
                 n_resamples: int = 9999, seed: int = DEFAULT_SEED,
                 paired: bool = False) -> tuple[float, float, float]:
    """(statistic of the samples, low, high): the BCa bootstrap interval of `statistic`.

    `statistic(*samples, axis=-1)` must be vectorised (np.mean; `mean_difference` for two
    independent samples). Deterministic for a fixed `seed`. Where BCa is undefined (e.g. all
    values equal) low and high are NaN.
    """
    data = tuple(_sample(s) for s in samples)
    estimate = float(statistic(*data, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # DegenerateDataWarning: reported as NaN
        result = scipy.stats.bootstrap(data, statistic, n_resamples=n_resamples,
                                       confidence_level=confidence, method="BCa",
                                       paired=paired, vectorized=True,
                                       rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return estimate, float(ci.low), float(ci.high)


def factorial_effects(cells) -> dict[str, np.ndarray]:
    """A 2x2 design measured per seed: cells[n, a, b], factor A at level a and factor B at level b
    (index 0 = the level named first, e.g. A: co-trained / independent, B: concurrent / not). Per seed:

        A  = mean_b (cells[a=0, b] - cells[a=1, b])   main effect of A, averaged over B's levels
        B  = mean_a (cells[a, b=0] - cells[a, b=1])   main effect of B, averaged over A's levels
        AB = (cells[0, 0] - cells[1, 0]) - (cells[0, 1] - cells[1, 1])   A's effect at B=0 minus at B=1

    -> {"A": [n], "B": [n], "AB": [n]}. A paired design (one seed = one block), so each effect's
    interval is a one-sample t (or BCa) interval of its per-seed values."""
    c = np.asarray(cells, dtype=float)
    if c.ndim != 3 or c.shape[1:] != (2, 2):
        raise ValueError(f"expected cells[seeds, 2, 2], got shape {c.shape}")
    a_at_b = c[:, 0, :] - c[:, 1, :]  # [n, 2]: A's effect at each level of B
    return {"A": a_at_b.mean(1), "B": (c[:, :, 0] - c[:, :, 1]).mean(1), "AB": a_at_b[:, 0] - a_at_b[:, 1]}


# ---------------------------------------------------------------------------------------------
# Aggregates across tasks (rliable's methods)
# ---------------------------------------------------------------------------------------------

def _scores(scores) -> np.ndarray:
    array = np.asarray(scores, dtype=float)
    if array.ndim < 2:
        raise ValueError(f"expected a (runs x tasks) array, got shape {array.shape}")
    return array


def _scalar(value):
    return float(value) if np.ndim(value) == 0 else value


def iqm(scores):
    """Interquartile mean of all run x task scores: the mean of the middle 50%
    (`scipy.stats.trim_mean(flat, 0.25)`). `scores[..., runs, tasks]`: leading axes are a batch
    (one IQM each)."""
    scores = _scores(scores)
    flat = scores.reshape(*scores.shape[:-2], -1)
    return _scalar(scipy.stats.trim_mean(flat, proportiontocut=0.25, axis=-1))


def probability_of_improvement(x, y):
    """The mean over tasks of P(X > Y) + 0.5 P(X = Y), X a run of x[runs_x, tasks] and Y a run
    of y[runs_y, tasks] on the same task (per task: Mann–Whitney U / (n_x n_y)). Leading axes
    of x and y are a batch (one probability each)."""
    x, y = _scores(x), _scores(y)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"different numbers of tasks: {x.shape[-1]} vs {y.shape[-1]}")
    xs, ys = x[..., :, None, :], y[..., None, :, :]
    per_task = (xs > ys).mean(axis=(-3, -2)) + 0.5 * (xs == ys).mean(axis=(-3, -2))
    return _scalar(per_task.mean(axis=-1))


def stratified_bootstrap_ci(scores, statistic: Callable = iqm, confidence: float = 0.95,
                            n_resamples: int = 10_000, seed: int = DEFAULT_SEED,
                            batch: int = 1000) -> tuple[float, float, float]:
    """(statistic(*scores), low, high): percentile CI from a stratified bootstrap.

    `scores` is one (runs x tasks) array or a list/tuple of them (e.g. (x, y) for
    `probability_of_improvement`); each array's runs are resampled with replacement within each
    task independently, and `statistic` is applied to the resampled arrays. `statistic` must
    accept leading batch axes (`iqm` and `probability_of_improvement` do): it is called on
    `batch` resamples at a time. Deterministic for a fixed `seed`. Every array needs at least 2
    runs (scipy.stats.bootstrap resamples nothing from one value).
    """
    arrays = ([_scores(s) for s in scores] if isinstance(scores, (list, tuple))
              else [_scores(scores)])
    if any(a.ndim != 2 for a in arrays):
        raise ValueError("expected (runs x tasks) arrays")
    estimate = float(statistic(*arrays))
    # Stratification is scipy's independent resampling of unpaired samples: every (array, task)
    # column is one sample, and the statistic gets its arrays back by stacking the columns.
    columns = [array[:, task] for array in arrays for task in range(array.shape[1])]
    starts = np.cumsum([0] + [array.shape[1] for array in arrays])

    def stratified(*resampled, axis=-1):   # scipy resamples along each column's last axis
        return statistic(*(np.stack(resampled[lo:hi], axis=-1)   # [..., runs, tasks]
                           for lo, hi in zip(starts[:-1], starts[1:])))

    result = scipy.stats.bootstrap(columns, stratified, n_resamples=n_resamples, batch=batch,
                                   vectorized=True, paired=False, method="percentile",
                                   confidence_level=confidence, rng=np.random.default_rng(seed))
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)
