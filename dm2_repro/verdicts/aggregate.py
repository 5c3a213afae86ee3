"""Aggregate across maps, rliable's method (Agarwal et al. 2021): IQM and probability of improvement
against IPPO, with stratified-bootstrap intervals.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dm2_repro.envs import metric_of
from dm2_repro.results import stats
from dm2_repro.results.curves import common_range, seed_values
from dm2_repro.results.runs import CurveRuns
from dm2_repro.verdicts.findings import BOOTSTRAP_SEED, COMPARISON_MAPS, CONFIDENCE, MIN_SEEDS, N_BOOTSTRAP


# ---------------------------------------------------------------------------------------------
# Aggregate across maps (rliable-style)
# ---------------------------------------------------------------------------------------------

AGGREGATE_BASELINE = "ippo"


@dataclass
class Aggregate:
    key: str
    baseline: str
    counts: dict[str, tuple[int, int]]     # map -> (seeds of key, seeds of baseline)
    maps: list[str]                        # the maps used (>= MIN_SEEDS seeds on both sides)
    iqm: tuple[float, float, float] | None = None            # (estimate, low, high)
    iqm_baseline: tuple[float, float, float] | None = None
    improvement: tuple[float, float, float] | None = None    # P(key > baseline)
    n_runs: tuple[int, int] | None = None  # runs per map used, per side


def aggregate(key: str, pairs: dict[str, tuple[CurveRuns, CurveRuns]],
              baseline: str = AGGREGATE_BASELINE, metrics: dict[str, str] | None = None) -> Aggregate:
    """`pairs`: map -> (curve `key`, curve `baseline`) on that map; `metrics`: map -> its
    statistic's metric (default win rate)."""
    per_map, counts = {}, {}
    for map_name, (x, y) in pairs.items():
        span = common_range([x, y])
        metric = (metrics or {}).get(map_name, "win_rate")
        values = [seed_values(c, "auc", *span, metric) if span else {} for c in (x, y)]
        counts[map_name] = (len(values[0]), len(values[1]))
        if min(counts[map_name]) >= MIN_SEEDS:
            per_map[map_name] = values
    found = Aggregate(key, baseline, counts, list(per_map))
    if not per_map:
        return found
    n_x = min(len(v[0]) for v in per_map.values())
    n_y = min(len(v[1]) for v in per_map.values())
    x = np.array([list(v[0].values())[:n_x] for v in per_map.values()]).T   # runs x maps
    y = np.array([list(v[1].values())[:n_y] for v in per_map.values()]).T
    ci = dict(confidence=CONFIDENCE, n_resamples=N_BOOTSTRAP, seed=BOOTSTRAP_SEED)
    found.iqm = stats.stratified_bootstrap_ci(x, stats.iqm, **ci)
    found.iqm_baseline = stats.stratified_bootstrap_ci(y, stats.iqm, **ci)
    found.improvement = stats.stratified_bootstrap_ci((x, y), stats.probability_of_improvement,
                                                      **ci)
    found.n_runs = (n_x, n_y)
    return found


def aggregate_curves(curves: dict[str, dict[tuple[str, str], CurveRuns]]) -> list[str]:
    """The curve keys of the Fig. 2 and Fig. 4 definitions other than the baseline, sorted."""
    keys = {key for figure in COMPARISON_MAPS for _, key in curves[figure]}
    return sorted(keys - {AGGREGATE_BASELINE})


def aggregate_all(curves: dict[str, dict[tuple[str, str], CurveRuns]], scale: str) -> list[Aggregate]:
    """Every aggregate_curves key against IPPO over the Fig. 2 and Fig. 4 maps (where a map has
    both curves), each map scored by its statistic at `scale` (win rate, or return / MAX_RETURN)."""
    found = []
    for key in aggregate_curves(curves):
        pairs = {}
        for figure, maps in COMPARISON_MAPS.items():
            by_key = curves[figure]
            for m in maps:
                if (m, key) in by_key and (m, AGGREGATE_BASELINE) in by_key:
                    pairs[m] = (by_key[(m, key)], by_key[(m, AGGREGATE_BASELINE)])
        found.append(aggregate(key, pairs, metrics={m: metric_of(m, scale) for m in pairs}))
    return found
