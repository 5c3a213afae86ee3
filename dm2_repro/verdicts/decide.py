"""A comparison's verdict: its interval (Welch or paired t, BCa beside it), its p-value for Holm's
adjustment, and the rule that turns them into "holds", "does not hold" or "inconclusive".
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dm2_repro.config import MAX_RETURN
from dm2_repro.results import stats
from dm2_repro.results.curves import common_range, final_win_rate, format_values, metric_scale, seed_values
from dm2_repro.results.runs import CurveRuns, demo_episode_length
from dm2_repro.verdicts.findings import (ABOVE_DEMO, ALPHA, BOOTSTRAP_SEED, CONFIDENCE, Comparison, DEMO_LENGTH,
                                         EPISODE_LENGTH, EQUIVALENCE_MARGIN, EQUIVALENT, FAILS, FLOOR_WIN_RATE, HOLDS,
                                         INCONCLUSIVE, MIN_SEEDS, NO_DATA, N_BCA, Outcome, TRIVIAL)


def _ci(low: float, high: float) -> str:
    return f"[{low:+.3f}, {high:+.3f}]"


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------

def verdict(test: str, low: float, high: float, margin: float = EQUIVALENCE_MARGIN) -> str:
    if test in (EQUIVALENT, DEMO_LENGTH):
        if -margin < low and high < margin:
            return HOLDS
        if low > margin or high < -margin:
            return FAILS
        return INCONCLUSIVE
    if low > 0:
        return HOLDS
    if high < 0:
        return FAILS
    return INCONCLUSIVE


def verdict_p(test: str, a: np.ndarray, b: np.ndarray, paired: bool, margin: float) -> tuple[float, str]:
    """(p, direction): the p-value of the t test (the interval's own) whose rejection at ALPHA gives the
    verdict `direction` (HOLDS or FAILS), for Holm's adjustment:
    - ">" findings: the two-sided p of H0: A - B = 0, the direction by the sign of A - B;
    - "~" findings: holds when both one-sided tests against -+margin reject (TOST, each at ALPHA / 2):
      p = 2 max(p(A - B > -m), p(A - B < m)); does not hold when A - B lies beyond one margin:
      p = 2 min(p(A - B > m), p(A - B < -m)); the smaller of the two.
    p < ALPHA exactly when the 95% interval gives that verdict (tests/test_claims.py checks it)."""
    if test not in (EQUIVALENT, DEMO_LENGTH):
        p = stats.t_test_p(a, b, paired)
        if not math.isfinite(p):   # no spread and no difference (e.g. both at the floor): t is 0/0, nothing rejected
            p = 1.0
        return p, HOLDS if float(np.mean(a) - np.mean(b)) > 0 else FAILS
    tp = lambda null, alt: stats.t_test_p(a, b, paired, null, alt)  # noqa: E731
    p_holds = min(1.0, 2 * max(tp(-margin, "greater"), tp(margin, "less")))
    p_fails = min(1.0, 2 * min(tp(margin, "greater"), tp(-margin, "less")))
    return (p_holds, HOLDS) if p_holds <= p_fails else (p_fails, FAILS)


def with_holm(outcomes: list) -> list:
    """The outcomes with their Holm-adjusted verdicts: Holm–Bonferroni over every outcome with data in the
    report (the family), each verdict kept where its adjusted p < ALPHA, inconclusive otherwise. An outcome
    is anything with `p_value`, `direction`, `verdict` and `holm`: an Outcome, or Figure 3's 2x2 rows
    (factorial.EffectRow)."""
    judged = [o for o in outcomes if o.p_value is not None]
    adjusted = stats.holm([o.p_value for o in judged]) if judged else []
    for o, p in zip(judged, adjusted):
        o.holm = o.direction if p < ALPHA else INCONCLUSIVE
    for o in outcomes:
        o.holm = o.holm or o.verdict
    return outcomes


def bca_text(low: float, high: float) -> str:
    """A BCa interval as the report writes it ("n/a" where BCa is undefined, e.g. all values equal)."""
    return f"BCa {_ci(low, high)}" if math.isfinite(low) and math.isfinite(high) else "BCa n/a"


def interval(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[str, float, float, float, str]:
    """(test name, estimate, low, high, BCa text) for A - B: paired t or Welch t, and BCa."""
    if paired:
        estimate, low, high, dof = stats.paired_t_interval(a, b, CONFIDENCE)
        _, bca_low, bca_high = stats.bca_interval(a - b, confidence=CONFIDENCE,
                                                  n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
        name = f"paired t, df={dof:g}"
    else:
        estimate, low, high, dof = stats.welch_t_interval(a, b, CONFIDENCE)
        _, bca_low, bca_high = stats.bca_interval(a, b, statistic=stats.mean_difference,
                                                  confidence=CONFIDENCE, n_resamples=N_BCA,
                                                  seed=BOOTSTRAP_SEED)
        name = f"Welch t, df={dof:.1f}"
    if np.ptp(a - b if paired else a) == 0 and (paired or np.ptp(b) == 0):
        # no spread at all (e.g. both curves at the win-rate floor throughout): t's interval collapses to the point
        # and its dof means nothing; say so instead of printing scipy's df
        name = "no spread between seeds: t interval undefined"
    return name, estimate, low, high, bca_text(bca_low, bca_high)


def evaluate(comparison: Comparison, a: CurveRuns, b: CurveRuns | None,
             results_dir: Path) -> Outcome:
    run_ids = {comparison.a: sorted(r.run_id for r in a.runs.values())}
    if b is not None:
        run_ids[comparison.b] = sorted(r.run_id for r in b.runs.values())
    sides = [a] if b is None else [a, b]
    span = common_range(sides)
    if span and comparison.window < 1:
        span = (span[0], span[0] + comparison.window * (span[1] - span[0]))
    if comparison.test == DEMO_LENGTH:
        return demo_length_outcome(comparison, a, span, results_dir, run_ids)
    if comparison.test == ABOVE_DEMO:
        finals = seed_values(a, "final", *span, comparison.metric) if span else {}
        qualities = {seed: q / metric_scale(comparison.metric)
                     for seed, q in a.demo_qualities(results_dir, comparison.metric).items()}
        seeds = [seed for seed in finals if seed in qualities]
        known = " ".join(f"{qualities[s]:.3f}" if s in qualities else "?" for s in finals)
        values = f"{comparison.a} final: {format_values(finals.values())} | demo quality: " + (
            known or "none")
        if len(seeds) < MIN_SEEDS:
            return Outcome(comparison, NO_DATA,
                           f"n={len(seeds)} with known demo quality (needs {MIN_SEEDS})",
                           run_ids, values)
        left = np.array([finals[s] for s in seeds])
        right = np.array([qualities[s] for s in seeds])
        label, counts = "final - demo", f"n={len(seeds)} paired"
        # demonstrations at the floor: "above them" holds by construction
        floor = comparison.metric == "win_rate" and float(right.max()) <= FLOOR_WIN_RATE
    else:
        floor = False
        statistic = comparison.statistic
        per_side = [seed_values(side, statistic, *span, comparison.metric) if span else {}
                    for side in sides]
        values = " | ".join(f"{key}: {format_values(v.values())}"
                            for key, v in zip((comparison.a, comparison.b), per_side))
        n_a, n_b = (len(v) for v in per_side)
        counts = f"n={n_a} vs {n_b}"
        if min(n_a, n_b) < MIN_SEEDS:
            return Outcome(comparison, NO_DATA, f"{counts} (needs {MIN_SEEDS} per side)",
                           run_ids, values)
        if comparison.is_paired:
            seeds = [seed for seed in per_side[0] if seed in per_side[1]]
            if len(seeds) < MIN_SEEDS:
                return Outcome(comparison, NO_DATA,
                               f"{counts}, {len(seeds)} paired (needs {MIN_SEEDS} pairs)",
                               run_ids, values)
            left = np.array([per_side[0][s] for s in seeds])
            right = np.array([per_side[1][s] for s in seeds])
            if len(seeds) < max(n_a, n_b):
                counts += f", {len(seeds)} paired: seeds {' '.join(map(str, seeds))}"
            else:
                counts = f"n={len(seeds)} paired"
        else:
            left, right = (np.array(list(v.values())) for v in per_side)
        label = "ΔAUC" if statistic == "auc" else "Δfinal"
        if comparison.metric != "win_rate":
            label += f"(return/{MAX_RETURN:g})"
    name, estimate, low, high, bca = interval(left, right, comparison.is_paired)
    measured = f"{label} = {estimate:+.3f} {_ci(low, high)} ({name}); {bca} ({counts})"
    judged = verdict(comparison.test, low, high, comparison.margin)
    p, direction = verdict_p(comparison.test, left, right, comparison.is_paired, comparison.margin)
    if comparison.test == ABOVE_DEMO and floor:
        measured += f"; demonstrations at the floor (greedy win rate <= {FLOOR_WIN_RATE:g})"
        judged, direction = (TRIVIAL if judged == HOLDS else judged), (TRIVIAL if direction == HOLDS else direction)
    return Outcome(comparison, judged, measured, run_ids, values, p, direction, estimate=estimate)


def demo_length_outcome(comparison: Comparison, a: CurveRuns, span, results_dir: Path,
                        run_ids: dict) -> Outcome:
    """A's final greedy test episode length against its demonstrations' mean episode length, per seed as
    final / demonstrations - 1, one-sample t interval; "~" within +-EPISODE_LENGTH_MARGIN."""
    finals = {seed: final_win_rate(s, span[1]) for seed, s in sorted(a.series(EPISODE_LENGTH).items())
              if len(s)} if span else {}
    demo = {job.seed: demo_episode_length(job.demo, a.runs.get(job.seed), results_dir) for job in a.curve.jobs
            if job.demo and job.seed in finals}
    seeds = [s for s in finals if demo.get(s)]
    known = " ".join(f"{demo[s]:.1f}" if demo.get(s) else "?" for s in finals)
    values = f"{comparison.a} final length: " + " ".join(f"{v:.1f}" for v in finals.values()) + \
        f" | demo mean length: {known or 'none'}"
    if len(seeds) < MIN_SEEDS:
        return Outcome(comparison, NO_DATA, f"n={len(seeds)} with known demo length (needs {MIN_SEEDS})",
                       run_ids, values)
    ratio = np.array([finals[s] / demo[s] - 1.0 for s in seeds])
    estimate, low, high, dof = stats.paired_t_interval(ratio, np.zeros_like(ratio), CONFIDENCE)
    _, bca_low, bca_high = stats.bca_interval(ratio, confidence=CONFIDENCE, n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
    held = verdict(DEMO_LENGTH, low, high, comparison.margin)
    p, direction = verdict_p(DEMO_LENGTH, ratio, np.zeros_like(ratio), True, comparison.margin)
    measured = (f"final / demo - 1 = {estimate:+.3f} {_ci(low, high)} (t, df={dof:g}); {bca_text(bca_low, bca_high)} "
                f"(n={len(seeds)} paired)")
    return Outcome(comparison, held, measured, run_ids, values, p, direction, estimate=estimate)
