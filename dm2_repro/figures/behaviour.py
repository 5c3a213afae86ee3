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

from dm2_repro.results.curves import FINAL_EVALS
from dm2_repro.results.runs import CurveRuns, demo_episode_length, demo_quality

LENGTH, WIN, RETURN = "test_ep_length_mean", "test_battle_won_mean", "test_return_mean"   # the logged names
DEMO_ROW = "its demonstrations (sampled episodes)"


def end_of_training(curve: CurveRuns) -> tuple[float, float, float] | None:
    """(episode length, win rate, return): per seed the mean of its last FINAL_EVALS evaluations, then the
    mean over seeds; None without runs. A metric no run logged is nan."""
    if not curve.runs:
        return None
    found = []
    for name in (LENGTH, WIN, RETURN):
        per_seed = [float(s.iloc[-FINAL_EVALS:].mean()) for s in curve.series(name).values() if len(s)]
        found.append(float(np.mean(per_seed)) if per_seed else math.nan)
    return tuple(found)


def demonstrations(curve: CurveRuns, results_dir: str | Path) -> tuple[float, float, float] | None:
    """(episode length, win rate, return) of the curve's sampled demonstration episodes, mean over the seeds
    whose file or run records them; None for a curve without demonstrations."""
    if not curve.curve.demos:
        return None
    columns: list[list[float]] = [[], [], []]
    for job in curve.curve.jobs:
        if not job.demo:
            continue
        run = curve.runs.get(job.seed)
        values = (demo_episode_length(job.demo, run, results_dir),
                  demo_quality(job.demo, run, results_dir, "win_rate", "sampled"),
                  demo_quality(job.demo, run, results_dir, "return", "sampled"))
        for column, value in zip(columns, values):
            if value is not None:
                column.append(value)
    return tuple(float(np.mean(c)) if c else math.nan for c in columns)


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


def rerun(now: CurveRuns, before: CurveRuns | None) -> bool:
    """Whether the curve's runs changed with the re-run (its runs before it are other runs)."""
    if before is None or not before.runs or not now.runs:
        return False
    return {r.path for r in now.runs.values()} != {r.path for r in before.runs.values()}


def behaviour_lines(curves: dict, results_dir: str | Path, before: dict | None = None) -> list[str]:
    """The table for one figure: `curves` (map, key) -> CurveRuns as claims.load_curves gives them; `before`: the
    same figure's curves before the re-run (their values in parentheses where the runs differ)."""
    if not any(c.runs for c in curves.values()):
        return []
    panels = list(dict.fromkeys(c.curve.panel for c in curves.values()))
    rows: dict[str, dict[str, str]] = {}
    for key, c in curves.items():
        if not c.runs:   # the report's runs table already says which curves wait for their runs
            continue
        earlier = (before or {}).get(key)
        old = end_of_training(earlier) if rerun(c, earlier) else None
        rows.setdefault(c.curve.label, {})[c.curve.panel] = cell(end_of_training(c), old)
        demo = demonstrations(c, results_dir)
        if demo is not None:
            rows.setdefault(f"{c.curve.label}: {DEMO_ROW}", {})[c.curve.panel] = cell(demo)
    lines = [f"End of training (mean over seeds of the last {FINAL_EVALS} test evaluations): episode length / win "
             "rate / return; in parentheses the curve's runs before the re-run, where it was re-run. The "
             "demonstration rows are the sampled episodes the curve imitates (descriptive: the comparisons above "
             "give the verdicts).", "",
             "| curve | " + " | ".join(panels) + " |", "|---" * (len(panels) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells.get(p, "—") for p in panels) + " |" for label, cells in rows.items()]
    return lines + [""]
