"""The sweep runner: done/resume/todo decisions on fixture run dirs, and execution of trivial
stand-in commands (tests/fixtures_runs.py plays dm2_repro.train and dm2_repro.demos)."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dm2_repro.sweeps import launchers, status as states
from dm2_repro.sweeps import runner as scheduler
from dm2_repro import run
from dm2_repro.results.runs import load_runs
from dm2_repro.sweeps.plan import DemoJob, expand
from tests.fixtures_runs import write_demo, write_job_run

FAKE = str(Path(__file__).with_name("fixtures_runs.py"))
FAKE_COMMANDS = states.Commands(train=(sys.executable, FAKE, "train"),
                             demos=(sys.executable, FAKE, "demos"))


def ago(seconds: float) -> str:
    return (dt.datetime.utcnow() - dt.timedelta(seconds=seconds)).isoformat()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def status_of(job, results):
    return states.job_status(job, load_runs(results), results, dt.datetime.utcnow(), 300)


@pytest.fixture
def job():
    return expand("fig8", "smoke").learner_jobs[0]


def test_completed_run_is_done(tmp_path, job):
    write_job_run(tmp_path, 1, job, status="INTERRUPTED")
    write_job_run(tmp_path, 2, job, status="COMPLETED")
    status = status_of(job, tmp_path)
    assert status.state == states.DONE and status.run.run_id == "2"


def test_other_config_is_not_done(tmp_path, job):
    other = expand("fig8", "cpu").learner_jobs[0]   # same algo/map/seed, other scale
    write_job_run(tmp_path, 1, other)
    assert status_of(job, tmp_path).state == states.TODO


def test_live_run_is_not_duplicated(tmp_path, job):
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(5),
                  info={"pid": os.getpid()}, hostname=socket.gethostname())
    assert status_of(job, tmp_path).state == states.RUNNING


def test_stale_or_dead_run_with_checkpoint_is_resumed(tmp_path, job):
    ckpt = tmp_path / "runs" / "1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    # RUNNING, but no heartbeat for 20 minutes: killed hard.
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(1200),
                  info={"checkpoint": str(ckpt)})
    status = status_of(job, tmp_path)
    assert status.state == states.RESUMABLE and status.run.run_id == "1"
    argv = states.command(job, status, load_runs(tmp_path), tmp_path, states.Commands())
    assert argv[-1] == f"resume={tmp_path / 'runs' / '1'}"
    # Fresh heartbeat, but its pid (recorded on this host) is gone: dead too.
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(1),
                  info={"checkpoint": str(ckpt), "pid": dead_pid()},
                  hostname=socket.gethostname())
    assert status_of(job, tmp_path).state == states.RESUMABLE


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
    assert status_of(job, tmp_path).state == states.TODO


def test_demo_done_only_with_json_and_matching_sha(tmp_path):
    demo = next(j for j in expand("fig5", "smoke").jobs if isinstance(j, DemoJob))
    assert status_of(demo, tmp_path).state == states.TODO
    write_demo(demo.path(tmp_path), corrupt=True)
    assert status_of(demo, tmp_path).state == states.TODO
    write_demo(demo.path(tmp_path))
    assert status_of(demo, tmp_path).state == states.DONE
    demo.path(tmp_path).with_suffix(".json").unlink()
    assert status_of(demo, tmp_path).state == states.TODO


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
            assert not Path(r.config["demo"]).is_absolute()   # recorded relative to the results dir
            demo = tmp_path / r.config["demo"]
            assert demo.exists() and demo.stat().st_mtime <= (r.path / "run.json").stat().st_mtime
    code, out = run_cli(["fig5", "fig8", "--scale", "smoke", "--maps", "5m_vs_6m"], tmp_path)
    assert code == 0 and "$ " not in out and "12 done" in out
    assert len(load_runs(tmp_path)) == 10


def test_a_demonstration_no_learner_needs_is_not_remade(tmp_path):
    """A clone holds the demonstrations' json but not their .npz (not committed): the runner remakes
    one only when a learner of it has to run."""
    args = ["fig5", "--scale", "smoke", "--maps", "5m_vs_6m"]
    assert run_cli([*args, "--jobs", "2"], tmp_path)[0] == 0
    for npz in (tmp_path / "demos").glob("*.npz"):
        npz.unlink()
    code, out = run_cli([*args, "--dry-run"], tmp_path)
    assert code == 0 and "8 done" in out and "0 todo" in out
    learner = next(r for r in load_runs(tmp_path) if r.config["demo"])
    shutil.rmtree(learner.path)
    code, out = run_cli([*args, "--dry-run"], tmp_path)
    assert "6 done" in out and "2 todo" in out and "demos collect" in out   # the demo, then its learner


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
    failing = states.Commands(train=(sys.executable, "-c", "import sys; sys.exit(3)"),
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
        launchers.RayLauncher(None, 2)


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


# ---------------------------------------------------------------------------------------------
# Locks, stopping, dead and damaged runs
# ---------------------------------------------------------------------------------------------

HOLD_LOCK = ("import fcntl, os, sys, time\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\n"
             "print('locked', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n")


def hold_lock(results, job, seconds):
    """Another runner (a process) holding the job's lock for `seconds`."""
    path = scheduler.JobLocks(results).path(job.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_job_locked_by_another_runner_is_waited_for_not_duplicated(tmp_path):
    job = expand("fig8", "smoke", n_seeds=1).learner_jobs[0]
    holder = hold_lock(tmp_path, job, 1.0)
    code, out = run_cli(["fig8", "--scale", "smoke", "--seeds", "1", "--curves", "qmix"], tmp_path)
    holder.wait()
    assert code == 0, out
    assert "1 running elsewhere" in out and f"start {job.key}" in out
    assert len(load_runs(tmp_path)) == 1


def test_locked_demo_job_shows_as_running_elsewhere(tmp_path):
    demo = next(j for j in expand("fig5", "smoke", maps=["5m_vs_6m"]).jobs if isinstance(j, DemoJob))
    holder = hold_lock(tmp_path, demo, 30)
    try:
        code, out = run_cli(["fig5", "--scale", "smoke", "--maps", "5m_vs_6m", "--dry-run"], tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert code == 0
    assert f"running elsewhere {demo.key}" in " ".join(out.split()) and "another runner holds its lock" in out


def test_stop_interrupts_children_with_sigint(tmp_path):
    marker = tmp_path / "marker"
    ready = tmp_path / "ready"
    child = ("import sys, time\nopen(sys.argv[2], 'w').close()\ntry:\n    time.sleep(60)\n"
             "except KeyboardInterrupt:\n    open(sys.argv[1], 'w').write('INTERRUPTED')\n")
    launcher = launchers.LocalLauncher(grace_seconds=20)
    launcher.start("job", [sys.executable, "-c", child, str(marker), str(ready)], tmp_path / "job.log", {})
    deadline = dt.datetime.now() + dt.timedelta(seconds=20)
    while not ready.exists() and dt.datetime.now() < deadline:
        pass
    launcher.stop()
    assert marker.read_text() == "INTERRUPTED"


def test_sigterm_stops_the_runner_and_interrupts_its_jobs(tmp_path):
    marker = tmp_path / "interrupted"
    ready = tmp_path / "ready"
    slow_train = (f"import pathlib, sys, time\npathlib.Path({str(ready)!r}).touch()\n"
                  "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
                  f"    pathlib.Path({str(marker)!r}).write_text('INTERRUPTED')\n    sys.exit(1)\n")
    script = ("import sys\nfrom dm2_repro import run\nfrom dm2_repro.sweeps import status as states\n"
              f"commands = states.Commands(train=(sys.executable, '-c', {slow_train!r}), demos=())\n"
              f"sys.exit(run.main(['fig8', '--scale', 'smoke', '--seeds', '1', '--curves', 'qmix', '--results', "
              f"{str(tmp_path)!r}, '--poll', '0.1'], commands))\n")
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
    for line in runner.stdout:
        if line.startswith("start "):
            break
    import signal
    import time

    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:   # the job's process is up
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    out = runner.communicate(timeout=60)[0]
    assert runner.returncode == 130, out
    assert marker.read_text() == "INTERRUPTED" and "stopping 1 running job(s)" in out


def test_plan_shows_dead_running_runs_and_damaged_runs(tmp_path, job):
    ckpt = tmp_path / "runs" / "1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    pid = dead_pid()
    write_job_run(tmp_path, 1, job, status="RUNNING", heartbeat=ago(1),
                  info={"checkpoint": str(ckpt), "pid": pid}, hostname=socket.gethostname())
    # a run killed while Sacred rewrote its run.json: still resumed from its checkpoint (info.json)
    other = expand("fig8", "smoke").learner_jobs[1]
    ckpt2 = tmp_path / "runs" / "2" / "checkpoints" / "last.pt"
    ckpt2.parent.mkdir(parents=True)
    ckpt2.write_bytes(b"")
    path = write_job_run(tmp_path, 2, other, status="RUNNING")
    (path / "info.json").write_text(json.dumps({"checkpoint": str(ckpt2)}))
    (path / "run.json").write_text('{"status": "RUNN')
    os.utime(path / "run.json", (0, 0))   # last written long ago
    code, out = run_cli(["fig8", "--scale", "smoke", "--dry-run"], tmp_path)
    assert code == 0
    assert f"says RUNNING but its process (pid {pid}) is dead" in out
    assert "damaged runs (1;" in out and f"{path}: run.json cannot be read" in out
    assert f"resumable         {other.key} (run {path})" in out


def test_a_runner_killed_mid_plan_is_finished_by_the_next_without_duplicates(tmp_path):
    """kill -9 of a runner while its jobs run: its jobs keep their locks until they end, so the next
    runner waits for them instead of starting them again, then finishes the plan."""
    import signal

    up = tmp_path / "up"
    up.mkdir()
    slow = (sys.executable, "-c",
            f"import os, pathlib, runpy, sys, time\npathlib.Path({str(up)!r}, str(os.getpid())).touch()\n"
            "time.sleep(1.5)\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n",
            FAKE, "train")
    commands = states.Commands(train=slow, demos=FAKE_COMMANDS.demos)
    args = ["fig8", "--scale", "smoke", "--jobs", "2"]
    script = ("import sys\nfrom dm2_repro import run\nfrom dm2_repro.sweeps import status as states\n"
              f"sys.exit(run.main({args + ['--results', str(tmp_path), '--poll', '0.1']!r}, "
              f"states.Commands(train={slow!r}, demos=())))\n")
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    started = []
    for line in first.stdout:
        if line.startswith("start "):
            started.append(line.split()[1])
        if len(started) == 2:
            break
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while len(list(up.iterdir())) < 2 and dt.datetime.now() < deadline:
        pass   # both jobs' processes are up
    first.send_signal(signal.SIGKILL)
    first.wait()
    code, out = run_cli(args, tmp_path, commands)
    assert code == 0, out
    assert "2 running elsewhere" in out, out
    runs = load_runs(tmp_path)
    jobs = expand("fig8", "smoke").learner_jobs
    assert sorted(len([r for r in runs if j.matches(r.config)]) for j in jobs) == [1, 1, 1, 1]
    assert all(r.status == "COMPLETED" for r in runs)


def test_a_sweep_is_a_sacred_run_of_its_own(tmp_path):
    """`run` records the sweep in RESULTS/sweeps: the plan as config, every job with the run it resolved to
    (relative to RESULTS) as info; a second call is a second sweep; a dry run records nothing; figures and
    claims read RESULTS/runs only (the sweep is no training run)."""
    code, _ = run_cli(["fig8", "--scale", "smoke", "--maps", "5m_vs_6m"], tmp_path)
    assert code == 0
    sweep = tmp_path / "sweeps" / "1"
    config = json.loads((sweep / "config.json").read_text())
    assert config["figures"] == ["fig8"] and config["scale"] == "smoke" and config["maps"] == ["5m_vs_6m"]
    assert json.loads((sweep / "run.json").read_text())["status"] == "COMPLETED"
    info = json.loads((sweep / "info.json").read_text())
    jobs = info["jobs"]
    assert len(jobs) == len(expand("fig8", "smoke", maps=["5m_vs_6m"]).jobs) and all(j["state"] == "done" for j in jobs)
    assert {j["run"] for j in jobs} == {f"runs/{r.path.name}" for r in load_runs(tmp_path)}
    assert "git" in info
    run_cli(["fig8", "--scale", "smoke", "--maps", "5m_vs_6m"], tmp_path)   # all done: still a sweep of its own
    run_cli(["fig8", "--scale", "smoke", "--maps", "5m_vs_6m", "--dry-run"], tmp_path)
    assert sorted(p.name for p in (tmp_path / "sweeps").iterdir() if p.name.isdigit()) == ["1", "2"]
    assert len(load_runs(tmp_path)) == len(jobs)
