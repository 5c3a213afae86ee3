"""How each verdict moved with the re-run of the DM²-family curves (2026-12-07): the same comparisons judged on
the runs before it, the log-odds GAIL reward without an absorbing state at the preset's own discriminator rate
(sweeps.plan.BEFORE_RERUN), which paid agents to end episodes early.

A comparison counts as re-run where either of its curves has other jobs in that arm (a DM²-family curve of a
figure that follows the re-run, sweeps.plan.rerun_figure); comparisons with no earlier arm (IPPO, QMIX and RMAPPO
alone; the reward-form and departure figures, which set their forms themselves) carry no `before`.
"""
from __future__ import annotations

from dm2_repro.verdicts.findings import NO_DATA, Comparison, Outcome


def rerun_curve(now, before) -> bool:
    """Whether a curve has other jobs before the re-run (`now`, `before`: its CurveRuns in the current plan and in
    the arm before the re-run; `before` None: no such arm)."""
    return before is not None and now.curve.jobs != before.curve.jobs


def rerun_comparison(comparison: Comparison, now: dict, before: dict) -> bool:
    """Whether a side of the comparison has other jobs before the re-run. `now`, `before`: claims.load_curves'
    figure -> (map, key) -> CurveRuns of the current plan and of the arm before the re-run."""
    keys = [key for key in (comparison.a, comparison.b) if key]
    return any(rerun_curve(now[comparison.figure][(comparison.map, key)],
                           before[comparison.figure][(comparison.map, key)]) for key in keys)


def with_before(outcomes: list[Outcome], before_outcomes: list[Outcome], now: dict, before: dict) -> list[Outcome]:
    """The outcomes, each re-run comparison's `before` set to its outcome on the runs before the re-run."""
    earlier = {o.comparison: o for o in before_outcomes}
    for o in outcomes:
        if o.comparison in earlier and rerun_comparison(o.comparison, now, before):
            o.before = earlier[o.comparison]
    return outcomes


def changed(o) -> bool | None:
    """Whether the verdict moved from the runs before the re-run (None: not re-run, or no data on either side).
    `o`: an Outcome, or anything with `verdict` and `before` (factorial.EffectRow)."""
    return None if o.before is None else verdict_moved(o.verdict, o.before.verdict)


def verdict_moved(verdict: str, before_verdict: str) -> bool | None:
    """Whether `verdict` differs from `before_verdict` (None: either has no data, or "" a row without a finding)."""
    if not verdict or NO_DATA in (verdict, before_verdict):
        return None
    return verdict != before_verdict


def before_text(o: Outcome) -> str:
    """The report's cell of an outcome: its verdict and estimate before the re-run, and how far the estimate moved."""
    if o.before is None:
        return "— (not re-run)"
    if not any(o.before.run_ids.values()):   # e.g. a preset whose runs all came after the re-run
        return "— (no runs before the re-run)"
    return moved_text(o.verdict, o.estimate, o.before.verdict, o.before.estimate)


def moved_text(verdict: str, estimate: float | None, before_verdict: str, before_estimate: float | None) -> str:
    """A verdict and estimate before the re-run, and how far the estimate moved to `estimate` (verdict "": a
    row without a finding, e.g. Figure 3's interaction)."""
    if before_verdict == NO_DATA or before_estimate is None:
        return NO_DATA
    text = f"{before_verdict + ' ' if before_verdict else ''}({before_estimate:+.3f})"
    if estimate is not None:
        moved = verdict_moved(verdict, before_verdict)
        text += f"; Δ {estimate - before_estimate:+.3f}" + {True: ", **changed**", False: ", same", None: ""}[moved]
    return text
