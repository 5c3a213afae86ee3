"""Figure regeneration: the CSV holds the mean and standard error of the fixture runs, partial
and missing runs are reported, --check catches a stale CSV."""
from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest

from dm2_repro import figure, plotting
from dm2_repro.results import align_seeds
from experiments import expand
from tests.fixtures_runs import write_demo, write_job_run

STEPS = (0, 400, 800, 1200)


@pytest.fixture
def fig8_runs(tmp_path):
    """fig8 at smoke scale with 3 seeds: QMIX complete, the IPPO-architecture QMIX 2 of 3."""
    plan = expand("fig8", "smoke", n_seeds=3)
    values = {}
    run_id = 0
    for curve in plan.curves:
        jobs = curve.jobs if curve.key == "qmix" else curve.jobs[:2]
        for i, job in enumerate(jobs):
            run_id += 1
            ys = np.round(np.linspace(0, 0.3 + 0.2 * i, len(STEPS)) ** (1 + 0.1 * run_id), 6)
            write_job_run(tmp_path, run_id, job,
                          metrics={"test_battle_won_mean": (STEPS, ys)})
            values.setdefault(curve.label, []).append(ys)
    # Noise that must not count: an unfinished run and a run of another scale.
    write_job_run(tmp_path, 90, plan.curves[1].jobs[2], status="INTERRUPTED")
    write_job_run(tmp_path, 91, expand("fig8", "cpu").learner_jobs[0])
    return tmp_path, values


def make(results, out, *extra):
    return figure.main(["fig8", "--results", str(results), "--out", str(out), "--scale", "smoke",
                        "--seeds", "3", *extra])


def test_csv_is_mean_and_standard_error_of_the_runs(fig8_runs, tmp_path, capsys):
    results, values = fig8_runs
    out = tmp_path / "figures"
    assert make(results, out) == 0
    table = pd.read_csv(out / "fig8.csv")
    assert list(table.columns) == ["figure", "panel", "curve", "kind", "step", "mean", "se",
                                   "n_seeds"]
    for label, runs in values.items():
        matrix = np.array(runs)
        rows = table[table["curve"] == label].sort_values("step")
        assert rows["step"].tolist() == list(STEPS)
        np.testing.assert_allclose(rows["mean"], matrix.mean(axis=0), rtol=1e-12)
        expected_se = matrix.std(axis=0, ddof=1) / np.sqrt(len(runs))
        np.testing.assert_allclose(rows["se"], expected_se, rtol=1e-12, atol=1e-15)
        assert (rows["n_seeds"] == len(runs)).all()
    assert (out / "fig8.png").stat().st_size > 0 and (out / "fig8.pdf").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "QMIX (IPPO agent architecture): 1 of 3 seeds missing" in printed
    assert ("python -m dm2_repro.run fig8 --scale smoke --seeds 3 --curves qmix_ippo_arch "
            f"--results {results}") in printed


def test_band_sd_names_its_column(fig8_runs, tmp_path):
    results, values = fig8_runs
    assert make(results, tmp_path / "f", "--band", "sd") == 0
    table = pd.read_csv(tmp_path / "f" / "fig8.csv")
    assert "sd" in table.columns and "se" not in table.columns
    rows = table[table["curve"] == "QMIX"].sort_values("step")
    np.testing.assert_allclose(rows["sd"], np.array(values["QMIX"]).std(axis=0, ddof=1))


def test_partial_curves_are_marked_in_the_legend(fig8_runs):
    results, _ = fig8_runs
    data = figure.compute("fig8", results, scale="smoke", n_seeds=3)
    texts = {entry.text for entry in data.legend()}
    assert texts == {"QMIX", "QMIX (IPPO agent architecture) (n=2/3)"}


def test_empty_panel_says_no_runs(tmp_path):
    data = figure.compute("fig8", tmp_path, scale="smoke")
    assert data.table.empty and len(data.missing) == 2
    fig = plotting.draw(data.table, data.panels, data.legend(), "se", "t")
    assert [t.get_text() for t in fig.axes[0].texts] == ["no runs"]
    assert fig.axes[0].get_ylim() == (-0.05, 1.05)


def test_demo_quality_rows(tmp_path):
    plan = expand("fig5", "smoke", maps=["3s_vs_4z"])
    qualities = {}
    for i, job in enumerate(plan.learner_jobs):
        write_job_run(tmp_path, i + 1, job)
        if job.demo not in qualities:
            qualities[job.demo] = 0.2 + 0.3 * len(qualities)
            write_demo(job.demo.path(tmp_path), quality=qualities[job.demo])
    table = figure.compute("fig5", tmp_path, scale="smoke").table
    demo_rows = table[table["kind"] == "demo_quality"]
    # Both curves use the same demonstrations: one dashed line, the mean over seeds.
    assert len(demo_rows) == 1
    expected = list(qualities.values())
    assert demo_rows["mean"].iloc[0] == pytest.approx(np.mean(expected))
    assert demo_rows["se"].iloc[0] == pytest.approx(np.std(expected, ddof=1) / np.sqrt(2))
    assert demo_rows["step"].isna().all()


def test_steps_that_differ_slightly_are_aligned():
    a = pd.Series([0.0, 0.5, 1.0], index=[0, 400, 800])
    b = pd.Series([0.0, 0.1, 0.3, 0.9], index=[3, 397, 805, 1200])
    aligned = align_seeds({1: a, 2: b})
    assert aligned.index.tolist() == [0, 400, 800]        # the shorter run's grid
    assert aligned[2].tolist() == [0.0, 0.1, 0.3]


def test_check_detects_a_stale_csv(fig8_runs, tmp_path, capsys):
    results, _ = fig8_runs
    out = tmp_path / "figures"
    assert make(results, out) == 0
    assert make(results, out, "--check") == 0             # fresh: same numbers
    csv = out / "fig8.csv"
    table = pd.read_csv(csv)
    table.loc[3, "mean"] += 0.01
    table.to_csv(csv, index=False)
    stale = csv.read_text()
    capsys.readouterr()
    assert make(results, out, "--check") == 1
    printed = capsys.readouterr().out
    assert "STALE fig8" in printed and "column mean" in printed
    assert csv.read_text() == stale                        # not overwritten


def fake_theory(monkeypatch, make_figure):
    module = types.ModuleType("dm2_repro.theory.plot")
    module.make_figure = make_figure
    monkeypatch.setitem(sys.modules, "dm2_repro.theory.plot", module)


def test_theory_figure_is_delegated_and_checked(monkeypatch, tmp_path, capsys):
    calls = []

    def make_figure(results_dir, out_dir):
        calls.append(results_dir)
        pd.DataFrame({"panel": ["a"], "step": [1], "value": [len(calls)]}).to_csv(
            f"{out_dir}/theory.csv", index=False)

    fake_theory(monkeypatch, make_figure)
    args = ["theory", "--results", str(tmp_path), "--out", str(tmp_path / "f")]
    assert figure.main(args) == 0
    assert calls == [str(tmp_path / "theory")] and (tmp_path / "f" / "theory.csv").exists()
    assert figure.main([*args, "--check"]) == 1          # the fake's numbers changed
    assert "STALE theory" in capsys.readouterr().out


def test_a_failing_figure_fails_the_command(monkeypatch, tmp_path, capsys):
    def broken(**_):
        raise RuntimeError("theory results missing")

    fake_theory(monkeypatch, broken)
    code = figure.main(["theory", "--results", str(tmp_path), "--out", str(tmp_path / "f")])
    assert code == 1 and "ERROR theory" in capsys.readouterr().out
