"""The figure definitions: expansion into jobs, prerequisites, per-scale choices, filters."""
from __future__ import annotations

from pathlib import Path

import pytest

from dm2_repro.config import make_hp, paper_tables
from dm2_repro.sweeps.plan import (FIGURES, SCALES, DemoJob, TrainJob, demo_step, expand, figure_def,
                         format_steps, quality_sweep, seeds_for)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("figure", FIGURES)
def test_expansion_is_curves_times_seeds_with_prerequisites_first(figure, scale):
    plan = expand(figure, scale)
    n_seeds = figure_def(figure).n_seeds or {"paper": 5, "paper_hp": 5, "cpu": 5, "smoke": 2}[scale]
    assert len(plan.seeds) == n_seeds
    assert all(len(curve.jobs) == n_seeds for curve in plan.curves)
    # curves drawing the same runs twice (the budget pilot's win-rate and return rows) share jobs
    distinct = {tuple(job.key for job in curve.jobs) for curve in plan.curves}
    assert len(plan.learner_jobs) == len(distinct) * n_seeds
    keys = [job.key for job in plan.jobs]
    assert len(keys) == len(set(keys)), "every job once"
    position = {job: i for i, job in enumerate(plan.jobs)}
    for job in plan.jobs:
        for dep in job.deps:
            assert position[dep] < position[job], f"{dep.key} must come before {job.key}"
    assert set(plan.learner_jobs) <= set(plan.jobs)


def test_fig2_cpu_job_counts_and_shared_experts():
    plan = expand("fig2", "cpu")
    trains = [j for j in plan.jobs if isinstance(j, TrainJob)]
    demos = [j for j in plan.jobs if isinstance(j, DemoJob)]
    # 7 curves x 3 maps x 5 seeds; the IPPO baseline runs are also the experts (no extra runs).
    assert len(trains) == 7 * 3 * 5
    # IPPO demos: 2 qualities x 3 maps x 5 seeds; QMIX demos: one per map.
    assert len(demos) == 2 * 3 * 5 + 3
    ippo_curve_jobs = {j for c in plan.curves if c.key == "ippo" for j in c.jobs}
    expert_jobs = {src for d in demos if d.source_algo == "ippo" for src in d.sources}
    assert expert_jobs == ippo_curve_jobs


def test_fig2_legend_names_as_in_the_paper():
    labels = {c.label for c in expand("fig2", "paper").curves}
    assert {"IPPO", "RMAPPO", "QMIX", "SIL", "DM² (QMIX demo)", "DM² (IPPO demo, 5M)",
            "DM² (IPPO demo, 7M)"} == labels


def test_demo_steps_per_scale():
    # Paper: the 5M and 7M snapshots of 10M (Figure 3's "5m" and "7m").
    assert [demo_step("5m_vs_6m", "paper", q) for q in ("early", "late")] == [5_000_000, 7_000_000]
    for scale in ("cpu", "smoke"):
        for map_name in paper_tables()["maps"]:
            hp = make_hp("ippo", map_name, scale)
            early, late = (demo_step(map_name, scale, q) for q in ("early", "late"))
            assert 0 < early < late <= hp.t_max
            assert early % hp.save_policy_every == 0 and late % hp.save_policy_every == 0
    # Figure 7: every 1M at paper scale; at most ten snapshots elsewhere.
    assert quality_sweep("5m_vs_6m", "paper") == tuple(range(1_000_000, 10_000_001, 1_000_000))
    assert len(quality_sweep("5m_vs_6m", "cpu")) <= 10


def test_qmix_demo_epsilon_comes_from_paper_tables():
    plan = expand("fig2", "cpu")
    for demo in (j for j in plan.jobs if isinstance(j, DemoJob) and j.source_algo == "qmix"):
        assert demo.epsilon == paper_tables()["maps"][demo.map]["qmix_demo_epsilon"]
        assert demo.step is None and demo.sources[0].seed == plan.seeds[0]
    eps = {d.map: d.epsilon for d in plan.jobs if isinstance(d, DemoJob) and d.source_algo == "qmix"}
    assert eps == {"5m_vs_6m": 0.0, "3s_vs_4z": 0.0, "3s_vs_3z": 0.1}


def test_fig3_styles_and_independent_experts():
    plan = expand("fig3", "paper")
    assert len({c.panel for c in plan.curves}) == 2
    for curve in plan.curves:
        demos = curve.demos
        assert len(demos) == 5 and all(d.style == curve.key.split("_", 1)[1] for d in demos)
        if curve.key.endswith("indep_concurrent") or curve.key.endswith("indep_nonconcurrent"):
            # One expert run per agent (5 on 5m_vs_6m), in a seed-dependent rotation.
            assert all(len(d.sources) == 5 for d in demos)
            assert len({tuple(s.seed for s in d.sources) for d in demos}) == 5
            assert {s.seed for s in demos[0].sources} == set(seeds_for(5))
        else:
            assert [d.sources[0].seed for d in demos] == [j.seed for j in curve.jobs]


@pytest.mark.parametrize("figure", FIGURES)
def test_a_curve_keeps_its_colour_across_panels(figure):
    """Figures compare panels by colour: one colour per legend name, one legend name per colour and
    line style within a panel (fig3's styles once had a different colour in each quality panel;
    reward_forms gives a form one colour, DM² solid and GAIL-only dashed)."""
    curves = expand(figure, "cpu").curves
    by_label = {}
    for c in curves:
        by_label.setdefault(c.label, set()).add(c.color_key)
    assert all(len(keys) == 1 for keys in by_label.values()), by_label
    for panel in {c.panel for c in curves}:
        keys = [(c.color_key, c.linestyle) for c in curves if c.panel == panel]
        assert len(keys) == len(set(keys)), (panel, keys)


def test_indep_styles_need_more_experts_than_cpu_seeds():
    plan = expand("fig3", "cpu", n_seeds=3, curves=["early_indep_concurrent"])
    experts = {j.seed for j in plan.jobs if isinstance(j, TrainJob) and j.algo == "ippo"}
    assert len(experts) == 5 and len(plan.seeds) == 3


def test_filters_select_one_panel():
    plan = expand("fig2", "cpu", maps=["3s_vs_3z"])
    assert {c.map for c in plan.curves} == {"3s_vs_3z"} and len(plan.curves) == 7
    assert all(j.map == "3s_vs_3z" for j in plan.jobs)
    plan = expand("fig2", "cpu", maps=["3s_vs_3z"], curves=["dm2_*"])
    assert {c.key for c in plan.curves} == {"dm2_ippo_early", "dm2_ippo_late", "dm2_qmix"}
    # fig3's left panel by glob
    assert {c.panel for c in expand("fig3", "cpu", curves=["early_*"]).curves} == {
        f"IPPO demo, {format_steps(demo_step('5m_vs_6m', 'cpu', 'early'))}"}
    with pytest.raises(ValueError, match="unknown map"):
        expand("fig2", "cpu", maps=["nowhere"])
    with pytest.raises(ValueError, match="unknown figure"):
        expand("fig9", "cpu")


def test_seeds_option_and_seed_list():
    assert seeds_for(5) == tuple(paper_tables()["seeds"])    # paper: the original seeds
    assert len(set(seeds_for(7))) == 7
    assert expand("fig8", "cpu").seeds == (1, 2, 3, 4, 5)
    assert len(expand("fig8", "cpu", n_seeds=4).learner_jobs) == 2 * 4


def test_demo_names_are_deterministic_and_distinct():
    names = [j.name for j in expand("fig3", "cpu").jobs if isinstance(j, DemoJob)]
    assert len(names) == len(set(names))
    assert names == [j.name for j in expand("fig3", "cpu").jobs if isinstance(j, DemoJob)]
    demo = next(j for j in expand("fig2", "paper").jobs if isinstance(j, DemoJob))
    assert demo.name == "5m_vs_6m_paper_smax_ippo_s112358_5M_co_concurrent"
    qmix = next(j for j in expand("fig2", "cpu", maps=["3s_vs_3z"]).jobs
                if isinstance(j, DemoJob) and j.source_algo == "qmix")
    assert qmix.name == "3s_vs_3z_cpu_smax_qmix_s1_final_co_concurrent_eps0.1"
    assert qmix.argv(["demos"], "results", ["results/runs/4"], 800)[-4:-2] == ["--epsilon", "0.1"]


def test_figure7_takes_its_demonstrations_from_experts_of_its_own():
    fig2_experts = {s for j in expand("fig2", "cpu", maps=["5m_vs_6m"]).jobs if isinstance(j, DemoJob)
                    for s in j.sources if s.algo == "ippo"}
    fig7_demos = [j for j in expand("fig7", "cpu").jobs if isinstance(j, DemoJob)]
    fig7_experts = {s for j in fig7_demos for s in j.sources}
    # the same configuration and seeds, a separate job: run (and matched to runs) apart from fig2's
    strip = lambda jobs: {(j.algo, j.map, j.seed, j.scale, j.backend, j.hp) for j in jobs}  # noqa: E731
    assert strip(fig7_experts) == strip(fig2_experts) and not fig7_experts & fig2_experts
    assert {e.tag for e in fig7_experts} == {"fig7"}
    assert all(e.key.endswith("/tag=fig7") and "tag=fig7" in e.argv(["train"], "results") for e in fig7_experts)
    expert = next(iter(fig7_experts))
    config = {"algo": "ippo", "map": expert.map, "seed": expert.seed, "scale": "cpu", "backend": "smax",
              "demo": "", "tag": "", "hp": {}}
    assert not expert.matches(config) and expert.matches({**config, "tag": "fig7"})
    assert all(d.name.startswith("5m_vs_6m_cpu_smax_ippo-fig7_s") for d in fig7_demos)
    assert len({d.name for d in fig7_demos}) == len(fig7_demos)


def test_train_command_and_config_matching():
    job = next(j for j in expand("fig5", "cpu").learner_jobs if j.algo == "bc_dm2")
    argv = job.argv(["python", "-m", "dm2_repro.train"], "results")
    assert argv[:4] == ["python", "-m", "dm2_repro.train", "with"]
    assert {"algo=bc_dm2", f"map={job.map}", f"seed={job.seed}", "scale=cpu", "backend=smax",
            "results=results", f"demo=demos/{job.demo.name}.npz"} <= set(argv)
    config = {"algo": "bc_dm2", "map": job.map, "seed": job.seed, "scale": "cpu",
              "backend": "smax", "demo": str(Path("/abs/elsewhere/demos") / f"{job.demo.name}.npz"),
              "tag": "", "hp": dict(job.hp), "gail_reward": job.gail_reward, "resume": "results/runs/3",
              "results_dir": "other"}
    assert job.matches(config)
    assert not job.matches({**config, "gail_reward": "logit"}) and not job.matches({**config, "hp": {}})
    assert not job.matches({**config, "seed": job.seed + 1})
    assert not job.matches({**config, "demo": ""})
    assert not job.matches({**config, "hp": {"lr": 0.1}})
    assert not job.matches({**config, "scale": "paper"})


def test_hp_overrides_reach_every_training_job_and_are_checked():
    from dm2_repro.sweeps.plan import TrainJob, expand, parse_hp

    hp = parse_hp(["n_envs=8", "lr=1e-3"])
    assert hp == (("lr", 0.001), ("n_envs", 8))
    plan = expand("fig2", "cpu", maps=["3s_vs_3z"], hp=hp)
    jobs = plan.learner_jobs
    experts = [s for j in jobs if isinstance(j, TrainJob) and j.demo for s in j.demo.sources]
    # every job gets the overrides; DM²-family jobs keep the paper's discriminator rate of the re-run beside them
    assert jobs and all(dict(j.hp).items() >= dict(hp).items() for j in jobs if isinstance(j, TrainJob))
    assert all(j.hp == hp for j in jobs if isinstance(j, TrainJob) and j.algo in ("ippo", "qmix", "rmappo"))
    assert experts and all(e.hp == hp for e in experts)
    assert all("hp.n_envs=8" in j.argv(["python"], "results") for j in jobs if isinstance(j, TrainJob))
    with pytest.raises(ValueError, match="unknown hp key"):
        parse_hp(["n_env=8"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_hp(["n_envs"])


def test_c_sensitivity_is_dm2_over_c_with_fig2s_late_demos():
    plan = expand("c_sensitivity", "cpu")
    assert plan.seeds == (1, 2, 3, 4, 5)
    dm2 = [c for c in plan.curves if c.key.startswith("dm2_")]
    assert [c.key for c in dm2] == ["dm2_c0.1", "dm2_c0.3", "dm2_c1", "dm2_c3"]
    assert {c.map for c in plan.curves} == {"3s_vs_3z"}
    assert len(plan.learner_jobs) == (4 + 1) * 5       # 4 c values x 5 seeds, and IPPO
    fig2 = expand("fig2", "cpu", maps=["3s_vs_3z"])
    late = next(c for c in fig2.curves if c.key == "dm2_ippo_late")
    ippo = next(c for c in fig2.curves if c.key == "ippo")
    default = make_hp("dm2", "3s_vs_3z", "cpu").gail_coef
    for curve, c in zip(dm2, (0.1, 0.3, 1.0, 3.0)):
        assert len(curve.jobs) == 5 and all(j.algo == "dm2" for j in curve.jobs)
        # fig2's demonstrations (and so its experts): nothing extra to collect
        assert curve.demos == late.demos
        for job in curve.jobs:
            assert make_hp(job.algo, job.map, job.scale, dict(job.hp)).gail_coef == c
            rate = ("gail_epochs", 2)   # the re-run's paper discriminator rate, on every DM² job
            if c == default:   # Table 2's c: no override of c, the very job of fig2's curve
                assert job.hp == (rate,)
            else:
                assert job.hp == (("gail_coef", c), rate)
                assert f"hp.gail_coef={c!r}" in job.argv(["train"], "results")
    assert dm2[1].jobs == late.jobs
    assert next(c for c in plan.curves if c.key == "ippo").jobs == ippo.jobs
    # Next to fig2 only the DM² runs of the three other c values are new.
    both = {j.key for j in fig2.jobs} | {j.key for j in plan.jobs}
    assert len(both) == len(fig2.jobs) + 3 * 5


def test_curve_hp_is_merged_with_the_context_hp():
    from dm2_repro.sweeps.plan import Context

    context = Context(scale="cpu", backend="smax", seeds=(1, 2), hp=(("lr", 0.001), ("n_envs", 8)))
    job = context.train("dm2", "3s_vs_3z", 1, hp={"gail_coef": 3.0, "n_envs": 4})
    assert job.hp == (("gail_coef", 3.0), ("lr", 0.001), ("n_envs", 4))   # the curve's win
    assert context.train("ippo", "3s_vs_3z", 1).hp == context.hp
    # a curve setting equal to the preset's is dropped, so the job equals the default one
    default = make_hp("dm2", "3s_vs_3z", "cpu").gail_coef
    assert context.train("dm2", "3s_vs_3z", 1, hp={"gail_coef": default}) == \
        context.train("dm2", "3s_vs_3z", 1)
    # ... unless the user overrode that key: then the curve's value must be written out
    user = Context(scale="cpu", backend="smax", seeds=(1,), hp=(("gail_coef", 1.0),))
    assert user.train("dm2", "3s_vs_3z", 1, hp={"gail_coef": default}).hp == (("gail_coef", default),)
    curve = context.curve("f", "p", "k", "l", "dm2", "3s_vs_3z", hp={"gail_coef": 1.0})
    assert all(dict(j.hp)["gail_coef"] == 1.0 for j in curve.jobs)
    with pytest.raises(ValueError, match="unknown hp key"):
        context.train("dm2", "3s_vs_3z", 1, hp={"gail_cof": 1.0})


def test_no_figure3_style_shares_a_random_stream_with_its_learners():
    """Issue 13.1: every learner of every demonstration style (co-trained or independent experts,
    concurrent or not) has init, rollout and sampling streams disjoint from those of every expert
    its demonstrations come from, so no style starts closer to its experts than another. (Test
    episodes depend on the seed alone: paired across algorithms on purpose.)"""
    from dm2_repro.train import stream_seed

    def streams(job):
        return {stream_seed(job.seed, job.algo, k) for k in ("init", "rollout", "sampling")}

    plan = expand("fig3", "cpu")
    styles = set()
    for curve in plan.curves:
        for job in curve.jobs:
            styles.add(job.demo.style)
            assert len(job.demo.sources) >= 1
            for expert in job.demo.sources:
                assert not streams(job) & streams(expert), (curve.key, job.seed, expert.seed)
    assert styles == {"co_concurrent", "co_nonconcurrent", "indep_concurrent", "indep_nonconcurrent"}
    # the independent styles really mix experts of several seeds
    indep = next(c for c in plan.curves if c.key.endswith("indep_concurrent"))
    assert len({e.seed for e in indep.jobs[0].demo.sources}) == 5   # one expert seed per agent of 5m_vs_6m


def test_the_rerun_gives_dm2_family_jobs_the_default_form_and_the_paper_discriminator_rate(monkeypatch):
    """The re-run of the paper figures: their DM²-family jobs learn from the default GAIL reward with the paper's
    discriminator steps per collected episode as an explicit override (2 per 16-episode update at cpu), so no
    committed `logit` run, nor a run of the preset's 40 steps, is taken for one; IPPO/QMIX jobs stay the same."""
    import dataclasses

    import dm2_repro.sweeps.plan as E
    from dm2_repro.algos import DEFAULT_GAIL_REWARD, LEGACY_GAIL_REWARD

    assert E.PAPER_FIGURES_GAIL_REWARD == DEFAULT_GAIL_REWARD and E.PAPER_FIGURES_PAPER_RATE
    rerun = expand("fig2", "cpu", maps=["5m_vs_6m"]).curves
    original = E.figure_def
    monkeypatch.setattr(E, "figure_def", lambda name: dataclasses.replace(   # the definitions before the re-run
        original(name), gail_reward=LEGACY_GAIL_REWARD, paper_rate=False))
    before = expand("fig2", "cpu", maps=["5m_vs_6m"]).curves
    monkeypatch.setattr(E, "figure_def", original)
    assert E.paper_rate_gail_epochs("cpu", "5m_vs_6m") == 2 and E.paper_rate_gail_epochs("paper", "5m_vs_6m") == 120
    for old, new in zip(before, rerun):
        if new.jobs[0].algo in ("dm2", "sil"):
            assert all(j.gail_reward == DEFAULT_GAIL_REWARD and dict(j.hp) == {"gail_epochs": 2} for j in new.jobs)
            assert old.jobs[0].gail_reward == "logit" and old.jobs[0].hp == ()
            logit_run = {"algo": old.jobs[0].algo, "map": "5m_vs_6m", "seed": old.jobs[0].seed, "scale": "cpu",
                         "backend": "smax", "tag": "", "hp": {},
                         "demo": old.jobs[0].demo.path("").as_posix() if old.jobs[0].demo else ""}
            assert old.jobs[0].matches(logit_run) and not new.jobs[0].matches(logit_run)
        else:
            assert old.jobs == new.jobs
    # departures' paper-rate arm is the re-run's DM² with the later demonstrations: the same jobs, run once
    rerun_late = next(c for c in rerun if c.key == "dm2_ippo_late")
    disc_rate = next(c for c in expand("departures", "cpu").curves if c.key == "dm2_disc_rate")
    assert rerun_late.jobs == disc_rate.jobs
    # the reward-form figure's logit arm keeps reading the committed Figure 6 runs
    logit_arm = next(c for c in expand("reward_forms", "cpu", maps=["5m_vs_6m"]).curves if c.key == "dm2_logit")
    assert all(j.gail_reward == LEGACY_GAIL_REWARD and j.hp == () for j in logit_arm.jobs)


def test_a_pinned_figure_runs_and_draws_at_its_own_preset_unless_one_is_named(tmp_path, capsys):
    from dm2_repro import figure, run
    from dm2_repro.sweeps.plan import DEFAULT_SCALE, run_scale

    assert figure_def("paper_hp_pilot").scale == "paper_hp" and figure_def("fig2").scale is None
    assert run_scale(["paper_hp_pilot"], None) == "paper_hp" and run_scale(["fig2"], None) == DEFAULT_SCALE
    assert run_scale(["fig2", "paper_hp_pilot"], "smoke") == "smoke"
    with pytest.raises(ValueError, match="paper_hp_pilot: paper_hp.*name one with --scale"):
        run_scale(["fig2", "paper_hp_pilot"], None)
    # every pilot job at the pinned preset, each map's budget an explicit override
    jobs = expand("paper_hp_pilot", "paper_hp").learner_jobs
    assert {(j.scale, j.map, dict(j.hp)["t_max"]) for j in jobs} == {("paper_hp", "3s_vs_3z", 4_000_000),
                                                                     ("paper_hp", "3s_vs_4z", 5_000_000)}
    # `run all` at the cpu preset leaves the pinned pilot out; naming it runs it at its own preset
    assert run.main(["all", "--dry-run", "--results", str(tmp_path)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "paper_hp_pilot" not in head and "budget_pilot" in head and "@ cpu" in head
    assert run.main(["paper_hp_pilot", "--dry-run", "--results", str(tmp_path)]) == 0
    assert "paper_hp_pilot @ paper_hp" in capsys.readouterr().out
    assert run.main(["fig2", "paper_hp_pilot", "--dry-run", "--results", str(tmp_path)]) == 2
    assert "name one with --scale" in capsys.readouterr().err
    # the figure CLI draws it at paper_hp (no runs: an empty figure, the missing runs named)
    assert figure.main(["paper_hp_pilot", "--results", str(tmp_path), "--out", str(tmp_path / "figs")]) == 0
    assert "python -m dm2_repro.run paper_hp_pilot --scale paper_hp" in capsys.readouterr().out
