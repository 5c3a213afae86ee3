"""Figure regeneration: the CSV holds the mean and standard error of the fixture runs, partial
and missing runs are reported, --check catches a stale CSV."""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from dm2_repro import figure

from dm2_repro.figures import diagnostics, plotting, tables
from dm2_repro.results.runs import align_seeds
from dm2_repro.sweeps.plan import expand
from tests.fixtures_runs import gail_metrics, write_demo, write_job_run, write_run

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
            write_demo(job.demo.path(tmp_path), quality=qualities[job.demo],
                       demo_win_rate=qualities[job.demo] / 4)   # the sampled team: weaker than the greedy
    data = figure.compute("fig5", tmp_path, scale="smoke")
    table = data.table
    # Both curves use the same demonstrations: one dotted line (the sampled team's quality, the
    # mean over seeds) and one greedy row in the CSV.
    greedy = list(qualities.values())
    for kind, expected in (("demo_sampled", [q / 4 for q in greedy]), ("demo_greedy", greedy)):
        demo_rows = table[table["kind"] == kind]
        assert len(demo_rows) == 1
        assert demo_rows["mean"].iloc[0] == pytest.approx(np.mean(expected))
        assert demo_rows["se"].iloc[0] == pytest.approx(np.std(expected, ddof=1) / np.sqrt(2))
        assert demo_rows["step"].isna().all()
    ax = next(ax for ax in data.draw().axes if ax.get_title().startswith("3s_vs_4z"))
    dotted = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert dotted == pytest.approx([np.mean(greedy) / 4])   # only the sampled team is drawn
    assert "demonstrations (sampled episodes)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_floor_maps_plot_the_test_return(tmp_path, monkeypatch):
    """A map declared for a scale in RETURN_STATISTIC_MAPS is drawn in test return, its
    demonstration line at the demonstrations' greedy return (quality_return)."""
    from dm2_repro.config import RETURN_STATISTIC_MAPS
    monkeypatch.setitem(RETURN_STATISTIC_MAPS, "smoke", ("3s_vs_4z",))
    plan = expand("fig5", "smoke", maps=["3s_vs_4z"])
    for i, job in enumerate(plan.learner_jobs):
        write_job_run(tmp_path, i + 1, job, metrics={"test_battle_won_mean": (STEPS, [0.0] * 4),
                                                     "test_return_mean": (STEPS, [1.0, 4.0, 6.0, 7.0 + i])})
        write_demo(job.demo.path(tmp_path), quality=0.0, quality_return=5.0, demo_win_rate=0.0,
                   demo_return_mean=3.0)
    data = figure.compute("fig5", tmp_path, scale="smoke")
    curves = data.table[data.table["kind"] == "curve"]
    assert curves.groupby("step")["mean"].first().tolist()[:3] == [1.0, 4.0, 6.0]
    assert data.table[data.table["kind"] == "demo_sampled"]["mean"].tolist() == [3.0]
    assert data.table[data.table["kind"] == "demo_greedy"]["mean"].tolist() == [5.0]
    axes = {ax.get_title().split()[0]: ax for ax in data.draw().axes if ax.get_visible()}
    assert axes["3s_vs_4z"].get_ylabel() == "test return"
    assert axes["5m_vs_6m"].get_ylabel() == "test win rate"   # not declared: win rate as before


def test_a_curve_can_plot_its_own_metric(tmp_path):
    """The budget pilot draws every map twice from the same runs: win rate, then return."""
    plan = expand("budget_pilot", "smoke")
    assert len(plan.learner_jobs) == 4 and len(plan.curves) == 8
    for i, job in enumerate(plan.learner_jobs):
        write_job_run(tmp_path, i + 1, job, metrics={"test_battle_won_mean": (STEPS, [0.0, 0.1, 0.2, 0.3]),
                                                     "test_return_mean": (STEPS, [1.0, 2.0, 3.0, 4.0])})
    data = figure.compute("budget_pilot", tmp_path, scale="smoke")
    means = data.table.groupby("panel")["mean"].max()
    assert {p: means[p] for p in means.index if p.startswith("5m_vs_6m")} == {"5m_vs_6m: win rate": 0.3,
                                                                            "5m_vs_6m: return": 4.0}
    fig = data.draw()
    assert [ax.get_ylabel() for ax in fig.axes[:4]] == ["test win rate"] * 4
    assert [ax.get_ylabel() for ax in fig.axes[4:]] == ["test return"] * 4   # one row per metric


def test_shared_demonstrations_are_drawn_by_the_fullest_curve(tmp_path):
    plan = expand("c_sensitivity", "smoke")
    by_key = {c.key: c for c in plan.curves}
    run_id = 0
    for key, n in (("dm2_c0.1", 1), ("dm2_c1", 2)):   # c=1 has more seeds: it owns the line
        for job in by_key[key].jobs[:n]:
            run_id += 1
            write_job_run(tmp_path, run_id, job)
            write_demo(job.demo.path(tmp_path), quality=0.9, demo_win_rate=0.25 * job.seed)
    demo_rows = figure.compute("c_sensitivity", tmp_path, scale="smoke").seeds
    demo_rows = demo_rows[demo_rows["kind"] == "demo_sampled"]
    assert demo_rows["curve"].unique().tolist() == [by_key["dm2_c1"].label]
    assert sorted(demo_rows["value"]) == [0.25, 0.5]


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


# ---------------------------------------------------------------------------------------------
# c_sensitivity and gail_diagnostics
# ---------------------------------------------------------------------------------------------

def test_c_sensitivity_renders_from_runs(tmp_path):
    plan = expand("c_sensitivity", "smoke")
    for i, job in enumerate(plan.learner_jobs):
        write_job_run(tmp_path, i + 1, job, final=0.1 + 0.01 * i, steps=STEPS)
    out = tmp_path / "figures"
    args = ["c_sensitivity", "--results", str(tmp_path), "--out", str(out), "--scale", "smoke"]
    assert figure.main(args) == 0
    table = pd.read_csv(out / "c_sensitivity.csv")
    curves = table[table["kind"] == "curve"]
    assert curves["curve"].unique().tolist() == [c.label for c in plan.curves]
    assert curves["curve"].unique().tolist()[:4] == ["DM², c=0.1", "DM², c=0.3 (paper)",
                                                    "DM², c=1", "DM², c=3"]
    assert (curves["n_seeds"] == 2).all() and (out / "c_sensitivity.png").stat().st_size > 0
    # c = 0.3 is fig2's DM² (IPPO demo, late) curve: the same runs, the same numbers
    fig2 = figure.compute("fig2", tmp_path, scale="smoke").table
    late = next(c.label for c in expand("fig2", "smoke").curves
                if c.key == "dm2_ippo_late" and c.map == "3s_vs_3z")
    ours = curves[curves["curve"] == "DM², c=0.3 (paper)"]["mean"].to_numpy()
    theirs = fig2[(fig2["curve"] == late) & (fig2["kind"] == "curve")]["mean"].to_numpy()
    np.testing.assert_allclose(ours, theirs)
    assert figure.main([*args, "--check"]) == 0


def test_c_sensitivity_without_runs_says_no_runs(tmp_path):
    data = figure.compute("c_sensitivity", tmp_path, scale="smoke")
    assert data.table.empty and len(data.missing) == 5
    fig = data.draw()
    assert [t.get_text() for t in fig.axes[0].texts] == ["no runs"]


UPDATES = (100, 300, 500, 700)   # update steps; smoke evaluates every 400 steps: bins 400 and 800


def gail_runs(results):
    """DM² c=1 on 3s_vs_3z (3 agents) with per-agent diagnostics, 2 seeds; SIL with only the
    older agent-averaged accuracies (no gail_env_ratio), 1 of 2 seeds."""
    dm2 = next(c for c in expand("c_sensitivity", "smoke").curves if c.key == "dm2_c1")
    sil = next(c for c in expand("fig2", "smoke", maps=["3s_vs_3z"]).curves if c.key == "sil")
    rng = np.random.default_rng(0)
    values = {}
    for i, job in enumerate(dm2.jobs):
        expert, agent = rng.uniform(0.4, 1.0, (2, len(UPDATES), 3))
        ratio = rng.uniform(0.1, 10.0, (len(UPDATES), 3))
        values[job.seed] = {"disc_expert_acc": expert, "disc_agent_acc": agent,
                            "gail_env_ratio": ratio}
        metrics = {**gail_metrics(UPDATES, expert, agent, ratio),
                   "test_battle_won_mean": (STEPS, [0.0, 0.1, 0.2, 0.3])}
        write_job_run(results, i + 1, job, metrics=metrics)
    old = gail_metrics(UPDATES, np.full((4, 3), 0.6), np.full((4, 3), 0.7), per_agent=False)
    write_job_run(results, 10, sil.jobs[0], metrics=old)
    return dm2, sil, values


def test_gail_diagnostics_from_per_agent_metrics(tmp_path):
    dm2, sil, values = gail_runs(tmp_path)
    out = tmp_path / "figures"
    args = ["gail_diagnostics", "--results", str(tmp_path), "--out", str(out), "--scale", "smoke"]
    assert figure.main(args) == 0
    table = pd.read_csv(out / "gail_diagnostics.csv")
    assert list(table.columns) == ["figure", "panel", "curve", "kind", "step", "mean", "se",
                                   "n_seeds"]
    assert set(table["panel"]) == {"3s_vs_3z"} and set(table["figure"]) == {"gail_diagnostics"}
    label = f"DM², c=1 ({dm2.panel.removeprefix('3s_vs_3z (').removesuffix(')')})"
    for kind in ("disc_expert_acc", "disc_agent_acc", "gail_env_ratio"):
        rows = table[(table["curve"] == label) & (table["kind"] == kind)].sort_values("step")
        assert rows["step"].tolist() == [400, 800]
        # per seed: mean over agents, then over the updates of each bin; then over seeds
        per_seed = np.array([[v[kind][:2].mean(), v[kind][2:].mean()] for v in values.values()])
        np.testing.assert_allclose(rows["mean"], per_seed.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(rows["se"], per_seed.std(axis=0, ddof=1) / np.sqrt(2),
                                   rtol=1e-9)
        assert (rows["n_seeds"] == 2).all()
    # the old SIL run: accuracies from the agent-averaged keys, no ratio rows
    rows = table[table["curve"] == "SIL"]
    assert set(rows["kind"]) == {"disc_expert_acc", "disc_agent_acc"}
    assert rows[rows["kind"] == "disc_agent_acc"]["mean"].tolist() == pytest.approx([0.7, 0.7])
    assert (rows["n_seeds"] == 1).all()
    # no IPPO curve, and no DM² curve without runs
    assert set(table["curve"]) == {label, "SIL"}
    data = diagnostics.compute_gail_diagnostics(tmp_path, scale="smoke")
    assert {e.text for e in data.legend()} == {label, "SIL (n=1/2)"}
    fig = data.draw()
    acc, ratio = fig.axes[:2]
    assert ratio.get_yscale() == "log" and not acc.texts and not ratio.texts
    assert 0.5 in [line.get_ydata()[0] for line in acc.lines]   # the chance line
    assert figure.main([*args, "--check"]) == 0
    csv = out / "gail_diagnostics.csv"
    stale = pd.read_csv(csv)
    stale.loc[0, "mean"] += 0.01
    stale.to_csv(csv, index=False)
    assert figure.main([*args, "--check"]) == 1


def test_gail_diagnostics_leave_out_ratios_of_updates_without_env_reward(tmp_path, capsys):
    dm2 = next(c for c in expand("c_sensitivity", "smoke").curves if c.key == "dm2_c1")
    ratio = np.full((len(UPDATES), 3), 2.0)
    ratio[2, 0] = np.inf     # logged by today's code
    ratio[3, 1] = 3e11       # logged by runs before it: mean |c r_gail| / 1e-12
    ratio[3, 2] = 4.0
    write_job_run(tmp_path, 1, dm2.jobs[0], metrics=gail_metrics(UPDATES, ratio / 4, ratio / 4, ratio))
    data = diagnostics.compute_gail_diagnostics(tmp_path, scale="smoke")
    rows = data.table[data.table["kind"] == "gail_env_ratio"].sort_values("step")
    # bin 800 holds updates 500 (agents 1, 2: 2, 2) and 700 (agents 0, 2: 2, 4)
    assert rows["mean"].tolist() == pytest.approx([2.0, (2.0 + 3.0) / 2])
    (entry,) = data.legend()
    assert entry.ratio_note == " [no r_env: 17% of updates left out]"   # 2 of 12 (update, agent) values
    data.report()
    assert "16.7% of its (agent, update) ratios are undefined" in capsys.readouterr().out


def test_gail_diagnostics_leave_out_accuracies_that_counted_the_absorbing_row(tmp_path, capsys):
    """Runs with the absorbing reward made at 8ec5814 logged accuracies over the absorbing row too: their accuracy rows
    are left out (their ratios kept) and the legend marks the curve; a run of the same job from later code counts."""
    dm2 = next(c for c in expand("c_sensitivity", "smoke").curves if c.key == "dm2_c1")
    metrics = gail_metrics(UPDATES, np.full((4, 3), 0.2), np.full((4, 3), 0.9), np.full((4, 3), 0.5))
    for run_id, (job, commit) in enumerate(zip(dm2.jobs, (diagnostics.ABSORBING_ROW_ACCURACY_COMMITS[0], "f" * 40)), 1):
        path = write_job_run(tmp_path, run_id, job, metrics=metrics)
        run = json.loads((path / "run.json").read_text())
        run["experiment"] = {"repositories": [{"commit": commit, "dirty": False}]}
        (path / "run.json").write_text(json.dumps(run))
    data = diagnostics.compute_gail_diagnostics(tmp_path, scale="smoke")
    assert dm2.jobs[0].gail_reward == "absorbing"   # the re-run's reward: the first run's accuracies are left out
    n_seeds = data.table.groupby("kind")["n_seeds"].max()
    assert n_seeds["disc_expert_acc"] == 1 and n_seeds["disc_agent_acc"] == 1 and n_seeds["gail_env_ratio"] == 2
    (entry,) = data.legend()
    assert entry.accuracy_note == " *1/2"
    data.report()
    assert "accuracies left out (logged with the absorbing row" in capsys.readouterr().out
    labels = [t.get_text() for t in data.draw().axes[0].get_legend().get_texts()]
    assert plotting.ACCURACY_LEFT_OUT_TEXT in labels and any(t.endswith(" *1/2") for t in labels)


def test_gail_diagnostics_of_old_runs_only_note_the_missing_ratio(tmp_path):
    sil = next(c for c in expand("fig2", "smoke", maps=["3s_vs_3z"]).curves if c.key == "sil")
    write_job_run(tmp_path, 1, sil.jobs[0],
                  metrics=gail_metrics(UPDATES, np.full((4, 3), 0.6), np.full((4, 3), 0.7),
                                       per_agent=False))
    data = diagnostics.compute_gail_diagnostics(tmp_path, scale="smoke")
    assert set(data.table["kind"]) == {"disc_expert_acc", "disc_agent_acc"}
    acc, ratio = data.draw().axes[:2]
    assert not acc.texts and "no runs with gail_env_ratio yet" in ratio.texts[0].get_text()


def test_gail_diagnostics_without_runs_says_so(tmp_path, capsys):
    # a DM² run without any diagnostics metric, and an IPPO run: neither has GAIL diagnostics
    fig2 = expand("fig2", "smoke", maps=["3s_vs_3z"])
    write_job_run(tmp_path, 1, next(c for c in fig2.curves if c.key == "dm2_qmix").jobs[0])
    write_job_run(tmp_path, 2, next(c for c in fig2.curves if c.key == "ippo").jobs[0])
    out = tmp_path / "figures"
    args = ["gail_diagnostics", "--results", str(tmp_path), "--out", str(out)]
    assert figure.main(args) == 0
    assert "no runs with GAIL diagnostics yet" in capsys.readouterr().out
    table = pd.read_csv(out / "gail_diagnostics.csv")
    assert table.empty and list(table.columns)[-3:] == ["mean", "se", "n_seeds"]
    assert (out / "gail_diagnostics.png").stat().st_size > 0
    assert figure.main([*args, "--check"]) == 0
    fig = diagnostics.compute_gail_diagnostics(tmp_path / "nothing").draw()
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == [plotting.NO_GAIL_RUNS] * 2


def test_all_makes_the_diagnostics_and_c_sensitivity(monkeypatch, tmp_path):
    made = []
    monkeypatch.setattr(figure, "make", lambda name, *a, **k: made.append(name) or True)
    monkeypatch.setattr(figure, "make_theory", lambda *a, **k: made.append("theory") or True)
    assert figure.main(["all", "--results", str(tmp_path), "--out", str(tmp_path / "f")]) == 0
    assert made[-2:] == ["theory", "gail_diagnostics"] and "c_sensitivity" in made


# ---------------------------------------------------------------------------------------------
# Damaged runs, values out of range, fewer runs, a missing results dir
# ---------------------------------------------------------------------------------------------

def test_damaged_runs_are_listed_not_dropped_silently(fig8_runs, tmp_path, capsys):
    results, _ = fig8_runs
    (results / "runs" / "1" / "metrics.json").write_text('{"test_battle_won_mean": {"steps": [0, 4')
    (results / "runs" / "2" / "run.json").write_text('{"status": "COMPL')
    (results / "runs" / "77").mkdir()
    (results / "runs" / "77" / "config.json").write_text("{")
    assert make(results, tmp_path / "figures") == 0
    printed = capsys.readouterr().out
    assert "damaged runs (3;" in printed
    for run_id, what in (("1", "metrics.json cannot be read"), ("2", "run.json cannot be read"),
                         ("77", "config.json cannot be read")):
        assert f"{results / 'runs' / run_id}: {what}" in printed
    assert "QMIX: 2 of 3 seeds missing" in printed   # the runs of seeds 1 and 2 are not used


def test_a_win_rate_outside_0_1_is_an_error_naming_the_run(fig8_runs, tmp_path, capsys):
    results, _ = fig8_runs
    path = results / "runs" / "3" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["test_battle_won_mean"]["values"][-1] = 7.0
    path.write_text(json.dumps(metrics))
    assert make(results, tmp_path / "figures") == 1
    printed = capsys.readouterr().out
    assert f"run {results / 'runs' / '3'}: test_battle_won_mean = 7 at step 1200 is outside [0, 1]" in printed
    assert not (tmp_path / "figures" / "fig8.csv").exists()


def test_fewer_runs_do_not_replace_a_figure_unless_allowed(fig8_runs, tmp_path, capsys):
    results, _ = fig8_runs
    out = tmp_path / "figures"
    assert make(results, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert make(empty, out) == 1
    printed = capsys.readouterr().out
    assert "NOT REPLACED fig8" in printed and "--allow-fewer" in printed and "0 now" in printed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before   # untouched, no temporary files left
    assert make(empty, out, "--allow-fewer") == 0
    assert pd.read_csv(out / "fig8.csv").empty
    assert sorted(p.name for p in out.iterdir()) == ["fig8.csv", "fig8.pdf", "fig8.png",
                                                     "fig8_seeds.csv"]


def test_a_missing_results_dir_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        figure.main(["fig2", "--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "f")])
    assert exit_info.value.code == 2
    assert "--results" in capsys.readouterr().err and not (tmp_path / "f").exists()


# ---------------------------------------------------------------------------------------------
# Seed alignment (pandas.merge_asof), the per-seed CSV, fonts, tick labels, CSV comparison
# ---------------------------------------------------------------------------------------------

def test_alignment_ties_go_to_the_earlier_step_and_the_tolerance_is_inclusive():
    grid = pd.Series([0.0, 0.5, 1.0], index=[0, 400, 800])   # median spacing 400: tolerance 200
    # 200 is exactly 200 from both 0 and 400; 600 is equally near 400 and 800
    other = pd.Series([0.1, 0.2, 0.3, 0.4], index=[200, 600, 1000, 1400])
    aligned = align_seeds({1: grid, 2: other})
    assert aligned.index.tolist() == [0, 400, 800]
    assert aligned[2].tolist() == [0.1, 0.1, 0.2]


def test_alignment_drops_grid_steps_beyond_the_tolerance():
    grid = pd.Series([0.0, 0.5, 1.0], index=[0, 400, 800])
    other = pd.Series([0.1, 0.2, 0.3, 0.4], index=[201, 600, 1000, 1400])   # 201 from step 0
    aligned = align_seeds({1: grid, 2: other})
    assert aligned.index.tolist() == [400, 800] and aligned[2].tolist() == [0.1, 0.2]


def test_alignment_with_a_one_point_grid_takes_the_nearest_step_at_any_distance():
    aligned = align_seeds({1: pd.Series([0.7], index=[5000]),
                           2: pd.Series([0.1, 0.2, 0.3], index=[0, 1000, 2000])})
    assert aligned.index.tolist() == [5000] and aligned[2].tolist() == [0.3]


def test_identical_steps_are_kept_as_logged():
    a = pd.Series([0.0, 0.2], index=[10, 20])
    b = pd.Series([0.4, 0.6], index=[10, 20])
    aligned = align_seeds({3: a, 5: b})
    assert aligned.columns.tolist() == [3, 5] and aligned.loc[20].tolist() == [0.2, 0.6]


def test_per_seed_csv_holds_every_seed_of_the_plotted_means(fig8_runs, tmp_path):
    results, values = fig8_runs
    out = tmp_path / "figures"
    assert make(results, out) == 0
    seeds = pd.read_csv(out / "fig8_seeds.csv")
    assert list(seeds.columns) == ["figure", "panel", "curve", "kind", "step", "seed", "value"]
    for label, runs in values.items():
        rows = seeds[seeds["curve"] == label]
        assert sorted(rows["seed"].unique()) == list(range(1, len(runs) + 1))
        for seed, ys in enumerate(runs, 1):
            mine = rows[rows["seed"] == seed].sort_values("step")
            assert mine["step"].tolist() == list(STEPS)
            np.testing.assert_allclose(mine["value"], ys, rtol=1e-12)
    # the plotted means are the means of exactly these rows
    table = pd.read_csv(out / "fig8.csv")
    recomputed = seeds.groupby(["curve", "step"])["value"].mean()
    for _, row in table.iterrows():
        assert row["mean"] == pytest.approx(recomputed[(row["curve"], row["step"])], rel=1e-12)


def test_per_seed_csv_of_demonstration_qualities(tmp_path):
    plan = expand("fig5", "smoke", maps=["3s_vs_4z"])
    qualities = {}
    for i, job in enumerate(plan.learner_jobs):
        write_job_run(tmp_path, i + 1, job)
        if job.demo not in qualities:
            qualities[job.demo] = 0.2 + 0.3 * len(qualities)
            write_demo(job.demo.path(tmp_path), quality=qualities[job.demo])
    seeds = figure.compute("fig5", tmp_path, scale="smoke").seeds
    demo = seeds[seeds["kind"] == "demo_greedy"]   # no sampled quality in these jsons: no drawn line
    assert not (seeds["kind"] == "demo_sampled").any()
    expected = {job.seed: qualities[job.demo] for job in plan.curves[0].jobs}
    assert dict(zip(demo["seed"], demo["value"])) == pytest.approx(expected)
    assert demo["step"].isna().all() and len(demo) == len(expected)


def test_check_verifies_the_per_seed_csv_only_where_it_exists(fig8_runs, tmp_path, capsys):
    results, _ = fig8_runs
    out = tmp_path / "figures"
    assert make(results, out) == 0
    per_seed = out / "fig8_seeds.csv"
    per_seed.unlink()                                      # figures made before it existed
    assert make(results, out, "--check") == 0 and per_seed.exists()
    seeds = pd.read_csv(per_seed)
    seeds.loc[2, "value"] += 0.01
    seeds.to_csv(per_seed, index=False)
    stale = per_seed.read_text()
    capsys.readouterr()
    assert make(results, out, "--check") == 1
    printed = capsys.readouterr().out
    assert "STALE fig8" in printed and "fig8_seeds.csv" in printed and "column value" in printed
    assert per_seed.read_text() == stale


def test_pdf_embeds_truetype_fonts(fig8_runs, tmp_path):
    results, _ = fig8_runs
    assert make(results, tmp_path / "figures") == 0
    pdf = (tmp_path / "figures" / "fig8.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf


def test_step_ticks_read_like_the_legends():
    labels = [plotting._steps_label(v) for v in (0.0, 25_000.0, -50_000.0, 1_500_000.0, 400.0, 0.5)]
    assert labels == ["0", "25k", "-50k", "1.5M", "400", "0.5"]


def test_first_mismatch_tolerance_and_one_line_messages():
    old = pd.DataFrame({"figure": ["f", "f"], "panel": ["p", "p"], "curve": ["a", "b"],
                        "kind": ["curve", "curve"], "step": [0.0, np.nan], "mean": [0.5, 0.25]})
    assert tables.first_mismatch(old, old.copy()) is None            # NaN steps are equal
    close = old.assign(mean=old["mean"] * (1 + 1e-11))
    assert tables.first_mismatch(old, close) is None
    moved = old.assign(mean=[0.5, 0.26])
    problem = tables.first_mismatch(old, moved)
    assert problem.startswith("row 1 column mean: committed ") and "\n" not in problem
    assert "0.26" in problem
    relabelled = old.assign(curve=["a", "c"])
    assert tables.first_mismatch(old, relabelled).startswith("row 1 column curve:")
    longer = pd.concat([old, old.iloc[:1].assign(curve="z")], ignore_index=True)
    assert tables.first_mismatch(old, longer).startswith("row 2 only now:")
    assert tables.first_mismatch(longer, old).startswith("row 2 only in the committed CSV:")
    assert tables.first_mismatch(old, old.drop(columns="mean")).startswith("columns differ")


# ---------------------------------------------------------------------------------------------
# results.to_dataframe
# ---------------------------------------------------------------------------------------------

def test_to_dataframe_is_one_long_table_of_every_run(tmp_path):
    from dm2_repro.results.runs import to_dataframe

    plan = expand("fig5", "smoke", maps=["3s_vs_4z"])
    dm2 = plan.curves[0].jobs[0]
    write_job_run(tmp_path, 1, dm2, metrics={"test_battle_won_mean": ([0, 400, 400], [0.0, 0.3, 0.5]),
                                             "loss": ([100], [2.5])})
    write_run(tmp_path, 2, algo="ippo", map_name="5m_vs_6m", seed=2, scale="smoke",
              hp={"n_envs": 4, "lr": 0.001}, metrics={"test_battle_won_mean": ([0, 400], [0.1, 0.2])})
    write_job_run(tmp_path, 3, dm2, status="RUNNING")
    frame = to_dataframe(tmp_path)
    assert list(frame.columns) == ["run_id", "status", "algo", "map", "seed", "scale", "backend",
                                   "demo", "hp", "tag", "metric", "step", "value"]
    assert set(frame["run_id"]) == {"1", "2"}                       # COMPLETED runs only
    first = frame[(frame["run_id"] == "1") & (frame["metric"] == "test_battle_won_mean")]
    assert first["step"].tolist() == [0, 400] and first["value"].tolist() == [0.0, 0.5]
    row = first.iloc[0]
    assert (row["algo"], row["map"], row["seed"], row["scale"]) == (dm2.algo, dm2.map, dm2.seed, "smoke")
    assert row["demo"] == dm2.demo.name and row["hp"] == ",".join(f"{k}={v}" for k, v in dm2.hp)   # the job's own
    assert frame[frame["run_id"] == "2"]["hp"].unique().tolist() == ["lr=0.001,n_envs=4"]
    assert frame[frame["run_id"] == "2"]["demo"].unique().tolist() == [""]
    assert frame[frame["metric"] == "loss"]["value"].tolist() == [2.5]
    assert frame["step"].dtype == np.int64 and frame["value"].dtype == np.float64
    only = to_dataframe(tmp_path, metrics=["loss"], status=None)
    assert only["metric"].unique().tolist() == ["loss"] and only["run_id"].tolist() == ["1"]
    assert set(to_dataframe(tmp_path, status=None)["run_id"]) == {"1", "2", "3"}
    # pandas users' usual next step: the mean curve over runs
    means = frame[frame["metric"] == "test_battle_won_mean"].groupby("step")["value"].mean()
    assert means.to_dict() == pytest.approx({0: 0.05, 400: 0.35})


def test_to_dataframe_lists_runs_whose_metrics_cannot_be_read(tmp_path):
    from dm2_repro.results.runs import to_dataframe

    job = expand("fig8", "smoke").curves[0].jobs[0]
    write_job_run(tmp_path, 1, job)
    broken = write_job_run(tmp_path, 2, job)
    (broken / "metrics.json").write_text('{"test_battle_won_mean": {"ste')
    frame = to_dataframe(tmp_path)
    assert set(frame["run_id"]) == {"1"}
    assert [path for path, _ in frame.attrs["damaged"]] == [broken]
    empty = to_dataframe(tmp_path / "nothing")
    assert empty.empty and list(empty.columns)[-3:] == ["metric", "step", "value"]


def test_one_sha256_for_demos_and_results(tmp_path):
    import hashlib
    import os

    from dm2_repro import validate
    from dm2_repro.demos import files as demos

    from dm2_repro.results import runs as results

    assert demos.sha256_file is validate.sha256_file is results.sha256_file
    data = os.urandom(3 * (1 << 20) + 17)                 # more than one chunk
    path = tmp_path / "blob.npz"
    path.write_bytes(data)
    assert validate.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert results.cached_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1])                           # rewritten: the cache must not answer
    assert results.cached_sha256(path) == hashlib.sha256(data[:-1]).hexdigest()


def test_a_snapshot_sweep_gets_ordered_colours_and_its_reference_curve_one_apart():
    """Figure 7 has eleven curves: ten snapshots (`dm2_ippo_<step>`) and QMIX. A circular palette gave QMIX
    nearly the colour of the first and last snapshot; the sweep now runs through viridis in order and the
    other curve takes a colour far from all of them."""
    import numpy as np
    import seaborn as sns

    from dm2_repro.figures.plotting import curve_colors

    sweep = [f"dm2_ippo_{s}k" for s in range(15, 151, 15)]
    colors = curve_colors(sweep + ["qmix"])
    assert [colors[k] for k in sweep] == list(sns.color_palette("viridis", len(sweep)))
    rgb = np.array([colors[k] for k in sweep])
    gap = np.linalg.norm(rgb - np.array(colors["qmix"]), axis=1)
    assert gap.min() > 0.5, gap
    few = ["ippo", "dm2", "qmix"]
    assert list(curve_colors(few).values()) == list(sns.color_palette("tab10", 3))  # up to ten: unchanged


def test_gail_diagnostics_show_test_episode_length_beside_the_demonstrations(tmp_path):
    """Panel (c): each curve's greedy test episode length per bin, and its demonstrations' mean episode length
    as a dotted line in its colour: from the demonstration's json (seed 1) or, where the json lacks it, from
    the run's own log (seed 2, DM²-family runs log demo_ep_length_mean since 2026-12-07)."""
    import json

    dm2 = next(c for c in expand("c_sensitivity", "smoke").curves if c.key == "dm2_c1")
    lengths = {dm2.jobs[0].seed: [30.0, 20.0, 10.0, 5.0], dm2.jobs[1].seed: [40.0, 30.0, 20.0, 15.0]}
    for i, job in enumerate(dm2.jobs):
        metrics = {**gail_metrics(UPDATES, np.full((4, 3), 0.6), np.full((4, 3), 0.7)),
                   "test_battle_won_mean": (STEPS, [0.0, 0.1, 0.2, 0.3]),
                   "test_ep_length_mean": (STEPS, lengths[job.seed])}
        if i == 1:
            metrics["demo_ep_length_mean"] = (UPDATES, [50.0] * 4)
        write_job_run(tmp_path, i + 1, job, metrics=metrics)
    json_path = dm2.jobs[0].demo.path(tmp_path).with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"demo_ep_length_mean": 60.0}))
    data = diagnostics.compute_gail_diagnostics(tmp_path, scale="smoke")
    rows = data.table
    length = rows[rows["kind"] == "test_ep_length_mean"].sort_values("step")
    assert length["mean"].tolist() == pytest.approx([np.mean([l[i] for l in lengths.values()]) for i in range(4)])
    demo = rows[rows["kind"] == "demo_ep_length"]
    assert demo["mean"].tolist() == pytest.approx([55.0]) and demo["step"].isna().all()
    fig = data.draw()
    ax_len = fig.axes[2]
    assert "episode length" in ax_len.get_title()
    dotted = [line for line in ax_len.lines if line.get_linestyle() == ":"]
    assert [line.get_ydata()[0] for line in dotted] == pytest.approx([55.0])


def test_demo_quality_of_either_team(tmp_path):
    """The greedy team's quality (the paper's) and the sampled episodes' (what DM² imitates) come from
    the run's own record of its demonstration first, else from the json beside the file."""
    from types import SimpleNamespace

    from dm2_repro.results.runs import demo_quality

    job = expand("fig5", "smoke", maps=["3s_vs_4z"]).learner_jobs[0]
    write_demo(job.demo.path(tmp_path), quality=0.8, demo_win_rate=0.1, quality_return=18.0,
               demo_return_mean=9.0)
    assert demo_quality(job.demo, None, tmp_path) == 0.8                       # greedy by default
    assert demo_quality(job.demo, None, tmp_path, team="sampled") == 0.1
    assert demo_quality(job.demo, None, tmp_path, "return", "sampled") == 9.0
    run = SimpleNamespace(info={"demo": {"demo_win_rate": 0.3}}, path=tmp_path / "runs" / "1")
    assert demo_quality(job.demo, run, tmp_path, team="sampled") == 0.3       # the run's record wins
    assert demo_quality(job.demo, run, tmp_path) == 0.8                        # not recorded there: json
    with pytest.raises(ValueError, match="team 'best'"):
        demo_quality(job.demo, None, tmp_path, team="best")
