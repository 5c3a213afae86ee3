"""Figure 7: where DM²'s curve saturates in demonstration quality (C4).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dm2_repro.envs import metric_of
from dm2_repro.results import stats
from dm2_repro.results.curves import common_range, format_values, metric_scale, seed_values
from dm2_repro.results.runs import CurveRuns
from dm2_repro.verdicts.findings import (CONFIDENCE, EQUIVALENCE_MARGIN, MIN_QUALITIES, MIN_SEEDS, NO_DATA,
                                         equivalence_margin, fig7)


# ---------------------------------------------------------------------------------------------
# Figure 7: where DM²'s curve saturates in demonstration quality
# ---------------------------------------------------------------------------------------------

@dataclass
class SaturationRow:
    key: str
    quality: float | None              # mean demonstration quality over the curve's seeds
    auc: dict[int, float]              # seed -> AUC
    delta: tuple[float, float, float] | None = None   # paired ΔAUC to the last snapshot: est, low, high
    equivalent: bool | None = None     # interval inside +-EQUIVALENCE_MARGIN (None: < MIN_SEEDS pairs)
    differs: bool | None = None        # interval excludes 0: a difference from the last is detected


def saturation(curves: list[CurveRuns], results_dir: Path, metric: str = "win_rate",
               margin: float = EQUIVALENCE_MARGIN) -> tuple[list[SaturationRow], str]:
    """Fig. 7's snapshot curves in sweep order, each against the last (best) snapshot, paired by
    learner seed: ΔAUC with a paired t interval. Snapshots with fewer than MIN_SEEDS seeds paired with
    the last are left out of the finding (the sweep may be thinned), which needs MIN_QUALITIES
    snapshots, the last included. The curve saturates at the first snapshot from which every later one,
    itself included, is equivalent to the last (interval inside +-margin); the finding also
    names the first snapshot from which no later one differs detectably (interval holding 0), the
    stricter reading. Returns the rows and the finding in words."""
    span = common_range([c for c in curves if c.runs])
    rows = []
    for c in curves:
        auc = seed_values(c, "auc", *span, metric) if span and c.runs else {}
        qualities = c.demo_qualities(results_dir, metric)
        quality = float(np.mean(list(qualities.values()))) / metric_scale(metric) if qualities else None
        rows.append(SaturationRow(c.curve.key, quality, auc))
    best = rows[-1]
    for row in rows[:-1]:
        seeds = [s for s in row.auc if s in best.auc]
        if len(seeds) >= MIN_SEEDS:
            a, b = (np.array([r.auc[s] for s in seeds]) for r in (row, best))
            estimate, low, high, _ = stats.paired_t_interval(a, b, CONFIDENCE)
            row.delta = (estimate, low, high)
            row.equivalent = -margin < low and high < margin
            row.differs = not low <= 0.0 <= high
    done = [row for row in rows[:-1] if row.equivalent is not None]
    left_out = [f"{row.key} ({len(row.auc)} seed{'' if len(row.auc) == 1 else 's'})" for row in rows[:-1]
                if row.equivalent is None]
    omitted = f"; left out, fewer than {MIN_SEEDS} seeds: {', '.join(left_out)}" if left_out else ""
    if len(best.auc) < MIN_SEEDS or len(done) + 1 < MIN_QUALITIES:
        return rows, (f"{NO_DATA} (needs {MIN_QUALITIES} snapshots with {MIN_SEEDS} seeds paired with the last, "
                      f"the last included; has {len(done) + (len(best.auc) >= MIN_SEEDS)}){omitted}")

    def first_from(holds) -> SaturationRow:   # the first complete row from which `holds` is true to the end
        first = len(done)
        while first > 0 and holds(done[first - 1]):
            first -= 1
        return (done + [best])[first]

    def named(row: SaturationRow) -> str:
        return row.key + (f" (greedy demonstration quality {row.quality:.3f})" if row.quality is not None else "")

    at, no_difference = first_from(lambda r: r.equivalent), first_from(lambda r: not r.differs)
    stricter = (f"; no difference from the last is detected from {named(no_difference)} on"
                if no_difference is not at else "")
    if at is best:
        return rows, (f"does not saturate before the last snapshot ({best.key}): no earlier one is equivalent "
                      f"to it{omitted}")
    return rows, (f"saturates at {named(at)}: it and every later snapshot are within +-{margin:g} "
                  f"AUC of the last{stricter}{omitted}")


def saturation_section(curves: dict, scale: str, results_dir, before: dict | None = None) -> list[str]:
    """Figure 7: each snapshot's curve against the last one (saturation); `before`: Figure 7's curves on the runs
    before the re-run (claims.load_curves(before_rerun=True)), whose finding is given beside."""
    metric = metric_of(fig7.MAP, scale)
    margin = equivalence_margin(fig7.MAP, metric, scale)
    snapshots = lambda found: [c for (m, key), c in found.items() if key != "qmix"]  # noqa: E731
    if not snapshots(curves):   # --maps / --curves left them out
        return []
    rows, finding = saturation(snapshots(curves), results_dir, metric, margin)
    lines = ["Where the curve saturates (C4): each snapshot's AUC against the last snapshot's, paired by seed.", "",
             f"| snapshot | greedy demo quality (mean) | AUC per seed | ΔAUC to the last [95% paired t] | "
             f"within ±{margin:g} | differs (interval excludes 0) |",
             "|---|---|---|---|---|---|"]
    yes_no = lambda flag: "—" if flag is None else ("yes" if flag else "no")  # noqa: E731
    for row in rows:
        quality = "—" if row.quality is None else f"{row.quality:.3f}"
        delta = "—" if row.delta is None else f"{row.delta[0]:+.3f} [{row.delta[1]:+.3f}, {row.delta[2]:+.3f}]"
        lines.append(f"| {row.key} | {quality} | {format_values(row.auc.values())} | {delta} | "
                     f"{yes_no(row.equivalent)} | {yes_no(row.differs)} |")
    lines += ["", f"Finding: {finding}."]
    if before is not None and snapshots(before):
        lines += ["", f"Before the re-run (the log-odds GAIL reward): {saturation(snapshots(before), results_dir, metric, margin)[1]}."]
    return lines + [""]
