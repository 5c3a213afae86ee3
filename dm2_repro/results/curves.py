"""A curve's per-seed values, as the claims and the report take them: the step range every run of
some curves covers, the normalised AUC and the final value of a run's test series on it, per seed.
Imports nothing of claims or report (both use it)."""
from __future__ import annotations

import math

import numpy as np

from dm2_repro.config import MAX_RETURN
from dm2_repro.envs import METRICS
from dm2_repro.results.runs import CurveRuns, step_tolerance

FINAL_EVALS = 3   # "final": the mean of the last this many evaluations


def common_range(curves: list[CurveRuns]) -> tuple[float, float] | None:
    """The step range every run of these curves covers (None if no run has an evaluation)."""
    series = [s for c in curves for s in c.series().values() if len(s)]
    if not series:
        return None
    return max(s.index[0] for s in series), min(s.index[-1] for s in series)


def in_range(series, lo: float, hi: float):
    """The evaluations of `series` in [lo, hi], give or take half its median eval spacing. Training
    evaluates at the first update past each `eval_every` boundary, so a run's k-th evaluation lands up
    to one rollout after k * eval_every and runs' last evaluations differ by that jitter (100,005 vs
    100,946 steps); with a strict cut, a run compared with one that ended a few hundred steps earlier
    would lose its last evaluation, and its AUC would depend on what it is compared with. The
    tolerance is the nearest-step rule `results.align_seeds` uses to put seeds on one grid."""
    steps = series.index.to_numpy(dtype=float)
    tolerance = step_tolerance(steps)
    return series[(steps >= lo - tolerance) & (steps <= hi + tolerance)]


def normalised_auc(series, lo: float, hi: float) -> float:
    part = in_range(series, lo, hi)
    steps = part.index.to_numpy(dtype=float)
    return float(np.trapezoid(part.to_numpy(), steps) / (steps[-1] - steps[0]))


def final_win_rate(series, hi: float) -> float:
    return float(in_range(series, -math.inf, hi).iloc[-FINAL_EVALS:].mean())


def metric_scale(metric: str) -> float:
    """What a metric is divided by for the statistics: 1 for win rates, MAX_RETURN for returns."""
    return 1.0 if metric == "win_rate" else MAX_RETURN


def seed_values(curve: CurveRuns, statistic: str, lo: float, hi: float,
                metric: str = "win_rate") -> dict[int, float]:
    """Seed -> the curve's statistic ("auc" or "final") in [lo, hi] of its test win rate or (metric
    "return") its test return / MAX_RETURN, seeds in order."""
    values = {}
    for seed, series in sorted(curve.series(METRICS[metric]).items()):
        series = series / metric_scale(metric)
        if len(series):
            values[seed] = (normalised_auc(series, lo, hi) if statistic == "auc"
                            else final_win_rate(series, hi))
    return values


def format_values(values) -> str:
    values = list(values)
    return " ".join(f"{v:.3f}" for v in values) if values else "none"
