"""The re-run of the DM²-family curves: the arm before it (plan.expand's before_rerun) and how each verdict moved
(verdicts.rerun)."""
from __future__ import annotations

from types import SimpleNamespace

from dm2_repro.algos import LEGACY_GAIL_REWARD
from dm2_repro.sweeps.plan import PAPER_FIGURES_GAIL_REWARD, expand, rerun_figure
from dm2_repro.verdicts.findings import EQUIVALENT, GREATER, HOLDS, INCONCLUSIVE, NO_DATA, Comparison, Outcome
from dm2_repro.verdicts.rerun import before_text, changed, rerun_comparison, with_before


def test_before_the_rerun_the_dm2_curves_have_the_logit_jobs_and_the_baselines_the_same():
    now = {c.key: c for c in expand("fig2", "cpu", maps=["5m_vs_6m"]).curves}
    before = {c.key: c for c in expand("fig2", "cpu", maps=["5m_vs_6m"], before_rerun=True).curves}
    for key in ("dm2_ippo_early", "dm2_qmix", "sil"):
        assert {job.gail_reward for job in now[key].jobs} == {PAPER_FIGURES_GAIL_REWARD}
        assert {job.gail_reward for job in before[key].jobs} == {LEGACY_GAIL_REWARD}
        assert all("gail_epochs" not in dict(job.hp) for job in before[key].jobs)   # the preset's own rate
        assert all(dict(job.hp)["gail_epochs"] == 2 for job in now[key].jobs)       # the paper's rate
    for key in ("ippo", "qmix", "rmappo"):
        assert now[key].jobs == before[key].jobs
    # the demonstrations are the same files in both arms
    assert [job.demo for job in now["dm2_ippo_early"].jobs] == [job.demo for job in before["dm2_ippo_early"].jobs]


def test_figures_that_set_their_own_reward_forms_have_no_other_arm():
    assert rerun_figure("fig7") and not rerun_figure("reward_forms") and not rerun_figure("departures")
    now = expand("reward_forms", "smoke")
    before = expand("reward_forms", "smoke", before_rerun=True)
    assert [c.jobs for c in now.curves] == [c.jobs for c in before.curves]


def _curves(jobs_now: dict, jobs_before: dict) -> tuple[dict, dict]:
    """claims.load_curves' shape for one figure and map: key -> something with curve.jobs."""
    def wrap(jobs):
        return {"fig2": {("m", key): SimpleNamespace(curve=SimpleNamespace(jobs=j)) for key, j in jobs.items()}}
    return wrap(jobs_now), wrap(jobs_before)


def _outcome(comparison, verdict, estimate, run_ids=None):
    return Outcome(comparison, verdict, "", run_ids={comparison.a: ["1"]} if run_ids is None else run_ids,
                   estimate=estimate)


def test_each_rerun_comparison_gets_its_outcome_before_the_rerun():
    dm2_vs_ippo = Comparison("f", "p", "fig2", "m", "dm2", "ippo", GREATER)
    qmix_vs_ippo = Comparison("f", "p", "fig2", "m", "qmix", "ippo", GREATER)
    same = Comparison("f", "p", "fig2", "m", "dm2", "ippo", EQUIVALENT)
    now, before = _curves({"dm2": ("absorbing",), "ippo": ("i",), "qmix": ("q",)},
                          {"dm2": ("logit",), "ippo": ("i",), "qmix": ("q",)})
    assert rerun_comparison(dm2_vs_ippo, now, before) and not rerun_comparison(qmix_vs_ippo, now, before)
    outcomes = [_outcome(dm2_vs_ippo, INCONCLUSIVE, 0.004), _outcome(qmix_vs_ippo, HOLDS, 0.2),
                _outcome(same, HOLDS, 0.004)]
    earlier = [_outcome(dm2_vs_ippo, HOLDS, 0.034), _outcome(qmix_vs_ippo, HOLDS, 0.2),
               _outcome(same, HOLDS, 0.01)]
    with_before(outcomes, earlier, now, before)
    moved, baseline, kept = outcomes
    assert moved.before is earlier[0] and baseline.before is None and kept.before is earlier[2]
    assert (changed(moved), changed(baseline), changed(kept)) == (True, None, False)
    assert before_text(moved) == "holds (+0.034); Δ -0.030, **changed**"
    assert before_text(kept) == "holds (+0.010); Δ -0.006, same"
    assert before_text(baseline) == "— (not re-run)"


def test_no_data_on_either_side_is_no_change():
    c = Comparison("f", "p", "fig2", "m", "dm2", "ippo", GREATER)
    now_only = _outcome(c, HOLDS, 0.1)
    now_only.before = _outcome(c, NO_DATA, None)
    before_only = _outcome(c, NO_DATA, None)
    before_only.before = _outcome(c, HOLDS, 0.05)
    assert changed(now_only) is None and changed(before_only) is None
    assert before_text(now_only) == NO_DATA
    assert before_text(before_only) == "holds (+0.050)"   # no estimate now: no difference to give
    never = _outcome(c, HOLDS, 0.1)
    never.before = _outcome(c, NO_DATA, None, run_ids={"dm2": [], "ippo": []})   # e.g. paper_hp: no earlier arm
    assert before_text(never) == "— (no runs before the re-run)"


def test_figure3_rows_say_their_effect_before_the_rerun():
    from dm2_repro.verdicts.factorial import EffectRow, factorial_lines, with_before_rerun

    now = [EffectRow("both", "A", {1: 0.1}, "m", HOLDS, 0.1), EffectRow("both", "AB", {1: 0.0}, "m", "", 0.0)]
    before = [EffectRow("both", "A", {1: 0.0}, "m", INCONCLUSIVE, 0.02),
              EffectRow("both", "AB", {1: 0.0}, "m", "", -0.01)]
    assert "before the re-run" not in factorial_lines(before)[0]   # rows without a `before`: no such column
    lines = factorial_lines(with_before_rerun(now, before))
    assert lines[0].endswith("| verdict | Holm | before the re-run |")
    # no Holm verdict set (with_holm not run): the column repeats the verdict
    assert lines[2].endswith("| **holds** | holds | inconclusive (+0.020); Δ +0.080, **changed** |")
    assert lines[3].endswith("| (no finding) |  | (-0.010); Δ +0.010 |")   # the interaction: no verdict to change


def test_the_report_lists_the_verdicts_the_rerun_changed():
    from dm2_repro.figures.report import rerun_section

    c = [Comparison("DM² learns faster", "p", "fig2", "m", f"dm2_{i}", "ippo", GREATER) for i in range(4)]
    moved, kept, waiting, baseline = (_outcome(c[0], HOLDS, 0.03), _outcome(c[1], HOLDS, 0.02),
                                      _outcome(c[2], NO_DATA, None), _outcome(c[3], HOLDS, 0.1))
    moved.before, kept.before, waiting.before = (_outcome(c[0], INCONCLUSIVE, 0.01), _outcome(c[1], HOLDS, 0.04),
                                                 _outcome(c[2], HOLDS, 0.05))
    text = "\n".join(rerun_section([moved, kept, waiting, baseline]))
    assert "Of the 2 comparisons with data both before" in text and "1 changed verdict:" in text
    assert "| DM² learns faster | fig2 m: dm2_0 > ippo (auc) | inconclusive (+0.010) | **holds** (+0.030) |" in text
    assert "dm2_1" not in text and "dm2_3" not in text   # kept its verdict; not re-run
    assert "1 more re-run comparisons have no complete curve of the re-run yet" in text
