"""The claims report on fixture runs whose answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dm2_repro.results import curves
from dm2_repro.verdicts import decide
from dm2_repro.verdicts import factorial
from dm2_repro.verdicts import findings
from dm2_repro.verdicts import saturation
from dm2_repro import claims

from dm2_repro.results import stats
from dm2_repro.results.runs import load_runs
from dm2_repro.sweeps.plan import expand
from dm2_repro.config import MAX_RETURN, RETURN_STATISTIC_MAPS
from tests.fixtures_runs import win_curve, write_job_run

STEPS = (0, 400, 800, 1200, 1600)
N_SEEDS = 5
# A linear rise from 0 to f over the whole range: normalised AUC = f / 2, and the mean of the
# last 3 of the 5 evaluations (the "final" win rate) = 0.75 f.
AUC, FINAL = 0.5, 0.75


def curve(figure, key, map_name="5m_vs_6m", before_rerun=False):
    plan = expand(figure, "smoke", n_seeds=N_SEEDS, before_rerun=before_rerun)
    return next(c for c in plan.curves if c.key == key and c.map == map_name)


class Writer:
    """Writes one run per seed (as many as `finals`), each with a fresh run id; returns the
    run directories."""

    def __init__(self, results):
        self.results, self.next_id = results, 1

    def curve(self, figure, key, finals, map_name="5m_vs_6m", steps=STEPS, before_rerun=False, **kwargs):
        paths = []
        for job, final in zip(curve(figure, key, map_name, before_rerun).jobs, finals):
            paths.append(write_job_run(self.results, self.next_id, job, final=final, steps=steps,
                                       **kwargs))
            self.next_id += 1
        return paths


QMIX = [0.90, 0.85, 0.95, 0.88, 0.92]
QMIX_IPPO_ARCH = [0.20, 0.25, 0.15, 0.22, 0.18]
# Seed effects much larger than the (small, consistent) effect of the demonstrations.
EARLY = [0.2, 0.4, 0.6, 0.8, 1.0]
LATE = [min(f + d, 1.0) for f, d in zip(EARLY, [0.02, 0.03, 0.01, 0.02, 0.04])]  # win rates stay <= 1
IPPO_5M = [0.3, 0.5, 0.7, 0.1, 0.9]
ABOVE_FINALS = [0.8, 0.9, 0.84, 0.76, 0.96]
QUALITIES = [0.3, 0.5, 0.4, 0.2, 0.6]


@pytest.fixture
def results(tmp_path):
    w = Writer(tmp_path)
    # Clearly holds (unpaired: two algorithms): QMIX far above QMIX with the IPPO agent network.
    w.curve("fig8", "qmix", QMIX)
    w.curve("fig8", "qmix_ippo_arch", QMIX_IPPO_ARCH)
    # Clearly refuted: GAIL-only beats IPPO.
    w.curve("fig6", "ippo", [0.10, 0.15, 0.12, 0.11, 0.14], "3s_vs_4z")
    w.curve("fig6", "gail_only_early", [0.80, 0.85, 0.90, 0.82, 0.88], "3s_vs_4z")
    # Not enough data: one BC seed (fig5's DM² runs are fig2's dm2_ippo_early jobs, below).
    w.curve("fig5", "bc_dm2", [0.5])
    # Not enough data however large the difference: 4 seeds against 5.
    w.curve("fig2", "dm2_ippo_late", [0.9] * 4, "3s_vs_3z")
    w.curve("fig2", "ippo", [0.1] * 5, "3s_vs_3z")
    # Paired by design (same learner seed, demonstrations of two qualities).
    w.curve("fig2", "dm2_ippo_early", EARLY)
    w.curve("fig2", "dm2_ippo_late", LATE)
    w.curve("fig2", "ippo", IPPO_5M)
    # DM² above its demonstrations, each seed against its own demo's quality, as Sacred records
    # it: in info.json (run.json's "info" stays empty in real runs; a stale value here must lose).
    for path, quality in zip(w.curve("fig2", "dm2_ippo_early", ABOVE_FINALS, "3s_vs_4z",
                                     info={"demo": {"quality": 0.99}}), QUALITIES):
        (path / "info.json").write_text(json.dumps({"demo": {"quality": quality}}))
    return tmp_path


def outcome(outcomes, figure, map_name, a, b):
    return next(o for o in outcomes if (o.comparison.figure, o.comparison.map, o.comparison.a,
                                        o.comparison.b) == (figure, map_name, a, b))


def evaluate(results):
    return claims.evaluate_all(results, "smoke", n_seeds=N_SEEDS)


def values(finals, scale=AUC):
    return " ".join(f"{scale * f:.3f}" for f in finals)


def test_known_verdicts(results):
    outcomes = evaluate(results)
    holds = outcome(outcomes, "fig8", "5m_vs_6m", "qmix", "qmix_ippo_arch")
    assert holds.verdict == claims.HOLDS
    assert holds.run_ids == {"qmix": ["1", "2", "3", "4", "5"],
                             "qmix_ippo_arch": ["10", "6", "7", "8", "9"]}
    fails = outcome(outcomes, "fig6", "3s_vs_4z", "ippo", "gail_only_early")
    assert fails.verdict == claims.FAILS
    # Claims with no runs at all are "not enough data", never an error.
    assert outcome(outcomes, "fig4", "8m_vs_9m", "qmix", "dm2_ippo_late").verdict == claims.NO_DATA


def test_not_enough_data_below_five_seeds_per_side(results):
    outcomes = evaluate(results)
    no_data = outcome(outcomes, "fig5", "5m_vs_6m", "bc_dm2", "dm2")
    assert no_data.verdict == claims.NO_DATA and "n=1 vs 5" in no_data.measured
    assert no_data.values == f"bc_dm2: {values([0.5], FINAL)} | dm2: {values(EARLY, FINAL)}"
    four = outcome(outcomes, "fig2", "3s_vs_3z", "dm2_ippo_late", "ippo")
    assert four.verdict == claims.NO_DATA and four.measured.startswith("n=4 vs 5")
    assert four.values == f"dm2_ippo_late: {values([0.9] * 4)} | ippo: {values([0.1] * 5)}"


def test_unpaired_comparisons_use_welch(results):
    holds = outcome(evaluate(results), "fig8", "5m_vs_6m", "qmix", "qmix_ippo_arch")
    assert not holds.comparison.is_paired
    a, b = AUC * np.array(QMIX), AUC * np.array(QMIX_IPPO_ARCH)
    estimate, low, high, dof = stats.welch_t_interval(a, b)
    assert holds.measured.startswith(
        f"ΔAUC = {estimate:+.3f} [{low:+.3f}, {high:+.3f}] (Welch t, df={dof:.1f}); BCa [")
    assert estimate == pytest.approx(np.mean(a) - np.mean(b))
    assert holds.measured.endswith("(n=5 vs 5)")
    assert holds.values == f"qmix: {values(QMIX)} | qmix_ippo_arch: {values(QMIX_IPPO_ARCH)}"


def test_paired_by_design_uses_the_paired_interval(results):
    outcomes = evaluate(results)
    quality = outcome(outcomes, "fig2", "5m_vs_6m", "dm2_ippo_late", "dm2_ippo_early")
    assert quality.comparison.is_paired
    late, early = AUC * np.array(LATE), AUC * np.array(EARLY)
    estimate, low, high, dof = stats.paired_t_interval(late, early)
    assert quality.measured.startswith(
        f"ΔAUC = {estimate:+.3f} [{low:+.3f}, {high:+.3f}] (paired t, df=4); BCa [")
    assert quality.measured.endswith("(n=5 paired)")
    # Pairing removes the seed effect: equivalence holds; Welch on the same values could not say.
    assert quality.verdict == claims.HOLDS
    _, wlow, whigh, _ = stats.welch_t_interval(late, early)
    assert decide.verdict(findings.EQUIVALENT, wlow, whigh) == claims.INCONCLUSIVE
    # DM² against IPPO is unpaired.
    unpaired = outcome(outcomes, "fig2", "5m_vs_6m", "dm2_ippo_early", "ippo")
    assert not unpaired.comparison.is_paired and "Welch t" in unpaired.measured
    # Which comparisons are paired: demo quality (Fig. 2/4, 7), Fig. 3 styles, above-demo, and a learner's
    # episode length against its own demonstrations' (reward_forms); departures' arms are separate runs.
    paired = {(c.figure, c.test) for c in claims.comparisons("smoke") if c.is_paired}
    assert paired == {("fig2", findings.EQUIVALENT), ("fig4", findings.EQUIVALENT),
                      ("fig7", findings.EQUIVALENT), ("fig3", findings.EQUIVALENT),
                      ("fig3", findings.GREATER), ("fig2", findings.ABOVE_DEMO),
                      ("fig4", findings.ABOVE_DEMO), ("reward_forms", findings.DEMO_LENGTH)}


def test_above_demo_pairs_each_run_with_its_own_demonstrations(results):
    above = outcome(evaluate(results), "fig2", "3s_vs_4z", "dm2_ippo_early", None)
    finals = FINAL * np.array(ABOVE_FINALS)
    estimate, low, high, dof = stats.paired_t_interval(finals, np.array(QUALITIES))
    assert above.measured.startswith(
        f"final - demo = {estimate:+.3f} [{low:+.3f}, {high:+.3f}] (paired t, df=4)")
    assert above.verdict == claims.HOLDS
    assert above.values == (f"dm2_ippo_early final: {values(ABOVE_FINALS, FINAL)} | "
                            f"demo quality: {values(QUALITIES, 1.0)}")


DM2_RETURNS = [14.0, 15.0, 16.0, 15.5, 14.5]
IPPO_RETURNS = [8.0, 9.0, 7.0, 8.5, 7.5]


def test_floor_maps_are_judged_on_the_test_return(tmp_path, monkeypatch):
    """Where the scale's budget leaves every win rate at 0, the claims compare test returns / 20,
    and DM² is held against its demonstrations' greedy return (read from the source run's
    evaluation at the snapshot's step when the demo json predates quality_return)."""
    monkeypatch.setitem(RETURN_STATISTIC_MAPS, "smoke", ("3s_vs_3z",))
    zero_wins = win_curve(0.0, STEPS)
    ippo_paths = {}
    for run_id, (job, final) in enumerate(zip(curve("fig2", "ippo", "3s_vs_3z").jobs, IPPO_RETURNS), 1):
        ippo_paths[job.seed] = write_job_run(tmp_path, run_id, job, metrics={
            "test_battle_won_mean": zero_wins, "test_return_mean": win_curve(final, STEPS)})
    for run_id, (job, final) in enumerate(zip(curve("fig2", "dm2_ippo_late", "3s_vs_3z").jobs, DM2_RETURNS), 10):
        write_job_run(tmp_path, run_id, job, metrics={
            "test_battle_won_mean": zero_wins, "test_return_mean": win_curve(final, STEPS)})
        demo_json = job.demo.path(tmp_path).with_suffix(".json")
        demo_json.parent.mkdir(parents=True, exist_ok=True)
        # recorded on another machine: found again by run id under this results dir
        demo_json.write_text(json.dumps({"quality": 0.0, "checkpoint_step": 800,
                                         "source_runs": [f"/elsewhere/runs/{ippo_paths[job.seed].name}"]}))
    outcomes = evaluate(tmp_path)
    faster = outcome(outcomes, "fig2", "3s_vs_3z", "dm2_ippo_late", "ippo")
    assert faster.comparison.metric == "return" and "test return / 20" in faster.comparison.description
    dm2, ippo = (AUC * np.array(r) / MAX_RETURN for r in (DM2_RETURNS, IPPO_RETURNS))
    estimate, low, high, _ = stats.welch_t_interval(dm2, ippo, findings.CONFIDENCE)
    assert faster.measured.startswith(f"ΔAUC(return/20) = {estimate:+.3f} [{low:+.3f}, {high:+.3f}]")
    assert faster.verdict == claims.HOLDS
    above = outcome(outcomes, "fig2", "3s_vs_3z", "dm2_ippo_late", None)
    finals = FINAL * np.array(DM2_RETURNS) / MAX_RETURN
    qualities = 0.5 * np.array(IPPO_RETURNS) / MAX_RETURN   # step 800 of a linear rise over 0..1600
    assert above.values == (f"dm2_ippo_late final: {values(finals, 1.0)} | "
                            f"demo quality: {values(qualities, 1.0)}")
    estimate, low, high, _ = stats.paired_t_interval(finals, qualities, findings.CONFIDENCE)
    measured = [float(x) for x in above.measured.split(" (")[0].replace("final - demo = ", "")
                .replace("[", "").replace("]", "").replace(",", "").split()]
    assert measured == pytest.approx([estimate, low, high], abs=1e-3)
    # the other maps are still judged on win rates
    assert outcome(outcomes, "fig2", "3s_vs_4z", "dm2_ippo_late", "ippo").comparison.metric == "win_rate"


def test_run_info_is_read_from_info_json(results):
    runs = {r.run_id: r for r in load_runs(results)}
    with_file = [r for r in runs.values() if (r.path / "info.json").exists()]
    assert sorted(r.info["demo"]["quality"] for r in with_file) == sorted(QUALITIES)
    (with_file[0].path / "info.json").unlink()   # missing: run.json's "info"
    assert with_file[0].info == {"demo": {"quality": 0.99}}


def test_aggregate_across_maps(results):
    curves = claims.load_curves(results, "smoke", n_seeds=N_SEEDS)
    rows = {a.key: a for a in claims.aggregate_all(curves, "smoke")}
    early = rows["dm2_ippo_early"]
    # 5 vs 5 seeds on 5m_vs_6m, and on 3s_vs_4z (fig6's IPPO jobs are fig2's 3s_vs_4z IPPO jobs).
    assert early.maps == ["5m_vs_6m", "3s_vs_4z"] and early.n_runs == (5, 5)
    x = np.array([AUC * np.array(EARLY), AUC * np.array(ABOVE_FINALS)]).T
    y = np.array([AUC * np.array(IPPO_5M), AUC * np.array([0.10, 0.15, 0.12, 0.11, 0.14])]).T
    assert early.iqm[0] == pytest.approx(stats.iqm(x))
    assert early.iqm_baseline[0] == pytest.approx(stats.iqm(y))
    # 5m_vs_6m: DM² AUCs 0.1..0.5 against IPPO 0.15 0.25 0.35 0.05 0.45: 15 of 25 pairs greater;
    # 3s_vs_4z: every DM² run above every IPPO run.
    assert early.improvement[0] == pytest.approx((15 / 25 + 1) / 2)
    assert early.improvement[1] <= early.improvement[0] <= early.improvement[2] <= 1
    late = rows["dm2_ippo_late"]   # 4 seeds on 3s_vs_3z, none on the other maps with IPPO
    assert late.maps == ["5m_vs_6m"] and late.counts["3s_vs_3z"] == (4, 5)
    assert rows["rmappo"].iqm is None
    lines = "\n".join(claims.aggregate_lines(list(rows.values())))
    assert "| dm2_ippo_early | 5m_vs_6m, 3s_vs_4z (5 / 5 runs each) |" in lines
    assert f"| {early.improvement[0]:.3f} [" in lines
    assert "| rmappo | none with >= 5 seeds per side" in lines


def test_verdict_rules():
    assert decide.verdict(findings.GREATER, 0.1, 0.3) == claims.HOLDS
    assert decide.verdict(findings.GREATER, -0.3, -0.1) == claims.FAILS
    assert decide.verdict(findings.GREATER, -0.1, 0.3) == claims.INCONCLUSIVE
    assert decide.verdict(findings.EQUIVALENT, -0.05, 0.05) == claims.HOLDS
    assert decide.verdict(findings.EQUIVALENT, 0.2, 0.4) == claims.FAILS
    assert decide.verdict(findings.EQUIVALENT, 0.0, 0.2) == claims.INCONCLUSIVE


def test_report_is_written_and_deterministic(results, tmp_path, capsys):
    out = tmp_path / "claims.md"
    args = ["--results", str(results), "--out", str(out), "--seeds", str(N_SEEDS)]
    assert claims.main(args) == 0
    first = out.read_text()
    assert claims.main(args) == 0
    assert out.read_text() == first
    assert "(smoke scale)" in first and "Welch" in first and "BCa" in first
    assert "## Aggregate across maps" in first and "## Runs used" in first
    assert "qmix: 1, 2, 3, 4, 5; qmix_ippo_arch: 10, 6, 7, 8, 9" in first
    # Every verdict line shows the per-seed values of both sides (the pipe escaped in the table).
    assert f"| qmix: {values(QMIX)} \\| qmix_ippo_arch: {values(QMIX_IPPO_ARCH)} |" in first
    result_lines = [line for line in first.splitlines() if line.startswith("| ")
                    and line.split(" | ")[0][2:].isdigit()]
    assert len(result_lines) == len(claims.comparisons("smoke"))
    assert all(" \\| " in line for line in result_lines)
    printed = capsys.readouterr().out
    assert "claim" in printed and "verdict" in printed and "does not hold" in printed


def test_check_detects_a_stale_report(results, tmp_path):
    out = tmp_path / "claims.md"
    args = ["--results", str(results), "--out", str(out), "--seeds", str(N_SEEDS)]
    assert claims.main(args + ["--check"]) == 1  # missing
    assert claims.main(args) == 0
    assert claims.main(args + ["--check"]) == 0
    out.write_text(out.read_text().replace("holds", "HOLDS", 1))
    assert claims.main(args + ["--check"]) == 1


def test_reproduction_report_goes_between_the_readme_markers(results, tmp_path, capsys):
    from dm2_repro.figures import report
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{report.START}\nold text\n{report.END}\n\nafter\n")
    args = ["--results", str(results), "--out", str(tmp_path / "claims.md"), "--seeds", str(N_SEEDS),
            "--readme", str(readme)]
    assert claims.main(args + ["--check"]) == 1      # the block is stale (claims.md missing too)
    assert claims.main(args) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith("\n\nafter\n") and "old text" not in text
    fig8 = text[text.index("### fig8"):]
    assert "| QMIX | 5/5 |" in fig8 and "| QMIX (IPPO agent architecture) | 5/5 |" in fig8
    assert f"| qmix: {values(QMIX)} \\| qmix_ippo_arch: {values(QMIX_IPPO_ARCH)} |" in fig8
    assert "**holds**" in fig8.split("###")[1]
    # a figure with no runs says so instead of a table of empty comparisons
    assert 'No runs yet: every comparison is "not enough data".' in text[text.index("### fig4"):].split("###")[1]
    # beyond the paper: each curve's per-seed values, no verdict (IPPO is fig2's 3s_vs_3z IPPO)
    beyond = text[text.index("### c_sensitivity"):]
    assert f"| IPPO | 5/5 | {values([0.1] * 5)} | 0.050 | {values([0.1] * 5, FINAL)} |" in beyond
    assert "| DM², c=0.1 | 0/5 | none | — | none |" in beyond and "| verdict |" not in beyond
    behaviour = beyond[beyond.index("End of training"):]   # what its learners do, as in every figure's section
    assert sum(line.startswith("| IPPO | ") for line in behaviour.splitlines()) == 1
    assert claims.main(args + ["--check"]) == 0
    readme.write_text(text.replace("**holds**", "**does not hold**", 1))
    assert claims.main(args + ["--check"]) == 1
    capsys.readouterr()
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit) as exit_info:
        claims.main(args)
    assert exit_info.value.code == 2 and "lacks the reproduction report's markers" in capsys.readouterr().err


def test_the_report_of_a_selection_without_figure_7_or_3(results, tmp_path):
    """--maps / --curves that leave out Figure 7's and Figure 3's curves: their sections are simply absent."""
    (tmp_path / "docs").mkdir()
    full = tmp_path / "docs" / "report.md"
    from dm2_repro.figures import report
    full.write_text(f"{report.START}\n{report.END}\n")
    for selection in (["--maps", "3s_vs_3z"], ["--curves", "dm2*"]):
        assert claims.main(["--results", str(results), "--out", str(tmp_path / "claims.md"), "--seeds", str(N_SEEDS),
                            "--readme", str(full), *selection]) == 0
        assert "Where the curve saturates" not in full.read_text()


def test_claims_at_a_glance_count_each_findings_verdicts_and_link_to_the_report(results, tmp_path, capsys):
    from dm2_repro.figures import report
    (tmp_path / "docs").mkdir()
    full = tmp_path / "docs" / "report.md"
    full.write_text(f"{report.START}\n{report.END}\n")
    front = tmp_path / "README.md"
    front.write_text(f"# title\n{report.SUMMARY_START}\nold\n{report.SUMMARY_END}\nafter\n")
    args = ["--results", str(results), "--out", str(tmp_path / "claims.md"), "--seeds", str(N_SEEDS),
            "--readme", str(full), "--summary", str(front)]
    assert claims.main(args) == 0
    text = front.read_text()
    assert text.startswith("# title\n") and text.endswith("\nafter\n") and "\nold\n" not in text
    assert "[the reproduction report](docs/report.md)" in text   # the link, relative to README
    link = "[fig8](docs/report.md#fig8-qmixs-sensitivity-to-the-agent-architecture)"   # GitHub's anchor of its heading
    fig8 = next(line for line in text.splitlines() if f"| {link}: 5m_vs_6m |" in line)
    assert fig8.startswith("| C8 | QMIX is sensitive to its agent architecture |")
    assert "\n### fig8: QMIX's sensitivity to the agent architecture\n" in full.read_text()   # the heading linked to
    without = ["--results", str(results), "--out", str(tmp_path / "claims.md"), "--seeds", str(N_SEEDS),
               "--summary", str(tmp_path / "other.md")]   # no report: the table links to claims.md, no sections
    (tmp_path / "other.md").write_text(f"{report.SUMMARY_START}\n{report.SUMMARY_END}\n")
    assert claims.main(without) == 0
    assert "| fig8: 5m_vs_6m |" in (tmp_path / "other.md").read_text() and "#fig" not in (tmp_path / "other.md").read_text()
    cells = [c.strip() for c in fig8.strip("|").split("|")]
    assert cells[3:] == ["1", "", "", "", "", "1", ""]   # one comparison: holds, and after Holm; QMIX: not re-run
    rows = [line for line in text.splitlines() if line.startswith("| ") and "figure: maps" not in line]
    n_comparisons = sum(1 for line in (tmp_path / "claims.md").read_text().splitlines()
                        if line.split("|")[1:2] and line.split("|")[1].strip().isdigit())   # claims.md: a row each
    assert sum(int(c) for line in rows for c in line.strip("|").split("|")[3:8] if c.strip()) == n_comparisons
    labels = {line.split("|")[1].strip() for line in rows}
    assert labels == {f"C{i}" for i in range(1, 9)} | {"beyond the paper"}   # every paper claim, and the rest
    assert claims.main(args + ["--check"]) == 0
    front.write_text(text.replace(fig8, fig8.replace("| 1 |", "| 2 |", 1)))
    assert claims.main(args + ["--check"]) == 1
    capsys.readouterr()
    front.write_text("no markers\n")
    with pytest.raises(SystemExit) as exit_info:
        claims.main(args)
    assert exit_info.value.code == 2 and "lacks the claims at a glance's markers" in capsys.readouterr().err


def test_figure7_saturation_is_the_first_snapshot_equivalent_to_the_last(tmp_path):
    levels = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.4, 0.9, 0.9, 0.9]   # final win rate per snapshot
    plan = expand("fig7", "cpu")
    snapshots = [c for c in plan.curves if c.key != "qmix"]
    assert len(snapshots) == len(levels)
    run_id = 0
    for k, (c, level) in enumerate(zip(snapshots, levels)):
        for job in c.jobs:
            run_id += 1
            write_job_run(tmp_path, run_id, job, final=level + 0.02 * ((job.seed + k) % 3), steps=STEPS)
    curves = claims.load_curves(tmp_path, "cpu", figures=["fig7"])["fig7"]
    rows, finding = saturation.saturation([curves[("5m_vs_6m", c.key)] for c in snapshots], tmp_path)
    assert [row.equivalent for row in rows] == [False] * 7 + [True, True, None]
    seven = np.array([AUC * (0.9 + 0.02 * ((s + 7) % 3)) for s in range(1, 6)])
    last = np.array([AUC * (0.9 + 0.02 * ((s + 9) % 3)) for s in range(1, 6)])
    assert rows[7].delta == pytest.approx(stats.paired_t_interval(seven, last)[:3])
    assert finding.startswith(f"saturates at {snapshots[7].key}:")
    assert [row.differs for row in rows] == [True] * 7 + [False, False, None]
    assert "no difference" not in finding and "left out" not in finding   # both readings agree here
    # one seed fewer on an early snapshot: left out of the finding, which the others still make
    first = curves[("5m_vs_6m", snapshots[0].key)]
    fewer = claims.CurveRuns(first.curve, dict(list(first.runs.items())[:4]))
    rows, finding = saturation.saturation([fewer] + [curves[("5m_vs_6m", c.key)] for c in snapshots[1:]], tmp_path)
    assert rows[0].equivalent is None and finding.startswith(f"saturates at {snapshots[7].key}:")
    assert finding.endswith(f"left out, fewer than 5 seeds: {snapshots[0].key} (4 seeds)")
    # thinned below five complete snapshots (the last included): no finding
    thin = [curves[("5m_vs_6m", c.key)] for c in snapshots]
    thin = [claims.CurveRuns(c.curve, {}) if k < 6 else c for k, c in enumerate(thin)]
    rows, finding = saturation.saturation(thin, tmp_path)
    assert finding.startswith(claims.NO_DATA) and "has 4" in finding


def test_figure7_saturation_names_where_differences_stop_being_detected(tmp_path, monkeypatch):
    # AUC offsets to the last: -0.05 (equivalent but detected), then 0 — two readings of saturation
    levels = [0.85, 0.85, 0.9, 0.9, 0.9]
    plan = expand("fig7", "cpu")
    snapshots = [c for c in plan.curves if c.key != "qmix"][-5:]
    run_id = 0
    for k, (c, level) in enumerate(zip(snapshots, levels)):
        for job in c.jobs:
            run_id += 1
            write_job_run(tmp_path, run_id, job, final=level + 0.02 * (job.seed % 3), steps=STEPS)
    curves = claims.load_curves(tmp_path, "cpu", figures=["fig7"])["fig7"]
    rows, finding = saturation.saturation([curves[("5m_vs_6m", c.key)] for c in snapshots], tmp_path)
    assert [row.equivalent for row in rows] == [True] * 4 + [None]
    assert [row.differs for row in rows] == [True, True, False, False, None]
    assert finding.startswith(f"saturates at {snapshots[0].key}:")
    assert f"no difference from the last is detected from {snapshots[2].key} on" in finding
    # the runs before the re-run (another reward form: other jobs) all at the last level: the report names both
    monkeypatch.setitem(RETURN_STATISTIC_MAPS, "cpu", ())   # the section judges these win-rate runs on win rate
    before_snapshots = [c for c in expand("fig7", "cpu", before_rerun=True).curves if c.key != "qmix"][-5:]
    for c in before_snapshots:
        for job in c.jobs:
            run_id += 1
            write_job_run(tmp_path, run_id, job, final=0.9 + 0.02 * (job.seed % 3), steps=STEPS)
    now = claims.load_curves(tmp_path, "cpu", figures=["fig7"])["fig7"]
    before = claims.load_curves(tmp_path, "cpu", figures=["fig7"], before_rerun=True)["fig7"]
    text = "\n".join(saturation.saturation_section(now, "cpu", tmp_path, before))
    assert f"Finding: saturates at {snapshots[0].key}:" in text
    assert f"Before the re-run (the log-odds GAIL reward): saturates at {before_snapshots[0].key}:" in text
    assert "no difference" not in text.split("Before the re-run")[1]   # no difference is detected anywhere


def test_figure3_factorial_separates_co_training_from_concurrent_sampling(tmp_path):
    # final win rates: co-trained experts add 0.3 + 0.02 (seed % 2), concurrent sampling -+0.01 by seed, both
    # on a seed's own offset shared by its cells of a panel (the pairing the design relies on)
    plan = expand("fig3", "cpu")
    co_gain = {s: 0.3 + 0.02 * (s % 2) for s in range(1, 6)}   # left panel; the right panel's is 0.1 less
    concurrent_gain = {s: 0.02 * (s % 2) - 0.01 for s in range(1, 6)}
    run_id = 0
    for c in plan.curves:
        for job in c.jobs:
            if c.key == "late_indep_nonconcurrent" and job.seed == 5:
                continue   # one cell of the right panel lacks seed 5
            gain = co_gain[job.seed] - (0.1 if c.key.startswith("late") else 0.0)
            final = 0.2 + 0.05 * (job.seed % 3) + (gain if "_co_" in c.key else 0.0) + (
                concurrent_gain[job.seed] if "_concurrent" in c.key else 0.0)
            run_id += 1
            steps, wins = win_curve(final, STEPS)   # the same curve as the return (5m_vs_6m's cpu statistic)
            write_job_run(tmp_path, run_id, job, metrics={"test_battle_won_mean": (steps, wins),
                                                          "test_return_mean": (steps, [20 * w for w in wins])})
    curves = claims.load_curves(tmp_path, "cpu", figures=["fig3"])["fig3"]
    rows = {(r.effect, r.panel): r for r in claims.factorial(curves)}
    early_co = rows[("A", "early")]
    assert list(early_co.values) == [1, 2, 3, 4, 5]
    assert list(early_co.values.values()) == pytest.approx([co_gain[s] * AUC for s in range(1, 6)])
    assert early_co.verdict == claims.HOLDS
    assert early_co.measured.startswith(f"{np.mean(list(co_gain.values())) * AUC:+.3f} ")
    assert list(rows[("B", "early")].values.values()) == pytest.approx([concurrent_gain[s] * AUC for s in range(1, 6)])
    assert rows[("B", "early")].verdict == claims.HOLDS
    assert list(rows[("AB", "early")].values.values()) == pytest.approx([0.0] * 5)
    assert rows[("AB", "early")].verdict == ""
    # the right panel has 4 seeds with every cell: no verdict there, nor pooled; pooled = mean of the panels
    assert list(rows[("A", "late")].values.values()) == pytest.approx([(co_gain[s] - 0.1) * AUC for s in range(1, 5)])
    assert list(rows[("A", factorial.POOLED)].values.values()) == pytest.approx(
        [(co_gain[s] - 0.05) * AUC for s in range(1, 5)])
    assert rows[("A", "late")].verdict == rows[("A", factorial.POOLED)].verdict == claims.NO_DATA
    assert "n=4 seeds" in rows[("B", factorial.POOLED)].measured
    # judge(): the rows with a verdict and data are in Holm's family (their Holm column set), the others not
    outcomes, effects = claims.judge(tmp_path, "cpu", curves=claims.load_curves(tmp_path, "cpu"))
    judged = {(r.effect, r.panel): r for r in effects}
    assert judged[("A", "early")].holm == claims.HOLDS and judged[("A", "early")].p_value < 0.05
    assert judged[("AB", "early")].holm == "" and judged[("AB", "early")].p_value is None
    assert judged[("A", factorial.POOLED)].holm == claims.NO_DATA
    # one family: each Holm verdict is the one Holm's adjustment over the comparisons AND the rows gives
    family = [x for x in [*outcomes, *effects] if x.p_value is not None]
    assert any(isinstance(x, claims.Outcome) for x in family) and any(x in effects for x in family)
    adjusted = stats.holm([x.p_value for x in family])
    assert [x.holm for x in family] == [x.direction if p < 0.05 else claims.INCONCLUSIVE
                                        for x, p in zip(family, adjusted)]


def renaming(monkeypatch, figures, old, new):
    """Make claims see the curve `old` of `figures` under the key `new`, as after a rename."""
    import dataclasses

    real = claims.expand

    def expand_renamed(name, *args, **kwargs):
        plan = real(name, *args, **kwargs)
        if name in figures:
            plan.curves = [dataclasses.replace(c, key=new) if c.key == old else c
                           for c in plan.curves]
        return plan

    monkeypatch.setattr(claims, "expand", expand_renamed)     # the curves claims loads
    monkeypatch.setattr(findings, "expand", expand_renamed)   # the curves its comparisons are checked against


def test_compared_maps_are_the_figure_definitions_maps():
    found = claims.comparisons("smoke")
    for figure in ("fig2", "fig4", "fig5", "fig6"):
        defined = {c.map for c in expand(figure, "smoke").curves}
        assert {c.map for c in found if c.figure == figure} == defined


def test_every_compared_curve_is_a_curve_of_its_figure():
    for scale in ("smoke", "cpu", "paper"):
        for c in claims.comparisons(scale):
            keys = {(curve.map, curve.key) for curve in expand(c.figure, scale).curves}
            assert (c.map, c.a) in keys and (c.b is None or (c.map, c.b) in keys)


def test_a_renamed_curve_fails_loudly(monkeypatch):
    renaming(monkeypatch, ("fig8",), "qmix_ippo_arch", "qmix_ippo_net")
    with pytest.raises(ValueError, match="fig8 has no curve 'qmix_ippo_arch' on 5m_vs_6m .*qmix_ippo_net"):
        claims.comparisons("smoke")


def test_aggregate_rows_follow_the_figure_definitions_curves(results, monkeypatch):
    rows = [a.key for a in claims.aggregate_all(claims.load_curves(results, "smoke", n_seeds=N_SEEDS), "smoke")]
    defined = {c.key for c in expand("fig2", "smoke").curves} - {"ippo"}
    assert rows == sorted(defined)
    renaming(monkeypatch, ("fig2", "fig4"), "sil", "self_imitation")   # fig4 is fig2's comparison
    curves = claims.load_curves(results, "smoke", n_seeds=N_SEEDS)
    rows = [a.key for a in claims.aggregate_all(curves, "smoke")]
    assert "self_imitation" in rows and "sil" not in rows


def test_a_runs_values_do_not_depend_on_what_it_is_compared_with(tmp_path):
    """Evaluations land up to one rollout past each eval boundary, so runs end a few steps apart.
    IPPO's runs (last eval at 1,640) are compared with DM² runs that end at 1,600 (fig2) and with
    GAIL-only runs that end at 1,620 (fig6): each IPPO seed keeps its last evaluation in both, so its
    AUC and final are the same values, those of its own whole curve (a strict cut at the partner's
    last step would drop it: linear AUC 0.375 f instead of 0.5 f)."""
    w = Writer(tmp_path)
    ippo_steps = (0, 410, 820, 1230, 1640)  # evenly spaced: a linear curve's AUC is f / 2
    w.curve("fig2", "ippo", IPPO_5M, "3s_vs_4z", steps=ippo_steps)
    w.curve("fig2", "dm2_ippo_early", EARLY, "3s_vs_4z")
    w.curve("fig6", "gail_only_early", QMIX_IPPO_ARCH, "3s_vs_4z", steps=(0, 405, 810, 1215, 1620))
    outcomes = evaluate(tmp_path)
    fig2 = outcome(outcomes, "fig2", "3s_vs_4z", "dm2_ippo_early", "ippo")
    fig6 = outcome(outcomes, "fig6", "3s_vs_4z", "ippo", "gail_only_early")
    ippo_values = f"ippo: {values(IPPO_5M)}"
    assert ippo_values in fig2.values and ippo_values in fig6.values
    ippo = claims.load_curves(tmp_path, "smoke", n_seeds=N_SEEDS, figures=["fig2"])["fig2"][("3s_vs_4z", "ippo")]
    finals = curves.seed_values(ippo, "final", 0, 1600)
    assert list(finals.values()) == pytest.approx([FINAL * f for f in IPPO_5M])


def test_runs_table_has_a_column_per_panel():
    """fig3 has two panels on one map with the same curve names: each panel keeps its own counts."""
    from types import SimpleNamespace as NS

    from dm2_repro.figures.report import runs_table

    def entry(panel, label, n):
        return NS(curve=NS(panel=panel, label=label), runs=[object()] * n, n_expected=5)

    curves = {("5m_vs_6m", "early_co"): entry("IPPO demo, 20k", "Co-trained", 4),
              ("5m_vs_6m", "late_co"): entry("IPPO demo, 35k", "Co-trained", 0),
              ("5m_vs_6m", "early_indep"): entry("IPPO demo, 20k", "Independent", 5)}
    assert runs_table(curves) == ["| curve | IPPO demo, 20k | IPPO demo, 35k |", "|---|---|---|",
                                  "| Co-trained | 4/5 | 0/5 |", "| Independent | 5/5 | — |"]


def test_setting_line_names_budget_statistic_and_batch_sizes_against_the_paper():
    from dm2_repro.figures.report import setting_line

    line = setting_line(["5m_vs_6m"], "cpu")
    assert line.startswith("5m_vs_6m: 150k steps (paper 10M)") and "statistic test return / 20" in line
    assert "16-episode PPO batches (paper 1024)" in line and "40 discriminator steps per update (paper 120 per 1024)" in line
    # a figure whose DM²-family jobs take the paper's discriminator rate (the re-run) says so
    assert ("2 discriminator steps per update, the paper's per collected episode (paper 120 per 1024)"
            in setting_line(["5m_vs_6m"], "cpu", paper_rate=True))
    assert "batches" not in setting_line(["5m_vs_6m"], "paper")


def test_demo_length_claim_compares_final_test_length_with_the_demonstrations(tmp_path):
    """reward_forms' GAIL-only claim: per seed final greedy test episode length / demonstrations' mean length - 1,
    "~" within +-25%: holds near the demonstrations' length, does not hold far below it."""
    w = Writer(tmp_path)
    demo_lengths = [50.0, 60.0, 55.0, 45.0, 52.0]
    for key, factor in (("gail_only_absorbing", 1.0), ("gail_only_logit", 0.2)):
        for path, demo_length, jitter in zip(w.curve("reward_forms", key, [0.1] * 5, "3s_vs_4z"), demo_lengths,
                                             [0.98, 1.02, 1.0, 0.99, 1.01]):
            metrics = json.loads((path / "metrics.json").read_text())
            final = factor * demo_length * jitter
            metrics["test_ep_length_mean"] = {"steps": list(STEPS), "values": [10.0, 20.0, final, final, final]}
            (path / "metrics.json").write_text(json.dumps(metrics))
            (path / "info.json").write_text(json.dumps({"demo": {"demo_ep_length_mean": demo_length}}))
    outcomes = evaluate(tmp_path)
    near = outcome(outcomes, "reward_forms", "3s_vs_4z", "gail_only_absorbing", None)
    far = outcome(outcomes, "reward_forms", "3s_vs_4z", "gail_only_logit", None)
    assert near.verdict == claims.HOLDS and far.verdict == claims.FAILS
    assert "final / demo - 1 = -0.800" in far.measured and "demo mean length: 50.0 60.0 55.0 45.0 52.0" in far.values
    assert "n=0" in outcome(outcomes, "reward_forms", "3s_vs_4z", "gail_only_paper", None).measured


def test_early_window_takes_the_first_third_of_the_common_range(tmp_path, monkeypatch):
    """departures' early claims: the AUC over the first third of the step range only. An arm ahead early and
    behind late is "greater" early and not over the whole budget (5m_vs_6m judged on return, as at cpu)."""
    monkeypatch.setitem(RETURN_STATISTIC_MAPS, "smoke", ("5m_vs_6m",))
    w = Writer(tmp_path)
    steps = (0, 300, 600, 900, 1200, 1500, 1800)
    w.curve("departures", "ippo", [0.0] * 5, steps=steps)
    w.curve("departures", "dm2", [0.0] * 5, steps=steps)
    for path, bump in zip(w.curve("departures", "dm2_c0.1", [0.0] * 5, steps=steps), [0.9, 1.0, 1.1, 0.95, 1.05]):
        metrics = json.loads((path / "metrics.json").read_text())
        # ahead in the first third (steps 0-600), far behind afterwards (as test return / 20)
        metrics["test_return_mean"] = {"steps": list(steps), "values": [0.0, 10 * bump, 10 * bump, -20, -20, -20, -20]}
        (path / "metrics.json").write_text(json.dumps(metrics))
    for path in [*tmp_path.glob("runs/*")]:
        metrics = json.loads((path / "metrics.json").read_text())
        metrics.setdefault("test_return_mean", {"steps": list(steps), "values": [0.0] * len(steps)})
        (path / "metrics.json").write_text(json.dumps(metrics))
    by = {(o.comparison.a, o.comparison.b, o.comparison.window): o for o in evaluate(tmp_path)
          if o.comparison.figure == "departures"}
    early, full = by[("dm2_c0.1", "ippo", 1 / 3)], by[("dm2_c0.1", "ippo", 1.0)]
    assert "first third" in early.comparison.description and "first third" not in full.comparison.description
    assert early.verdict == claims.HOLDS and full.verdict == claims.FAILS
    # the first third of 0-1800 is 0-600: the trapezoid of 0, 10b, 10b over it, / 20, mean over seeds 1.0 -> 0.375
    assert early.measured.startswith("ΔAUC(return/20) = +0.375")


@pytest.mark.parametrize("test", [findings.GREATER, findings.EQUIVALENT])
@pytest.mark.parametrize("paired", [False, True])
def test_verdict_p_gives_the_interval_verdict(test, paired):
    """p < 0.05 exactly where the 95% interval gives a verdict, and its direction is that verdict."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        a, b = rng.normal(rng.uniform(-0.3, 0.3), 0.1, 5), rng.normal(0.0, 0.1, 5)
        _, _, low, high, _ = decide.interval(a, b, paired)
        judged = decide.verdict(test, low, high, 0.08)
        p, direction = decide.verdict_p(test, a, b, paired, 0.08)
        assert (p < findings.ALPHA) == (judged != claims.INCONCLUSIVE), (judged, p)
        if judged != claims.INCONCLUSIVE:
            assert direction == judged


def test_an_interval_without_spread_says_so_instead_of_a_dof():
    """Both curves at the floor on every seed (3s_vs_5z's first third): t's interval is the point and scipy's
    df=1 means nothing; the report names the test as undefined. One seed off the floor restores Welch's name."""
    floor = np.zeros(5)
    name, estimate, low, high, bca = decide.interval(floor, floor, False)
    assert name.startswith("no spread") and (estimate, low, high) == (0.0, 0.0, 0.0) and bca == "BCa n/a"
    assert decide.interval(floor + 0.1, floor, True)[0].startswith("no spread")   # every pair differs by 0.1
    # its p for Holm: undefined (0/0), so nothing is rejected: 1, not NaN
    assert decide.verdict_p(findings.GREATER, floor, floor, False, 0.1)[0] == 1.0
    assert decide.verdict_p(findings.GREATER, floor, floor, True, 0.1)[0] == 1.0
    assert decide.interval(np.array([0, 0, 0, 0, 0.03]), floor, False)[0].startswith("Welch t, df=")
    assert decide.interval(np.array([0, 0, 0, 0, 0.03]), floor, True)[0].startswith("paired t, df=")


def test_holm_column_keeps_only_verdicts_that_survive_the_family():
    def fake(p, direction):
        return claims.Outcome(None, direction if p < 0.05 else claims.INCONCLUSIVE, "", p_value=p, direction=direction)

    outcomes = [fake(0.001, claims.HOLDS), fake(0.02, claims.FAILS), fake(0.3, claims.HOLDS),
                claims.Outcome(None, claims.NO_DATA, "")]
    claims.with_holm(outcomes)   # adjusted: 0.003, 0.04, 0.3 (no-data outcomes are not in the family)
    assert [o.holm for o in outcomes] == [claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE, claims.NO_DATA]
    outcomes = [fake(0.001, claims.HOLDS), fake(0.02, claims.FAILS), fake(0.021, claims.HOLDS), fake(0.04, claims.HOLDS)]
    claims.with_holm(outcomes)   # adjusted: 0.004, 0.06, 0.06, 0.06
    assert [o.holm for o in outcomes] == [claims.HOLDS] + [claims.INCONCLUSIVE] * 3
    assert [o.verdict for o in outcomes] == [claims.HOLDS, claims.FAILS, claims.HOLDS, claims.HOLDS]


def test_every_comparison_of_the_paper_names_its_claim():
    """CLAIM_LABELS covers every paper finding (a new one without a label fails here, not in the report)."""
    from dm2_repro.verdicts.findings import claim_label, comparisons

    labels = {c.figure: set() for c in comparisons("cpu")}
    for c in comparisons("cpu"):
        labels[c.figure].add(claim_label(c))
    assert labels["fig2"] == labels["fig4"] == {"C1", "C2", "C3", "C4"}
    assert (labels["fig3"], labels["fig5"], labels["fig6"], labels["fig7"], labels["fig8"]) == (
        {"C5"}, {"C7"}, {"C6"}, {"C4"}, {"C8"})
    assert labels["reward_forms"] == labels["departures"] == {""}


def test_figure3_rows_share_holms_family_with_the_comparisons():
    """A 2x2 row that holds on its own p (0.03) is inconclusive once the report's comparisons join its family."""
    def fake(p, direction):
        return claims.Outcome(None, direction if p < 0.05 else claims.INCONCLUSIVE, "", p_value=p, direction=direction)

    row = factorial.EffectRow("both", "A", {}, "m", claims.HOLDS, 0.1, p_value=0.03, direction=claims.HOLDS)
    interaction = factorial.EffectRow("both", "AB", {}, "m", "", 0.0)
    claims.with_holm([row, interaction])
    assert (row.holm, interaction.holm) == (claims.HOLDS, "")
    claims.with_holm([fake(0.001, claims.HOLDS), fake(0.02, claims.FAILS), fake(0.3, claims.HOLDS), row])
    assert row.holm == claims.INCONCLUSIVE   # adjusted: 0.004, 0.06, 0.3, 0.06
    assert factorial.factorial_lines([row])[2].endswith("| **holds** | inconclusive |")


def test_declared_statistics_at_the_cpu_preset():
    """Per-map margins, 3s_vs_5z's secondary return statistic, the early window of "learns faster"."""
    found = claims.comparisons("cpu")
    margins = {(c.map, c.metric): c.margin for c in found if c.test == findings.EQUIVALENT}
    assert margins == {("5m_vs_6m", "return"): 0.028, ("3s_vs_4z", "win_rate"): 0.053,
                       ("3s_vs_3z", "win_rate"): 0.078, ("3s_vs_5z", "win_rate"): 0.003,
                       ("3s_vs_5z", "return"): 0.039, ("8m_vs_9m", "return"): 0.024}
    on_5z = [c for c in found if c.map == "3s_vs_5z"]
    assert {c.metric for c in on_5z if c.secondary} == {"return"} and {c.metric for c in on_5z if not c.secondary} == {
        "win_rate"}
    assert len([c for c in on_5z if c.secondary]) == len([c for c in on_5z if not c.secondary])
    early = [c for c in found if c.window < 1 and c.figure == "fig2"]
    assert {c.finding for c in early} == {"DM² learns faster than IPPO", "CTDE (QMIX, RMAPPO) learns faster than DM²"}
    assert all("first third of training" in c.description for c in early)
    # smoke keeps the single margin (no IPPO runs declare one there)
    assert {c.margin for c in claims.comparisons("smoke") if c.test == findings.EQUIVALENT} == {findings.EQUIVALENCE_MARGIN}


def test_above_floor_demonstrations_is_trivially_above(tmp_path):
    w = Writer(tmp_path)
    for path, quality in zip(w.curve("fig2", "dm2_ippo_early", ABOVE_FINALS, "3s_vs_4z"), [0.0, 0.05, 0.0, 0.02, 0.0]):
        (path / "info.json").write_text(json.dumps({"demo": {"quality": quality}}))
    above = outcome(evaluate(tmp_path), "fig2", "3s_vs_4z", "dm2_ippo_early", None)
    assert above.verdict == claims.TRIVIAL and above.holm == claims.TRIVIAL
    assert "demonstrations at the floor" in above.measured


def test_each_rerun_comparison_says_its_verdict_before_the_rerun(tmp_path):
    """GAIL-only's runs before the re-run (the logit arm) beat IPPO; its re-run falls below: the comparison
    "IPPO > GAIL-only" is refuted before and holds now, and says so; IPPO's own runs are the same in both arms."""
    w = Writer(tmp_path)
    w.curve("fig6", "ippo", [0.50, 0.55, 0.52, 0.51, 0.54], "3s_vs_4z")
    w.curve("fig6", "gail_only_early", [0.80, 0.85, 0.90, 0.82, 0.88], "3s_vs_4z", before_rerun=True)
    w.curve("fig6", "gail_only_early", [0.10, 0.15, 0.12, 0.11, 0.14], "3s_vs_4z")
    out = tmp_path / "claims.md"
    assert claims.main(["--results", str(tmp_path), "--out", str(out), "--seeds", str(N_SEEDS)]) == 0
    row = next(line for line in out.read_text().splitlines() if "fig6 3s_vs_4z: ippo > gail_only_early (auc)" in line)
    now, before = (c.strip() for c in row.strip("|").split("|")[-3::2])
    auc = AUC * (np.mean([0.50, 0.55, 0.52, 0.51, 0.54]) - np.mean([0.80, 0.85, 0.90, 0.82, 0.88]))
    delta = AUC * (np.mean([0.80, 0.85, 0.90, 0.82, 0.88]) - np.mean([0.10, 0.15, 0.12, 0.11, 0.14]))
    assert now == "**holds**" and before == f"does not hold ({auc:+.3f}); Δ {delta:+.3f}, **changed**"
    assert "Changed by the re-run: 1 of the 1 re-run comparisons" in out.read_text()


def test_c_sensitivity_gives_each_curves_mean_auc_before_the_rerun(tmp_path):
    from dm2_repro.figures import report

    w = Writer(tmp_path)
    w.curve("c_sensitivity", "ippo", [0.6] * 5, "3s_vs_3z")
    w.curve("c_sensitivity", "dm2_c1", [0.2] * 5, "3s_vs_3z", before_rerun=True)   # the logit runs
    w.curve("c_sensitivity", "dm2_c1", [0.8] * 5, "3s_vs_3z")                      # the re-run
    full = tmp_path / "report.md"
    full.write_text(f"{report.START}\n{report.END}\n")
    assert claims.main(["--results", str(tmp_path), "--out", str(tmp_path / "claims.md"), "--seeds", str(N_SEEDS),
                        "--readme", str(full)]) == 0
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in full.read_text().split("### c_sensitivity")[1].split("End of training")[0].splitlines()
            if line.startswith("| ")}
    assert rows["curve"][-1] == "mean AUC before the re-run"
    assert rows["DM², c=1"][3] == f"{AUC * 0.8:.3f}" and rows["DM², c=1"][-1] == f"{AUC * 0.2:.3f}"
    assert rows["IPPO"][-1] == "not re-run" and rows["DM², c=3"][-1] == "—"   # no runs of c=3 in either arm


def test_setting_line_states_the_budget_the_runs_were_made_with():
    """claims --hp t_max=...: the report's setting line gives that budget, not the preset's."""
    from dm2_repro.figures.report import setting_line

    assert setting_line(["3s_vs_3z"], "cpu").startswith("3s_vs_3z: 100k steps (paper 10M)")
    assert setting_line(["3s_vs_3z"], "cpu", hp=(("t_max", 50_000),)).startswith("3s_vs_3z: 50k steps (paper 10M)")


def test_anchor_follows_githubs_rule_for_headings():
    from dm2_repro.figures.report import anchor
    assert anchor("fig2: DM² compared to IPPO, RMAPPO and QMIX") == "fig2-dm-compared-to-ippo-rmappo-and-qmix"
    assert anchor("reward_forms: The GAIL reward's form (beyond)") == "reward_forms-the-gail-rewards-form-beyond"
    assert anchor("Findings of the biased `logit` runs (2026-12-06)") == "findings-of-the-biased-logit-runs-2026-12-06"
    assert anchor("A & B / c.d — é_f ² Ⅷ") == "a--b--cd--é_f--ⅷ"   # written out by GitHub's rule, not by anchor()
