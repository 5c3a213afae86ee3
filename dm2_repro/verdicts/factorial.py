"""Figure 3 as a 2x2 design (C5): co-training x concurrent sampling, per panel and pooled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dm2_repro.config import MAX_RETURN
from dm2_repro.envs import metric_of
from dm2_repro.results import stats
from dm2_repro.results.curves import common_range, format_values, seed_values
from dm2_repro.verdicts.findings import (BOOTSTRAP_SEED, CONFIDENCE, EQUIVALENCE_MARGIN, EQUIVALENT, GREATER,
                                         MIN_SEEDS, NO_DATA, N_BCA, equivalence_margin, fig3)
from dm2_repro.verdicts.decide import _ci, bca_text, verdict, verdict_p
from dm2_repro.verdicts.rerun import moved_text


# ---------------------------------------------------------------------------------------------
# Figure 3 as a 2x2 design (C5)
# ---------------------------------------------------------------------------------------------

# cells[a][b]: factor A = the experts (co-trained, independent), B = sampling (concurrent, not)
FIG3_CELLS = (("co_concurrent", "co_nonconcurrent"), ("indep_concurrent", "indep_nonconcurrent"))
FIG3_LEVELS = ("early", "late")
POOLED = "both"
# stats.factorial_effects' key -> (what it measures, test of its finding or None, the finding)
FIG3_EFFECTS = {
    "A": ("co-trained - independent", GREATER, "Co-trained demonstrations matter"),
    "B": ("concurrent - non-concurrent", EQUIVALENT, "Concurrent sampling does not matter"),
    "AB": ("interaction: co-training's effect with concurrent sampling minus without", None, None),
}


@dataclass
class EffectRow:
    panel: str                  # a demonstration quality of FIG3_LEVELS, or POOLED
    effect: str                 # a key of FIG3_EFFECTS
    values: dict[int, float]    # learner seed -> that seed's effect
    measured: str
    verdict: str                # "" for the interaction (no finding)
    estimate: float | None = None   # the mean per-seed effect (None: too few seeds)
    before: EffectRow | None = None  # the same row on the runs before the re-run (with_before_rerun)
    p_value: float | None = None     # the p of the verdict's own one-sample t test (decide.verdict_p), for Holm
    direction: str = ""              # the verdict that p < ALPHA gives (HOLDS or FAILS)
    holm: str = ""                   # the verdict after Holm's adjustment over the report (decide.with_holm)


def fig3_cells(curves: dict, level: str, metric: str) -> dict[int, np.ndarray]:
    """Learner seed -> its AUCs cells[2, 2] (FIG3_CELLS) in one panel, for the seeds with a run in every
    cell; the AUCs are on the step range all four curves' runs cover."""
    grid = [[curves[(fig3.MAP, f"{level}_{style}")] for style in row] for row in FIG3_CELLS]
    span = common_range([c for row in grid for c in row if c.runs])
    auc = [[seed_values(c, "auc", *span, metric) if span and c.runs else {} for c in row] for row in grid]
    seeds = sorted(set.intersection(*(set(v) for row in auc for v in row)))
    return {s: np.array([[auc[a][b][s] for b in range(2)] for a in range(2)]) for s in seeds}


def effect_row(panel: str, effect: str, values: dict[int, float], margin: float = EQUIVALENCE_MARGIN) -> EffectRow:
    _, test, _ = FIG3_EFFECTS[effect]
    if len(values) < MIN_SEEDS:
        return EffectRow(panel, effect, values, f"n={len(values)} seeds with every cell (needs {MIN_SEEDS})",
                         NO_DATA if test else "")
    x = np.array(list(values.values()))
    estimate, low, high, dof = stats.paired_t_interval(x, np.zeros_like(x), CONFIDENCE)
    _, bca_low, bca_high = stats.bca_interval(x, confidence=CONFIDENCE, n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
    measured = f"{estimate:+.3f} {_ci(low, high)} (t, df={dof:g}); {bca_text(bca_low, bca_high)} (n={len(x)} seeds)"
    if not test:   # the interaction: no finding, so not in Holm's family
        return EffectRow(panel, effect, values, measured, "", estimate)
    p, direction = verdict_p(test, x, np.zeros_like(x), True, margin)
    return EffectRow(panel, effect, values, measured, verdict(test, low, high, margin), estimate, p_value=p,
                     direction=direction)


def factorial(curves: dict, metric: str = "win_rate", margin: float = EQUIVALENCE_MARGIN) -> list[EffectRow]:
    """Figure 3's main effects and interaction (stats.factorial_effects) per panel and pooled over both
    panels (per seed, the mean of its two panels' effects; seeds with all eight runs)."""
    per_panel = {}
    for level in FIG3_LEVELS:
        cells = fig3_cells(curves, level, metric)
        effects = stats.factorial_effects(np.stack(list(cells.values()))) if cells else {}
        per_panel[level] = {e: dict(zip(cells, effects[e].tolist())) if cells else {} for e in FIG3_EFFECTS}
    rows = []
    for effect in FIG3_EFFECTS:
        for level in FIG3_LEVELS:
            rows.append(effect_row(level, effect, per_panel[level][effect], margin))
        both = [s for s in per_panel[FIG3_LEVELS[0]][effect] if all(s in per_panel[lv][effect] for lv in FIG3_LEVELS)]
        rows.append(effect_row(POOLED, effect, {s: float(np.mean([per_panel[lv][effect][s] for lv in FIG3_LEVELS]))
                                                for s in both}, margin))
    return rows


def has_fig3_cells(curves: dict) -> bool:
    """Whether the loaded curves (claims.load_curves) hold all eight of Figure 3's (not cut by --curves)."""
    return all((fig3.MAP, f"{level}_{style}") in curves.get("fig3", {})
               for level in FIG3_LEVELS for row in FIG3_CELLS for style in row)


def fig3_effects(curves: dict, scale: str) -> list[EffectRow] | None:
    """Figure 3's 2x2 rows on the map's declared statistic and margin (claims.load_curves' curves of every
    figure); None unless all eight of its curves are loaded."""
    if not has_fig3_cells(curves):
        return None
    metric = metric_of(fig3.MAP, scale)
    return factorial(curves["fig3"], metric, equivalence_margin(fig3.MAP, metric, scale))


def with_before_rerun(rows: list[EffectRow], before: list[EffectRow]) -> list[EffectRow]:
    """The rows, each with its row on the runs before the re-run (factorial() of those curves: the same order)."""
    for row, earlier in zip(rows, before, strict=True):
        row.before = earlier
    return rows


def factorial_lines(rows: list[EffectRow], metric: str = "win_rate") -> list[str]:
    of = "win rate" if metric == "win_rate" else f"test return / {MAX_RETURN:g}"
    rerun = any(row.before is not None for row in rows)
    lines = [f"| effect (AUC of {of}) | panel | per-seed effect (seed order) | measured (95%) | verdict | Holm |"
             + (" before the re-run |" if rerun else ""),
             "|---|---|---|---|---|---|" + ("---|" if rerun else "")]
    for row in rows:
        what, _, _ = FIG3_EFFECTS[row.effect]
        shown = f"**{row.verdict}**" if row.verdict else "(no finding)"
        lines.append(f"| {what} | {row.panel} | {format_values(row.values.values())} | {row.measured} | {shown} | "
                     f"{row.holm or row.verdict} |"
                     + (f" {moved_text(row.verdict, row.estimate, row.before.verdict, row.before.estimate)} |"
                        if rerun else ""))
    return lines


def factorial_section(effects: list, scale: str) -> list[str]:
    """Figure 3 as a 2x2 design (C5): both factors' main effects and their interaction, the rows
    factorial() made for results/claims.md."""
    return ["Both factors at once (C5): a 2x2 design per panel and pooled over both panels, each effect's "
            "per-seed values and one-sample t interval.", "",
            *factorial_lines(effects, metric_of(fig3.MAP, scale)), ""]
