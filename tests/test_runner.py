"""The sweep runner: done/resume/todo decisions on fixture run dirs, and execution of trivial
stand-in commands (tests/fixtures_runs.py plays dm2_repro.train and dm2_repro.demos)."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dm2_repro import run
from dm2_repro.results import load_runs
from experiments import DemoJob, expand
from tests.fixtures_runs import write_demo, write_job_run

FAKE = str(Path(__file__).with_name("fixtures_runs.py"))
FAKE_COMMANDS = run.Commands(train=(sys.executable, FAKE, "train"),
                             demos=(sys.executable, FAKE, "demos"))


def ago(seconds: float) -> str:
    return (dt.datetime.utcnow() - dt.timedelta(seconds=seconds)).isoformat()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def status_of(job, results):
    return run.job_status(job, load_runs(results), results, dt.datetime.utcnow(), 300)


@pytest.fixture
def job():
    return expand("fig8", "smoke").learner_jobs[0]


def test_completed_run_is_done(tmp_path, job):
    write_job_run(tmp_path, 1, job, status="INTERRUPTED")
    write_job_run(tmp_path, 2, job, status="COMPLETED")
    status = status_of(job, tmp_path)
    assert status.state == run.DONE and status.run.run_id == "2"


def test_other_config_is_not_done(tmp_path, job):
    other = expand("fig8", "cpu").learner_jobs[0]   # same algo/map/seed, other scale
    write_job_run(tmp_path, 1, other)
    assert status_of(job, tmp_path).state == run.TODO


def test_live_run_is_not_duplicated(tmp_path, job):
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(5),
                  info={"pid": os.getpid()}, hostname=socket.gethostname())
    assert status_of(job, tmp_path).state == run.RUNNING


def test_stale_or_dead_run_with_checkpoint_is_resumed(tmp_path, job):
    ckpt = tmp_path / "runs" / "1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    # RUNNING, but no heartbeat for 20 minutes: killed hard.
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(1200),
                  info={"checkpoint": str(ckpt)})
    status = status_of(job, tmp_path)
    assert status.state == run.RESUMABLE and status.run.run_id == "1"
    argv = run.command(job, status, load_runs(tmp_path), tmp_path, run.Commands())
    assert argv[-1] == f"resume={tmp_path / 'runs' / '1'}"
    # Fresh heartbeat, but its pid (recorded on this host) is gone: dead too.
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(1),
                  info={"checkpoint": str(ckpt), "pid": dead_pid()},
                  hostname=socket.gethostname())
    assert status_of(job, tmp_path).state == run.RESUMABLE


def test_newest_interrupted_run_is_resumed(tmp_path, job):
    for run_id, age in ((1, 3600), (2, 600)):
        ckpt = tmp_path / "runs" / str(run_id) / "checkpoints" / "last.pt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"")
        write_job_run(tmp_path, run_id, job, status="INTERRUPTED", heartbeat=ago(age),
                      info={"checkpoint": str(ckpt)})
    assert status_of(job, tmp_path).run.run_id == "2"


def test_unfinished_run_without_checkpoint_starts_over(tmp_path, job):
    write_job_run(tmp_path, 1, job, status="FAILED", info={"checkpoint": "/nowhere/last.pt"})
    assert status_of(job, tmp_path).state == run.TODO


def test_demo_done_only_with_json_and_matching_sha(tmp_path):
    demo = next(j for j in expand("fig5", "smoke").jobs if isinstance(j, DemoJob))
    assert status_of(demo, tmp_path).state == run.TODO
    write_demo(demo.path(tmp_path), corrupt=True)
    assert status_of(demo, tmp_path).state == run.TODO
    write_demo(demo.path(tmp_path))
    assert status_of(demo, tmp_path).state == run.DONE
    demo.path(tmp_path).with_suffix(".json").unlink()
    assert status_of(demo, tmp_path).state == run.TODO


def run_cli(args, results, commands=FAKE_COMMANDS):
    out = io.StringIO()
    code = run.main([*args, "--results", str(results), "--poll", "0.1"], commands, out)
    return code, out.getvalue()


def test_dry_run_prints_plan_and_runs_nothing(tmp_path):
    code, out = run_cli(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--dry-run"], tmp_path)
    assert code == 0
    assert "8 todo" in out and "collect --runs '<run dir of train/smoke" in out
    assert not (tmp_path / "runs").exists()


def test_runs_in_dependency_order_then_skips_everything(tmp_path):
    code, out = run_cli(["fig5", "fig8", "--scale", "smoke", "--maps", "5m_vs_6m", "--jobs", "2"],
                        tmp_path)
    assert code == 0, out
    runs = load_runs(tmp_path)
    assert len(runs) == 6 + 4 and all(r.status == "COMPLETED" for r in runs)
    demos = sorted((tmp_path / "demos").glob("*.npz"))
    assert len(demos) == 2
    # Each learner started after its demonstration existed, which started after its expert.
    for r in runs:
        if r.config["demo"]:
            demo = Path(r.config["demo"])
            assert demo.exists() and demo.stat().st_mtime <= (r.path / "run.json").stat().st_mtime
    code, out = run_cli(["fig5", "fig8", "--scale", "smoke", "--maps", "5m_vs_6m"], tmp_path)
    assert code == 0 and "$ " not in out and "12 done" in out
    assert len(load_runs(tmp_path)) == 10


def test_qmix_demo_uses_the_last_snapshot(tmp_path):
    code, out = run_cli(["fig2", "--scale", "smoke", "--maps", "3s_vs_3z", "--curves", "dm2_qmix",
                         "--seeds", "1"], tmp_path)
    assert code == 0, out
    meta = json.loads(next((tmp_path / "demos").glob("*qmix*_final_*.json")).read_text())
    assert meta["step"] == 800   # the fake trainer's last policy snapshot


def test_interrupted_run_is_resumed_not_restarted(tmp_path):
    job = expand("fig8", "smoke", n_seeds=1).learner_jobs[0]
    ckpt = tmp_path / "runs" / "1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    write_job_run(tmp_path, 1, job, status="INTERRUPTED", heartbeat=ago(60),
                  info={"checkpoint": str(ckpt)})
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--curves", "qmix"], tmp_path)
    assert code == 0, out
    assert f"resume {job.key}" in out
    new = [r for r in load_runs(tmp_path) if r.run_id != "1"]
    assert len(new) == 1 and new[0].config["resume"] == str(tmp_path / "runs" / "1")


def test_failure_blocks_dependents_and_exits_nonzero(tmp_path):
    failing = run.Commands(train=(sys.executable, "-c", "import sys; sys.exit(3)"),
                           demos=FAKE_COMMANDS.demos)
    code, out = run_cli(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--seeds", "1"],
                        tmp_path, failing)
    assert code == 1
    expert = expand("fig5", "smoke", n_seeds=1).jobs[0]
    assert f"FAILED {expert.key} (exit code 3)" in out
    assert "not run (a prerequisite failed): demo/" in out
    assert not (tmp_path / "demos").exists()


def test_ray_launcher_runs_the_same_commands(tmp_path):
    pytest.importorskip("ray")
    code, out = run_cli(["fig8", "--scale", "smoke", "--launcher", "ray", "--jobs", "2"], tmp_path)
    assert code == 0, out
    runs = load_runs(tmp_path)
    assert len(runs) == 4 and all(r.status == "COMPLETED" for r in runs)


def test_ray_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray -> ImportError
    with pytest.raises(SystemExit, match=r'pip install -e "\.\[ray\]"'):
        run.RayLauncher(None, 2)


def test_waits_for_a_run_elsewhere_and_takes_over_when_it_dies(tmp_path):
    job = expand("fig8", "smoke", n_seeds=1).learner_jobs[0]
    ckpt = tmp_path / "runs" / "1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    other_runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    # Reap it as soon as it ends (as its own parent would), so its pid is really gone.
    threading.Thread(target=other_runner.wait, daemon=True).start()
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(0),
                  info={"checkpoint": str(ckpt), "pid": other_runner.pid},
                  hostname=socket.gethostname())
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--curves", "qmix"], tmp_path)
    assert code == 0, out
    assert "1 running elsewhere" in out and f"resume {job.key}" in out
