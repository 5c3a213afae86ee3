"""How each verdict moved with the re-run of the DM²-family curves (2026-12-07): the same comparisons judged on
the runs before it, the log-odds GAIL reward without an absorbing state at the preset's own discriminator rate
(sweeps.plan.BEFORE_RERUN), which paid agents to end episodes early.

A comparison counts as re-run where either of its curves has other jobs in that arm (a DM²-family curve of a
figure that follows the re-run, sweeps.plan.rerun_figure); comparisons of IPPO, QMIX and RMAPPO alone were
not re-run and carry no `before`.
"""
from __future__ import annotations

from dm2_repro.verdicts.findings import NO_DATA, Comparison, Outcome


def rerun_comparison(comparison: Comparison, now: dict, before: dict) -> bool:
    """Whether a side of the comparison has other jobs before the re-run. `now`, `before`: claims.load_curves'
    figure -> (map, key) -> CurveRuns of the current plan and of the arm before the re-run."""
    keys = [key for key in (comparison.a, comparison.b) if key]
    return any(now[comparison.figure][(comparison.map, key)].curve.jobs
               != before[comparison.figure][(comparison.map, key)].curve.jobs for key in keys)


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
    if o.before is None or not o.verdict or NO_DATA in (o.verdict, o.before.verdict):   # "": no finding
        return None
    return o.verdict != o.before.verdict


def before_text(o) -> str:
    """The report's cell: the verdict and estimate before the re-run, and how far the estimate moved. `o`: an
    Outcome, or anything with `verdict`, `estimate` and `before` (factorial.EffectRow)."""
    if o.before is None:
        return "— (not re-run)"
    if o.before.verdict == NO_DATA or o.before.estimate is None:
        return NO_DATA
    text = f"{o.before.verdict + ' ' if o.before.verdict else ''}({o.before.estimate:+.3f})"
    if o.estimate is not None:
        moved = changed(o)
        text += f"; Δ {o.estimate - o.before.estimate:+.3f}" + {True: ", **changed**", False: ", same", None: ""}[moved]
    return text
