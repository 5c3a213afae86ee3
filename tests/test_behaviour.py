"""The report's end-of-training behaviour table (dm2_repro.figures.behaviour), on hand-written runs."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from dm2_repro.figures.behaviour import behaviour_lines, demonstrations, end_of_training
from dm2_repro.results.runs import CurveRuns


class Run:
    """What the table reads of a SacredRun: metrics by name, the run's info, its path."""

    def __init__(self, path: str, metrics: dict[str, list[float]], demo: dict | None = None):
        self.path, self.info = Path(path), ({"demo": demo} if demo else {})
        self.metrics = {name: {"steps": list(range(len(v))), "values": v} for name, v in metrics.items()}

    def metric(self, name: str) -> pd.Series:
        values = self.metrics.get(name, {}).get("values", [])
        return pd.Series(values, index=range(len(values)), dtype=float)


def curve(label: str, runs: dict[int, Run], panel: str = "3s_vs_3z", with_demo: bool = False,
          key: str | None = None, demo_file: str = "absent", gail_reward: str = "absorbing") -> CurveRuns:
    demo = SimpleNamespace(path=lambda results_dir: Path(results_dir) / "demos" / f"{demo_file}.npz") if with_demo else None
    jobs = tuple(SimpleNamespace(seed=seed, demo=demo, gail_reward=gail_reward) for seed in (1, 2))
    return CurveRuns(SimpleNamespace(label=label, key=key or label, panel=panel, jobs=jobs,
                                     demos=tuple(j.demo for j in jobs if j.demo)), runs)


def played(lengths, wins, returns) -> dict[str, list[float]]:
    return {"test_ep_length_mean": lengths, "test_battle_won_mean": wins, "test_return_mean": returns}


def test_end_of_training_is_the_seed_mean_of_the_last_three_evaluations():
    c = curve("IPPO", {1: Run("r/1", played([99, 10, 20, 30], [0, 0, 0.5, 1], [0, 3, 6, 9])),
                       2: Run("r/2", played([99, 40, 50, 60], [1, 1, 1, 1], [0, 12, 15, 18]))})
    length, win, ret = end_of_training(c)
    assert (length, win, ret) == pytest.approx((35.0, 0.75, 10.5))   # (20 + 50) / 2, (0.5 + 1) / 2, (6 + 15) / 2


def test_a_metric_no_run_logged_is_nan_and_no_runs_is_none():
    c = curve("old", {1: Run("r/1", {"test_battle_won_mean": [0.1, 0.2, 0.3]})})
    length, win, _ = end_of_training(c)
    assert math.isnan(length) and win == pytest.approx(0.2)
    assert end_of_training(curve("none", {})) is None


def test_demonstrations_are_the_sampled_team_each_run_recorded(tmp_path):
    demo = lambda n, w, r: {"demo_ep_length_mean": n, "demo_win_rate": w, "demo_return_mean": r,
                            "quality": 0.9}   # greedy quality: not what the row shows
    c = curve("DM²", {1: Run("r/1", played([5] * 3, [0] * 3, [1] * 3), demo(40, 0.1, 8.0)),
                      2: Run("r/2", played([5] * 3, [0] * 3, [1] * 3), demo(60, 0.3, 12.0))}, with_demo=True)
    assert demonstrations(c, tmp_path) == pytest.approx((50.0, 0.2, 10.0))
    assert demonstrations(curve("IPPO", c.runs), tmp_path) is None


def test_table_shows_values_before_the_rerun_only_for_curves_it_changed(tmp_path):
    now = {("3s_vs_3z", "dm2"): curve("DM²", {1: Run("new/1", played([50] * 3, [0.9] * 3, [19.0] * 3))}),
           ("3s_vs_3z", "ippo"): curve("IPPO", {1: Run("same/1", played([52] * 3, [1.0] * 3, [20.0] * 3))}),
           ("3s_vs_3z", "sil"): curve("SIL", {})}
    before = {("3s_vs_3z", "dm2"): curve("DM²", {1: Run("old/1", played([30] * 3, [0.5] * 3, [15.0] * 3))},
                                         gail_reward="logit"),   # re-run: other jobs
              ("3s_vs_3z", "ippo"): now[("3s_vs_3z", "ippo")]}
    lines = behaviour_lines(now, tmp_path, before)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ") and "---" not in line}
    assert rows["DM²"] == "| DM² | 50.0 (30.0) / 0.90 (0.50) / 19.00 (15.00) |"
    assert rows["IPPO"] == "| IPPO | 52.0 / 1.00 / 20.00 |"
    assert "SIL" not in rows   # no runs: no row (the runs table says so)
    assert behaviour_lines({("3s_vs_3z", "sil"): now[("3s_vs_3z", "sil")]}, tmp_path) == []


def test_demonstrations_fall_back_on_the_json_and_a_missing_key_is_a_dash(tmp_path):
    """Runs made before they recorded the demonstration read its json; a json without the episode length (older
    files) leaves that column "—" and the others intact; seeds without a run are not averaged in."""
    import json

    (tmp_path / "demos").mkdir()
    (tmp_path / "demos" / "old.json").write_text(json.dumps({"demo_win_rate": 0.25, "demo_return_mean": 6.0}))
    c = curve("DM²", {1: Run("r/1", played([9] * 3, [0.5] * 3, [10.0] * 3))}, with_demo=True, demo_file="old")
    length, win, ret = demonstrations(c, tmp_path)
    assert math.isnan(length) and (win, ret) == pytest.approx((0.25, 6.0))
    lines = behaviour_lines({("3s_vs_3z", "dm2"): c}, tmp_path)
    table = [line for line in lines if line.startswith("| DM²")]
    assert table == ["| DM² | 9.0 / 0.50 / 10.00 |", "| DM²: its demonstrations (sampled episodes) | — / 0.25 / 6.00 |"]
    assert demonstrations(curve("DM²", {}, with_demo=True, demo_file="old"), tmp_path) is None


def test_one_row_per_curve_key_across_panels_whose_labels_differ(tmp_path):
    """fig2's early-demonstration curve is "20k" on one map and "15k" on another: one row, both labels."""
    runs = {1: Run("r/1", played([9] * 3, [0.5] * 3, [10.0] * 3))}
    curves = {("5m_vs_6m", "early"): curve("DM² (20k)", runs, panel="5m_vs_6m", key="early"),
              ("3s_vs_3z", "early"): curve("DM² (15k)", runs, panel="3s_vs_3z", key="early"),
              ("3s_vs_3z", "ippo"): curve("IPPO", runs, panel="3s_vs_3z")}
    rows = [line for line in behaviour_lines(curves, tmp_path) if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["| DM² (20k) / DM² (15k) | 9.0 / 0.50 / 10.00 | 9.0 / 0.50 / 10.00 |",
                        "| IPPO | — | 9.0 / 0.50 / 10.00 |"]
