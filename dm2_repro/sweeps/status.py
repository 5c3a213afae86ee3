"""What of a sweep is done, and the command that does the rest of a job.

A training job is done iff a COMPLETED Sacred run with its config exists; a demonstration job is done iff its .npz
and .json exist and the json's sha256 is the file's. An unfinished training run that recorded a checkpoint
(`info.checkpoint`) and whose process is gone (heartbeat older than --stale-after, or its pid, when recorded on
this host, is dead) is relaunched with `resume=<run dir>`; a run still alive elsewhere is waited for.
"""
from __future__ import annotations

import ast
import datetime as dt
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from dm2_repro.sweeps.plan import DemoJob, Job, TrainJob
from dm2_repro.training.snapshots import snapshot_steps
from dm2_repro.results.runs import SacredRun, completed_run, demo_metadata, runs_of

DONE, RUNNING, RESUMABLE, TODO = "done", "running elsewhere", "resumable", "todo"
PID_START_SLACK = 5.0                   # seconds: a process may be stamped a little after Sacred's start_time


@dataclass(frozen=True)
class Commands:
    """How to invoke the two CLIs (tests substitute stand-ins)."""
    train: tuple[str, ...] = (sys.executable, "-m", "dm2_repro.train")
    demos: tuple[str, ...] = (sys.executable, "-m", "dm2_repro.demos")


@dataclass(frozen=True)
class Status:
    state: str
    run: SacredRun | None = None   # the completed / live / resumable run
    note: str = ""                 # e.g. that the newest run says RUNNING but its process is dead


# ---------------------------------------------------------------------------------------------
# What is done
# ---------------------------------------------------------------------------------------------

def _pid_alive(pid: int, started: dt.datetime | None = None) -> bool:
    """Whether the process `pid` of this host still runs: not gone, not a zombie, and (when the run's
    start is known) not a newer process that reuses the pid, i.e. created after the run started."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True   # exists, owned by someone else
    if started is None:
        return True
    started_at = started.replace(tzinfo=dt.timezone.utc).timestamp()   # Sacred writes naive UTC
    return created <= started_at + PID_START_SLACK


def _run_start(run: SacredRun) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(run.run.get("start_time") or "")
    except (TypeError, ValueError):
        return None


def _local_pid_dead(run: SacredRun) -> int | None:
    """The run's recorded pid if it was recorded on this host and that process is gone, else None."""
    pid = run.info.get("pid")
    if pid and run.hostname == socket.gethostname() and not _pid_alive(int(pid), _run_start(run)):
        return int(pid)
    return None


def is_alive(run: SacredRun, now: dt.datetime, stale_after: float) -> bool:
    """Whether a RUNNING run's process still runs. Sacred beats every 10 s from a thread of its
    own, so a heartbeat older than `stale_after` means the process is gone (killed hard, or the
    machine went down) even though run.json still says RUNNING."""
    if run.problem:   # run.json unreadable: alive iff written recently (Sacred rewrites it every heartbeat)
        alive = run.last_alive
        return alive is not None and (now - alive).total_seconds() <= stale_after
    if run.status != "RUNNING" or run.last_alive is None:
        return False
    if (now - run.last_alive).total_seconds() > stale_after:
        return False
    return _local_pid_dead(run) is None


def dead_note(run: SacredRun, now: dt.datetime, stale_after: float) -> str:
    """Why a run that says RUNNING (or whose run.json cannot be read) is not alive; "" otherwise."""
    if run.problem:
        return f"run {run.path}: {run.problem}, not rewritten for over {stale_after:.0f} s: its process is dead"
    if run.status != "RUNNING" or is_alive(run, now, stale_after):
        return ""
    pid = _local_pid_dead(run)
    if pid is not None:
        return f"run {run.path} says RUNNING but its process (pid {pid}) is dead"
    age = (now - run.last_alive).total_seconds() if run.last_alive else float("inf")
    return f"run {run.path} says RUNNING but has had no heartbeat for {age:.0f} s: its process is dead"


def checkpoint_of(run: SacredRun) -> Path | None:
    """The run's last resumable checkpoint, if it is still on disk (the recorded path may be
    relative to the working directory or to the run directory)."""
    recorded = run.info.get("checkpoint")
    if not recorded:
        return None
    for candidate in (Path(recorded), run.path / recorded, run.path / "checkpoints" / Path(recorded).name):
        if candidate.exists():
            return candidate
    return None


def train_status(job: TrainJob, runs: list[SacredRun], now: dt.datetime,
                 stale_after: float) -> Status:
    mine = runs_of(job, runs)   # oldest first
    for state, wanted in ((DONE, lambda r: r.status == "COMPLETED"),
                          (RUNNING, lambda r: is_alive(r, now, stale_after)),
                          (RESUMABLE, lambda r: checkpoint_of(r) is not None)):
        found = [run for run in mine if wanted(run)]
        if found:
            # the newest: the one with the most progress
            return Status(state, found[-1], dead_note(found[-1], now, stale_after) if state == RESUMABLE else "")
    return Status(TODO, None, dead_note(mine[-1], now, stale_after) if mine else "")


def job_status(job: Job, runs: list[SacredRun], results_dir: Path, now: dt.datetime,
               stale_after: float) -> Status:
    if isinstance(job, DemoJob):
        return Status(DONE if demo_metadata(job, results_dir) else TODO)
    return train_status(job, runs, now, stale_after)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def demo_step(job: DemoJob, run_dir: Path) -> int:
    """The snapshot to sample: the last one for step=None, else the saved snapshot nearest to
    the nominal step (a snapshot is written at the first episode boundary past its step)."""
    saved = snapshot_steps(run_dir)
    if job.step is None:
        if not saved:
            raise RuntimeError(f"{run_dir} has no checkpoints/policy_*.pt to take the last of")
        return saved[-1]
    return min(saved, key=lambda s: abs(s - job.step)) if saved else job.step


def sacred_word(key: str, value) -> str:
    """KEY=VALUE as Sacred reads it back as `value`: a string that would read as another literal
    (a project named 123, True) is quoted."""
    if isinstance(value, str):
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return f"{key}={value}"
    return f"{key}={value!r}"


def pass_through_words(device: str | None = None, threads: int | None = None, tensorboard: bool = False,
                       wandb_project: str | None = None, mongo_url: str | None = None) -> tuple[str, ...]:
    """The Sacred words of `run`'s --device/--threads/--tensorboard/--wandb-project/--mongo-url that every
    training job gets (the one place that names train's keys for them). Unset options are left out, so
    train's own defaults apply. None of them is part of a job's identity (TrainJob.key / matches)."""
    values = dict(device=device, threads=threads, tensorboard=True if tensorboard else None,
                  wandb_project=wandb_project, mongo_url=mongo_url)
    return tuple(sacred_word(key, value) for key, value in values.items() if value not in (None, ""))


def command(job: Job, status: Status, runs: list[SacredRun], results_dir: Path,
            commands: Commands, train_extra: tuple[str, ...] = ()) -> list[str]:
    if isinstance(job, TrainJob):
        argv = job.argv(list(commands.train), results_dir, train_extra)
        if status.state == RESUMABLE:
            argv.append(f"resume={status.run.path}")
        return argv
    sources = [completed_run(source, runs) for source in job.sources]
    if any(run is None for run in sources):
        # Only in a dry run: the experts do not exist yet.
        run_dirs = [f"<run dir of {source.key}>" for source in job.sources]
        return job.argv(list(commands.demos), results_dir, run_dirs, job.step or 0)
    step = demo_step(job, sources[0].path)
    return job.argv(list(commands.demos), results_dir, [str(r.path) for r in sources], step)


def log_path(job: Job, results_dir: Path) -> Path:
    return results_dir / "logs" / (job.key.replace("/", "__") + ".log")
