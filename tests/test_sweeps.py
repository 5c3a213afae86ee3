"""Sweeps beyond one machine and the shared CLI vocabulary: the plan as JSON, options passed through
to every training job, the progress bar, Ray's default parallelism and GPUs, the SLURM route through
submitit's local executor, pid liveness, and --hp/--maps/--curves in figure and claims. The training
and demonstration commands are the stand-ins of tests/fixtures_runs.py."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import time

import pytest

from dm2_repro.sweeps import launchers, status as states
from dm2_repro.sweeps import runner as scheduler
from dm2_repro import claims, figure, run
from dm2_repro.sweeps.plan import DemoJob, TrainJob, expand
from dm2_repro.sweeps.plan import demo_step as plan_demo_step
from dm2_repro.results.runs import load_runs
from dm2_repro.validate import train_words
from tests.fixtures_runs import write_job_run
from tests.test_runner import FAKE_COMMANDS, run_cli

PASS_THROUGH = ["--device", "cpu", "--threads", "2", "--tensorboard", "--wandb-project", "123",
                "--mongo-url", "mongodb://localhost:27017/dm2"]


def plan_json(args, results):
    code, out = run_cli([*args, "--dry-run", "--json"], results)
    assert code == 0
    return json.loads(out)   # the whole of stdout is one document


def logged_commands(results) -> list[str]:
    return [line for log in sorted((results / "logs").glob("*.log")) for line in log.read_text().splitlines()
            if line.startswith("$ ")]


# ---------------------------------------------------------------------------------------------
# The plan as data
# ---------------------------------------------------------------------------------------------

def test_dry_run_json_is_the_plan_in_dependency_order(tmp_path):
    plan = plan_json(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--seeds", "1"], tmp_path)
    jobs = plan["jobs"]
    expected = expand("fig5", "smoke", n_seeds=1, maps=["5m_vs_6m"]).jobs
    assert [j["key"] for j in jobs] == [j.key for j in expected]
    assert plan["counts"]["todo"] == len(jobs) and not (tmp_path / "runs").exists()
    seen = set()
    for job in jobs:
        assert set(job["deps"]) <= seen, f"{job['key']} listed before its prerequisites"
        seen.add(job["key"])
    kinds = {j["key"]: j["kind"] for j in jobs}
    assert {k for k, kind in kinds.items() if kind == "demo"} == {j.key for j in expected if isinstance(j, DemoJob)}
    demo = next(j for j in jobs if j["kind"] == "demo")
    assert demo["argv"][demo["argv"].index("--runs") + 1].startswith("<run dir of train/")
    # a finished expert: done, with its run and no command
    expert = next(j for j in expected if isinstance(j, TrainJob) and not j.deps)
    write_job_run(tmp_path, 1, expert)
    by_key = {j["key"]: j for j in plan_json(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--seeds", "1"],
                                             tmp_path)["jobs"]}
    assert by_key[expert.key]["state"] == states.DONE and by_key[expert.key]["argv"] is None
    assert by_key[expert.key]["run"] == str(tmp_path / "runs" / "1")


# ---------------------------------------------------------------------------------------------
# Options passed through to training
# ---------------------------------------------------------------------------------------------

def test_pass_through_options_reach_every_training_job_but_not_its_identity(tmp_path):
    done, todo = expand("fig8", "smoke", n_seeds=1).learner_jobs
    write_job_run(tmp_path, 1, done)   # made without any of the options
    by_key = {j["key"]: j for j in plan_json(["fig8", "--scale", "smoke", "--seeds", "1", *PASS_THROUGH],
                                             tmp_path)["jobs"]}
    assert by_key[done.key]["state"] == states.DONE
    argv = by_key[todo.key]["argv"]
    words = argv[argv.index("with"):]
    # Sacred reads them back as given: the project name 123 stays a string
    assert {k: v for k, v in train_words(words).items()
            if k in ("device", "threads", "tensorboard", "wandb_project", "mongo_url")} == dict(
        device="cpu", threads=2, tensorboard=True, wandb_project="123", mongo_url="mongodb://localhost:27017/dm2")
    assert todo.key in by_key and todo.matches(dict(algo=todo.algo, map=todo.map, seed=todo.seed, scale="smoke",
                                                     backend="smax", tag="", demo="", hp={}, tensorboard=True))


def test_unset_options_leave_trains_defaults_and_gpus_mean_cuda():
    assert states.pass_through_words() == ()
    args = run.parse_args(["fig8", "--launcher", "ray", "--gpus-per-job", "0.5"])
    assert run.train_extra(args) == ("device=cuda",)
    args = run.parse_args(["fig8", "--launcher", "ray", "--gpus-per-job", "1", "--device", "cuda:1"])
    assert run.train_extra(args) == ("device=cuda:1",)


# ---------------------------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------------------------

def test_progress_bar_counts_jobs_with_an_eta_and_the_job_lines_stay(tmp_path):
    jobs = expand("fig8", "smoke").learner_jobs   # 4 jobs
    write_job_run(tmp_path, 1, jobs[0])
    out, bar = io.StringIO(), io.StringIO()
    runner = scheduler.Runner(jobs, tmp_path, FAKE_COMMANDS, max_parallel=2, poll_seconds=0.1, out=out,
                        progress=True, progress_stream=bar)
    assert runner.execute(launchers.LocalLauncher()) == 0
    frames = re.split(r"[\r\n]", bar.getvalue())
    assert any(re.search(r"\b1/4 \[", f) for f in frames)   # starts from the job already done
    last = [f for f in frames if "/4 [" in f][-1]
    assert re.search(r"\b4/4 \[\d\d:\d\d<\d\d:\d\d", last), last   # elapsed<remaining: the ETA
    assert "0 running" in last and "0 failed" in last
    assert any("2 running" in f for f in frames)
    assert out.getvalue().count("finished train/") == 3 and "4 done" in out.getvalue()
    assert len(logged_commands(tmp_path)) == 3   # each job's own log, headed by its command


def test_no_bar_where_stderr_is_not_a_terminal(tmp_path):
    bar = io.StringIO()   # not a tty
    runner = scheduler.Runner(expand("fig8", "smoke", n_seeds=1).learner_jobs, tmp_path, FAKE_COMMANDS, poll_seconds=0.1,
                        out=io.StringIO(), progress_stream=bar)
    assert runner.execute(launchers.LocalLauncher()) == 0 and bar.getvalue() == ""


# ---------------------------------------------------------------------------------------------
# Ray: the cluster's CPUs by default, GPUs per job
# ---------------------------------------------------------------------------------------------

def test_ray_runs_one_job_per_cluster_cpu_and_gives_gpus_to_training_jobs(tmp_path):
    ray = pytest.importorskip("ray")
    # a fake GPU resource: Ray schedules by it without needing a real one
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    try:
        code, out = run_cli(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--seeds", "1", "--launcher", "ray",
                             "--gpus-per-job", "0.5"], tmp_path)
    finally:
        ray.shutdown()
    assert code == 0, out
    assert "launcher ray: up to 2 job(s) at a time" in out
    runs = load_runs(tmp_path)
    assert runs and all(r.status == "COMPLETED" for r in runs)
    commands = logged_commands(tmp_path)
    train = [c for c in commands if " train with " in c]
    demos = [c for c in commands if " demos collect " in c]
    assert train and demos
    assert all("device=cuda" in c for c in train) and not any("device=" in c for c in demos)


# ---------------------------------------------------------------------------------------------
# SLURM through submitit
# ---------------------------------------------------------------------------------------------

def test_slurm_route_runs_the_plan_through_submitit(tmp_path):
    pytest.importorskip("submitit")
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--launcher", "slurm",
                         "--slurm-executor", "local", "--time", "5", "--cpus-per-job", "1", "--threads", "1"],
                        tmp_path)
    assert code == 0, out
    assert "launcher slurm: up to 2 job(s) at a time" in out   # every ready job is submitted
    runs = load_runs(tmp_path)
    assert len(runs) == 2 and all(r.status == "COMPLETED" for r in runs)
    assert all("threads=1" in c for c in logged_commands(tmp_path))
    assert list((tmp_path / "slurm").glob("*_submitted.pkl")), "submitit's own files go to RESULTS/slurm"
    # and the next call finds everything done
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--launcher", "slurm",
                         "--slurm-executor", "local"], tmp_path)
    assert code == 0 and "start " not in out and "2 done" in out


def test_slurm_job_failure_is_reported_with_its_exit_code(tmp_path):
    pytest.importorskip("submitit")
    failing = states.Commands(train=(sys.executable, "-c", "import sys; sys.exit(3)"), demos=FAKE_COMMANDS.demos)
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--curves", "qmix", "--launcher", "slurm",
                         "--slurm-executor", "local"], tmp_path, failing)
    assert code == 1 and "(exit code 3)" in out


def test_slurm_parameters():
    params = launchers.slurm_parameters(partition="gpu", minutes=90, cpus_per_job=4, gpus_per_job=1.0, mem_gb=16,
                                  extra={"account": "proj"})
    assert params == dict(name="dm2_repro", timeout_min=90, cpus_per_task=4, nodes=1, tasks_per_node=1,
                          mem_gb=16, slurm_partition="gpu", slurm_additional_parameters={"account": "proj"},
                          gpus_per_node=1)
    default = launchers.slurm_parameters()
    assert default["timeout_min"] == launchers.SLURM_MINUTES and "gpus_per_node" not in default
    assert "slurm_partition" not in default   # the cluster's default partition


# ---------------------------------------------------------------------------------------------
# pid liveness
# ---------------------------------------------------------------------------------------------

def test_pid_liveness():
    assert states._pid_alive(os.getpid())
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert not states._pid_alive(finished.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])   # exited, not reaped
    try:
        deadline = time.monotonic() + 30
        while states._pid_alive(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not states._pid_alive(zombie.pid)
    finally:
        zombie.wait()
    # a process that started after the run did is another one reusing the pid
    now = dt.datetime.utcnow()
    assert states._pid_alive(os.getpid(), started=now)
    assert not states._pid_alive(os.getpid(), started=now - dt.timedelta(days=365 * 30))


# ---------------------------------------------------------------------------------------------
# --hp / --maps / --curves in figure and claims
# ---------------------------------------------------------------------------------------------

HP = (("n_envs", 8),)
QMIX, QMIX_IPPO_ARCH = [0.90, 0.85, 0.95, 0.88, 0.92], [0.20, 0.25, 0.15, 0.22, 0.18]


@pytest.fixture
def hp_runs(tmp_path):
    """fig8's two curves on 5m_vs_6m, 5 seeds each, made with --hp n_envs=8."""
    plan = expand("fig8", "smoke", n_seeds=5, hp=HP)
    run_id = 1
    for key, finals in (("qmix", QMIX), ("qmix_ippo_arch", QMIX_IPPO_ARCH)):
        jobs = next(c for c in plan.curves if c.key == key).jobs
        for job, final in zip(jobs, finals):
            write_job_run(tmp_path, run_id, job, final=final, steps=(0, 400, 800, 1200, 1600))
            run_id += 1
    return tmp_path


def fig8_verdict(report: str) -> str:
    row = next(line for line in report.splitlines() if "QMIX" in line and "IPPO agent network" in line)
    return row.rsplit("**", 2)[-2]


def test_claims_finds_runs_made_with_hp(hp_runs, tmp_path, capsys):
    without, with_hp = tmp_path / "without.md", tmp_path / "with.md"
    assert claims.main(["--results", str(hp_runs), "--out", str(without), "--scale", "smoke", "--seeds", "5"]) == 0
    assert fig8_verdict(without.read_text()) == claims.NO_DATA
    assert claims.main(["--results", str(hp_runs), "--out", str(with_hp), "--seeds", "5",
                        "--hp", "n_envs=8"]) == 0   # scale auto
    report = with_hp.read_text()
    assert "(smoke scale)" in report and fig8_verdict(report) == claims.HOLDS
    assert "--scale smoke --hp n_envs=8`" in report


def test_claims_maps_and_curves_select_the_comparisons(hp_runs):
    curves = claims.load_curves(hp_runs, "smoke", n_seeds=5, hp=HP, maps=["5m_vs_6m"], curves=["qmix*"])
    outcomes = claims.evaluate_all(hp_runs, "smoke", n_seeds=5, curves=curves)
    assert [(o.comparison.map, o.comparison.a, o.comparison.b, o.verdict) for o in outcomes] == [
        ("5m_vs_6m", "qmix", "qmix_ippo_arch", claims.HOLDS)]


def test_figure_with_hp_maps_and_curves(hp_runs, tmp_path, capsys):
    out = tmp_path / "figures"
    assert figure.main(["fig8", "--results", str(hp_runs), "--out", str(out), "--hp", "n_envs=8", "--seeds", "5",
                        "--maps", "5m_vs_6m", "--curves", "qmix"]) == 0
    import pandas as pd

    table = pd.read_csv(out / "fig8.csv")
    assert set(table["curve"]) == {"QMIX"} and table["n_seeds"].max() == 5
    assert figure.main(["fig8", "--results", str(hp_runs), "--out", str(out), "--maps", "3s_vs_3z"]) == 0
    assert "fig8: no curves on these --maps / --curves; skipped" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# --help shows the defaults
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,expected", [
    (lambda: run.parse_args(["--help"]), ["--poll POLL", "(default: 10.0)", "(default: local)", "(default: results)"]),
    (lambda: figure.parse_args(["--help"]), ["(default: figures)", "(default: se)", "(default: results)"]),
    (lambda: claims.parse_args(["--help"]), ["(default: auto)", "(default: results)", "(default: smax)"]),
    (lambda: __import__("dm2_repro.demos", fromlist=["x"]).parse_args(["collect", "--help"]),
     ["(default: co_concurrent)", "(default: 128)", "(default: cpu)"]),
    (lambda: __import__("dm2_repro.bench", fromlist=["x"]).main(["--help"]), ["(default: 1 2)", "(default: 3)"]),
])
def test_help_shows_defaults(call, expected, capsys):
    with pytest.raises(SystemExit):
        call()
    text = " ".join(capsys.readouterr().out.split())
    missing = [e for e in expected if e not in text]
    assert not missing and "(default: None)" not in text and "--map MAP" not in text


def test_a_budget_override_moves_the_experts_snapshots_with_it():
    """`run --hp t_max=...`: demonstrations come from 50% / 70% of the budget the experts really train for, not
    of the preset's (a snapshot the shortened expert never saves would make the demonstration job fail)."""
    short = (("t_max", 200_000),)
    plan = expand("fig2", "paper_hp", n_seeds=1, maps=["3s_vs_3z"], curves=["dm2_ippo_early", "dm2_ippo_late"],
                  hp=short)
    demos = {c.key: c.jobs[0].demo for c in plan.curves}
    assert {k: d.step for k, d in demos.items()} == {"dm2_ippo_early": 100_000, "dm2_ippo_late": 140_000}
    assert all(dict(d.sources[0].hp)["t_max"] == 200_000 for d in demos.values())   # the experts train that long
    for budget in (300_000, 700_000, 900_000, 2_000_000, 268_888):   # the paper's 50% / 70% of any budget: the
        hp = (("t_max", budget),)                                    # experts save a snapshot every tenth of it
        tenth = budget // 10
        steps = tuple(plan_demo_step("3s_vs_3z", "paper_hp", level, hp) for level in ("early", "late"))
        assert steps == (5 * tenth, 7 * tenth), budget
    default = expand("fig2", "cpu", n_seeds=1, maps=["3s_vs_3z"], curves=["dm2_ippo_early", "dm2_ippo_late"])
    assert [c.jobs[0].demo.step for c in default.curves] == [15_000, 25_000]   # the cpu preset's 15% / 25%
    fig7 = claims.comparisons("cpu", (("t_max", 100_000),))   # Figure 7's keys follow the shorter grid
    assert any(c.figure == "fig7" and c.a == "dm2_ippo_100k" for c in fig7)


def test_a_budget_below_the_snapshot_interval_plans_curves_without_demonstrations_only(capsys):
    """`--hp t_max=3000` at cpu (snapshots every 5k): IPPO alone still plans; a curve with demonstrations is
    refused in one line naming the snapshot the shortened expert never saves; claims keep their comparisons."""
    assert run.main(["fig2", "--scale", "cpu", "--maps", "3s_vs_3z", "--curves", "ippo", "--seeds", "1",
                     "--hp", "t_max=3000", "--dry-run"]) == 0
    capsys.readouterr()
    assert run.main(["fig2", "--scale", "cpu", "--maps", "3s_vs_3z", "--curves", "dm2_ippo_early", "--seeds", "1",
                     "--hp", "t_max=3000", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "saves no snapshot at step 15000" in err and "t_max of at least 5000" in err and len(err.splitlines()) == 1
    assert claims.comparisons("cpu", (("t_max", 3000),)) == claims.comparisons("cpu")
