"""How the paper_hp pilot sets each map's budget and "~" margin (issue 32). Declared 2026-12-07, before the pilot ran.

    python -m dm2_repro.verdicts.budget [--results results]     # the reading of the committed pilot runs

The pilot (experiments/paper_hp_pilot.py) trains IPPO, one seed, at the paper's per-update settings with a generous
budget. From its test win rate w(t) at the evaluation steps t, per map:

- rise: the pilot's final level L, the mean of the last FINAL_FRACTION of its evaluations, must lie at least RISE
  above w(0); otherwise IPPO did not learn within the pilot and the map gets no budget from it.
- reached: the first evaluation step at which the trailing mean of SMOOTH evaluations is within TOLERANCE of L
  (one seed, 32 test episodes: a single evaluation's standard error is up to ~0.09, three of them ~0.05).
- budget B = reached x PLATEAU_FACTOR, rounded up to BUDGET_GRID (100k: declared as "the 100k snapshot grid" when
  the preset saved a snapshot every 100k; its experts now save one every tenth of the budget, so the 50% / 70%
  demonstrations are the 50% / 70% snapshots of any budget), and
  at most the pilot's own last evaluation: the panel's curves then spend at least a third of their budget on the
  plateau, which is what "risen and plateaued" asks to see, and the demonstrations' 50% / 70% snapshots fall
  on the rise and near the plateau.
- margin = MARGIN_FRACTION x (the normalised AUC of w over [0, B] - w(0)): the rule the cpu preset's margins were
  declared by (docs/figures.md), here from the pilot's one IPPO seed.

These are pure functions of (steps, win rates), tested on hand-written curves (tests/test_budget.py).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np

FINAL_FRACTION = 0.25   # the final level: the mean of the pilot's last quarter of evaluations
RISE = 0.2              # the least rise of the final level above the step-0 win rate that counts as learning
SMOOTH = 3              # evaluations in the trailing mean that must come within TOLERANCE of the final level
TOLERANCE = 0.05
PLATEAU_FACTOR = 1.5    # budget = the step the plateau is reached x this: a third of the budget on the plateau
BUDGET_GRID = 100_000   # budgets are multiples of this (the declared rounding)
MARGIN_FRACTION = 0.1   # the "~" margin: this fraction of IPPO's gain in AUC over its step-0 value


@dataclass(frozen=True)
class PilotReading:
    start: float              # w(0)
    final: float              # L
    reached: int | None       # the first step whose trailing mean is within TOLERANCE of L (None: no rise)
    budget: int | None        # B (None: no rise)
    auc: float | None         # the normalised AUC of w over [0, B]
    margin: float | None      # MARGIN_FRACTION x (auc - start)

    def describe(self) -> str:
        if self.budget is None:
            return (f"no rise: final level {self.final:.3f} is less than {RISE} above the start {self.start:.3f}; "
                    "no budget from this pilot")
        return (f"start {self.start:.3f}, final level {self.final:.3f}; within {TOLERANCE} of it (trailing mean of "
                f"{SMOOTH}) from {self.reached:,} steps; budget {self.budget:,}; AUC over it {self.auc:.3f}, margin "
                f"{self.margin:.3f}")


def final_level(values: np.ndarray) -> float:
    """L: the mean of the last FINAL_FRACTION of the evaluations (at least one)."""
    n = max(1, math.ceil(FINAL_FRACTION * len(values)))
    return float(np.mean(values[-n:]))


def reached_step(steps: np.ndarray, values: np.ndarray, level: float) -> int:
    """The first step whose trailing mean of SMOOTH evaluations (fewer at the start) is within TOLERANCE of `level`."""
    for i in range(len(values)):
        if abs(np.mean(values[max(0, i - SMOOTH + 1):i + 1]) - level) <= TOLERANCE:
            return int(steps[i])
    return int(steps[-1])   # unreachable when `level` is the mean of the last evaluations, kept for safety


def budget_from(reached: int, grid: int, last: int) -> int:
    """reached x PLATEAU_FACTOR rounded up to a multiple of `grid`, at most `last` (the pilot's last evaluation)."""
    return min(grid * math.ceil(reached * PLATEAU_FACTOR / grid), last)


def auc_upto(steps: np.ndarray, values: np.ndarray, budget: float) -> float:
    """The normalised AUC (trapezoid, divided by the step range) of the evaluations at steps <= budget."""
    keep = steps <= budget
    s, v = steps[keep].astype(float), values[keep]
    return float(np.trapezoid(v, s) / (s[-1] - s[0]))


def read_pilot(steps, values, grid: int) -> PilotReading:
    """The reading of one pilot curve: steps[N] (increasing, from 0) and win rates values[N]."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    if len(steps) < 2 or np.any(np.diff(steps) <= 0):
        raise ValueError("a pilot curve needs at least two evaluations at increasing steps")
    start, final = float(values[0]), final_level(values)
    if final - start < RISE:
        return PilotReading(start, final, None, None, None, None)
    reached = reached_step(steps, values, final)
    budget = budget_from(reached, grid, int(steps[-1]))
    auc = auc_upto(steps, values, budget)
    return PilotReading(start, final, reached, budget, auc, MARGIN_FRACTION * (auc - start))


def pilot_reading(curve) -> PilotReading | None:
    """The reading of a pilot curve's run (a results.runs.CurveRuns of one seed); None without a completed run."""
    from dm2_repro.envs import METRICS

    if not curve.runs:
        return None
    series = next(iter(curve.runs.values())).metric(METRICS["win_rate"])
    return read_pilot(series.index.to_numpy(), series.to_numpy(), BUDGET_GRID)


def pilot_marks(curve) -> list[tuple[str, int]]:
    """The pilot figure's vertical lines (FigureDef.marks): where the rule finds the plateau and the budget it sets."""
    reading = pilot_reading(curve)
    if reading is None or reading.budget is None:
        return []
    return [("plateau reached", reading.reached),
            (f"budget ({PLATEAU_FACTOR:g}x that, rounded up to a multiple of {BUDGET_GRID // 1000}k)", reading.budget)]


def main(argv=None) -> int:
    from dm2_repro.results.runs import curve_runs, load_runs
    from dm2_repro.sweeps.plan import expand
    from dm2_repro.validate import existing_dir

    parser = argparse.ArgumentParser(prog="python -m dm2_repro.verdicts.budget", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="results directory")
    args = parser.parse_args(argv)
    results_dir = existing_dir("--results", args.results)
    plan = expand("paper_hp_pilot", "paper_hp")
    for c in curve_runs(plan.curves, load_runs(results_dir)):
        reading = pilot_reading(c)
        if reading is None:
            print(f"{c.curve.map}: no completed pilot run (python -m dm2_repro.run paper_hp_pilot --maps {c.curve.map})")
        else:
            print(f"{c.curve.map}: {reading.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
