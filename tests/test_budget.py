"""The paper_hp pilot's reading (dm2_repro.verdicts.budget) on hand-written curves."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dm2_repro.verdicts.budget import pilot_marks, read_pilot

GRID = 100_000


def test_a_rise_then_a_plateau_sets_the_budget_half_again_past_where_the_plateau_is_reached():
    steps = np.arange(0, 2_000_001, 100_000)                   # 21 evaluations
    values = np.minimum(0.8 * steps / 1_000_000, 0.8)          # 0 -> 0.8 by 1M, then flat
    reading = read_pilot(steps, values, GRID)
    assert reading.start == 0.0 and reading.final == pytest.approx(0.8)
    # trailing means of 3: at 1.0M (0.64 + 0.72 + 0.8) / 3 = 0.72, at 1.1M (0.72 + 0.8 + 0.8) / 3 = 0.773
    assert reading.reached == 1_100_000
    assert reading.budget == 1_700_000                         # 1.65M up to the 100k grid
    auc = (0.5 * 1_000_000 * 0.8 + 700_000 * 0.8) / 1_700_000  # the rise's triangle and the plateau
    assert reading.auc == pytest.approx(auc) and reading.margin == pytest.approx(0.1 * auc)
    assert "budget 1,700,000" in reading.describe()


def test_noise_on_the_plateau_does_not_move_the_reading_as_a_single_evaluation_would():
    steps = np.arange(0, 2_000_001, 100_000)
    values = np.minimum(0.8 * steps / 1_000_000, 0.8)
    values[8] = 0.78                                           # one lucky evaluation on the rise (0.64 expected)
    # a single evaluation would say 800k; the trailing means are 0.607 at 800k, 0.687 at 900k, 0.767 at 1.0M
    assert read_pilot(steps, values, GRID).reached == 1_000_000


def test_a_late_plateau_is_capped_at_the_pilots_last_evaluation():
    steps = np.arange(0, 1_000_001, 100_000)
    values = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.9])
    reading = read_pilot(steps, values, GRID)
    assert reading.final == pytest.approx((0.7 + 0.9 + 0.9) / 3)   # the last quarter: ceil(11 / 4) = 3 evaluations
    assert reading.reached == 1_000_000 and reading.budget == 1_000_000   # 1.5M, capped


def test_no_rise_sets_no_budget():
    steps = np.arange(0, 1_000_001, 100_000)
    values = np.full(len(steps), 0.1)
    values[-3:] = 0.25                                         # a final level 0.15 above the start: not a rise
    reading = read_pilot(steps, values, GRID)
    assert reading.budget is None and reading.margin is None and reading.describe().startswith("no rise")


def test_a_curve_needs_two_evaluations_at_increasing_steps():
    with pytest.raises(ValueError, match="increasing steps"):
        read_pilot([0, 100_000, 50_000], [0.0, 0.5, 0.6], GRID)
    with pytest.raises(ValueError, match="at least two"):
        read_pilot([0], [0.0], GRID)


class _Run:
    def __init__(self, steps, values):
        self.series = pd.Series(values, index=steps)

    def metric(self, _name):
        return self.series


def test_the_pilot_figure_marks_where_the_rule_finds_the_plateau_and_the_budget():
    steps = np.arange(0, 2_000_001, 100_000)
    pilot = SimpleNamespace(runs={1: _Run(steps, np.minimum(0.8 * steps / 1_000_000, 0.8))})
    marks = pilot_marks(pilot)
    assert [step for _, step in marks] == [1_100_000, 1_700_000]   # the first test's reading
    assert marks[1][0] == "budget (1.5x that, rounded up to a multiple of 100k)"
    assert pilot_marks(SimpleNamespace(runs={})) == []                        # no run yet
    flat = SimpleNamespace(runs={1: _Run(steps, np.full(len(steps), 0.1))})
    assert pilot_marks(flat) == []                                            # no rise: no budget to mark


def test_marks_are_drawn_as_vertical_lines_with_their_legend_entries():
    from dm2_repro.figures import plotting

    table = pd.DataFrame([
        {"figure": "f", "panel": "p", "curve": "IPPO", "kind": "curve", "step": s, "mean": v, "se": 0.0, "n_seeds": 1}
        for s, v in [(0, 0.0), (1_000_000, 0.8), (2_000_000, 0.8)]]
        + [{"figure": "f", "panel": "p", "curve": "IPPO: budget", "kind": plotting.MARK_KIND, "step": 1_700_000}])
    legend = [plotting.LegendEntry("p", "IPPO", "IPPO", "ippo")]
    fig = plotting.draw(table, ["p"], legend, "se", "t")
    ax = fig.axes[0]
    vertical = [line for line in ax.lines if list(line.get_xdata()) == [1_700_000, 1_700_000]]
    assert len(vertical) == 1
    assert any(t.get_text() == "IPPO: budget: 1,700,000 steps" for t in ax.get_legend().get_texts())
    plotting.plt.close(fig)


def test_the_pilot_figure_with_its_marks_is_made_replaced_and_checked(tmp_path):
    """figure paper_hp_pilot on a pilot run: the marks go into the CSV, and a second make (which compares seed
    counts with the existing CSV) and --check both accept it."""
    from dm2_repro import figure
    from dm2_repro.figures.plotting import MARK_KIND
    from dm2_repro.figures.tables import read_csv
    from dm2_repro.sweeps.plan import expand
    from tests.fixtures_runs import write_job_run

    job = next(j for j in expand("paper_hp_pilot", "paper_hp").learner_jobs if j.map == "3s_vs_3z")
    steps = list(range(0, 2_000_001, 100_000))
    write_job_run(tmp_path, 1, job, metrics={"test_battle_won_mean": (steps, [min(0.8 * s / 1e6, 0.8) for s in steps])})
    out = tmp_path / "figures"
    args = ("se", False, "paper_hp", None, "smax")
    assert figure.make("paper_hp_pilot", tmp_path, out, *args)
    marks = read_csv(out / "paper_hp_pilot.csv").query(f"kind == '{MARK_KIND}'")
    assert list(marks["step"]) == [1_100_000, 1_700_000] and set(marks["panel"]) == {"3s_vs_3z"}
    assert figure.make("paper_hp_pilot", tmp_path, out, *args)                        # replaced: no seed lost
    assert figure.make("paper_hp_pilot", tmp_path, out, "se", True, "paper_hp", None, "smax")   # --check: fresh
