"""What each curve's learners do at the end of training, beside the demonstrations they imitate: the check the
GAIL-reward issue asks for after any change to a reward, mask, termination or bootstrap (a learner paid to end
games plays shorter games than IPPO and than its demonstrators).

Per curve and panel: the mean over seeds of each run's last FINAL_EVALS test evaluations of the episode length,
win rate and return; per curve with demonstrations, the same three numbers of the SAMPLED demonstration episodes
(the team DM² imitates: json `demo_ep_length_mean`, `demo_win_rate`, `demo_return_mean`), mean over its seeds'
files; and where the curve was re-run, its values before the re-run in parentheses. Descriptive only: no verdict
rests on this table (the report's comparisons do that). Made by `claims --readme` into each figure's section.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dm2_repro.results.curves import FINAL_EVALS, final_win_rate
from dm2_repro.results.runs import CurveRuns, demo_episode_length, demo_quality
from dm2_repro.verdicts.rerun import rerun_curve

LENGTH, WIN, RETURN = "test_ep_length_mean", "test_battle_won_mean", "test_return_mean"   # the logged names
DEMO_ROW = "its demonstrations (sampled episodes)"


def _mean(values: list[float]) -> float:
    """The mean of the finite values (nan where there is none): one seed without a metric blanks nothing."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def end_of_training(curve: CurveRuns) -> tuple[float, float, float] | None:
    """(episode length, win rate, return): per seed the mean of its last FINAL_EVALS evaluations, then the
    mean over the seeds that logged it; None without runs. A metric no run logged is nan."""
    if not curve.runs:
        return None
    return tuple(_mean([final_win_rate(s, math.inf) for s in curve.series(name).values() if len(s)])   # any metric
                 for name in (LENGTH, WIN, RETURN))


def demonstrations(curve: CurveRuns, results_dir: str | Path) -> tuple[float, float, float] | None:
    """(episode length, win rate, return) of the sampled demonstration episodes of the curve's seeds that have a
    run (the seeds its own row averages), mean over those whose run or file records each; None for a curve
    without demonstrations or runs."""
    jobs = [job for job in curve.curve.jobs if job.demo and job.seed in curve.runs]
    if not jobs:
        return None
    values = [(demo_episode_length(job.demo, curve.runs[job.seed], results_dir),
               demo_quality(job.demo, curve.runs[job.seed], results_dir, "win_rate", "sampled"),
               demo_quality(job.demo, curve.runs[job.seed], results_dir, "return", "sampled")) for job in jobs]
    return tuple(_mean([v[i] for v in values]) for i in range(3))


def cell(values: tuple[float, float, float] | None, before: tuple[float, float, float] | None = None) -> str:
    """"length / win rate / return", each followed by its value before the re-run in parentheses when given."""
    if values is None:
        return "—"
    formats = ("{:.1f}", "{:.2f}", "{:.2f}")
    parts = []
    for i, fmt in enumerate(formats):
        text = "—" if math.isnan(values[i]) else fmt.format(values[i])
        if before is not None and not math.isnan(before[i]):
            text += f" ({fmt.format(before[i])})"
        parts.append(text)
    return " / ".join(parts)


def behaviour_lines(curves: dict, results_dir: str | Path, before: dict | None = None) -> list[str]:
    """The table for one figure: `curves` (map, key) -> CurveRuns as claims.load_curves gives them; `before`: the
    same figure's curves before the re-run (their values in parentheses where the runs differ)."""
    if not any(c.runs for c in curves.values()):
        return []
    panels = list(dict.fromkeys(c.curve.panel for c in curves.values()))
    # one row per curve key (a key's label may name each map's own snapshot: "20k" here, "15k" there)
    labels: dict[str, list[str]] = {}
    for c in curves.values():
        labels.setdefault(c.curve.key, [])
        if c.runs and c.curve.label not in labels[c.curve.key]:
            labels[c.curve.key].append(c.curve.label)
    rows: dict[str, dict[str, str]] = {}
    for key, c in curves.items():
        if not c.runs:   # the report's runs table already says which curves wait for their runs
            continue
        earlier = (before or {}).get(key)
        old = end_of_training(earlier) if rerun_curve(c, earlier) else None   # None: no runs before it either
        label = " / ".join(labels[c.curve.key])
        rows.setdefault(label, {})[c.curve.panel] = cell(end_of_training(c), old)
        demo = demonstrations(c, results_dir)
        if demo is not None:
            rows.setdefault(f"{label}: {DEMO_ROW}", {})[c.curve.panel] = cell(demo)
    lines = [f"End of training (mean over seeds of the last {FINAL_EVALS} test evaluations): episode length / win "
             "rate / return; in parentheses the curve's runs before the re-run, where it was re-run. The "
             "demonstration rows are the sampled episodes the curve imitates (descriptive: no verdict rests on this "
             "table).", "",
             "| curve | " + " | ".join(panels) + " |", "|---" * (len(panels) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells.get(p, "—") for p in panels) + " |" for label, cells in rows.items()]
    return lines + [""]
