"""The scheduler of a sweep: jobs in dependency order, `max_parallel` at a time, each under a lock that two
runners on one results dir share (`RESULTS/locks/<hash of the job key>.lock`, fcntl), with a progress bar.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dm2_repro.results.runs import SacredRun, damaged_lines, load_runs
from dm2_repro.sweeps.plan import DemoJob, Job, TrainJob
from dm2_repro.sweeps.status import DONE, RESUMABLE, RUNNING, TODO, Commands, Status, command, job_status, log_path


# ---------------------------------------------------------------------------------------------
# Job locks
# ---------------------------------------------------------------------------------------------

class JobLocks:
    """One lock file per job, `RESULTS/locks/<sha1 of the job key>.lock`, locked with fcntl.flock
    while a runner runs the job. The job's process inherits the descriptor, so the lock lasts until
    both the runner and the job have ended (a runner killed hard leaves the lock with its job).
    Lock files are never deleted (that would race with a locker); they hold who locked them."""

    def __init__(self, results_dir: Path):
        self.dir = Path(results_dir) / "locks"
        self.held: dict[str, int] = {}   # job key -> our open, locked descriptor

    def path(self, key: str) -> Path:
        return self.dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock"

    def acquire(self, key: str) -> int | None:
        """Our descriptor of the job's lock, or None if another process holds it."""
        if key in self.held:
            return self.held[key]
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        owner = dict(key=key, pid=os.getpid(), host=socket.gethostname(), since=dt.datetime.utcnow().isoformat())
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        self.held[key] = fd
        return fd

    def release(self, key: str) -> None:
        fd = self.held.pop(key, None)
        if fd is not None:
            os.close(fd)   # the lock ends when the job's inherited copy closes too

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)

    def held_elsewhere(self, key: str) -> bool:
        """Whether another process (another runner, or a job it started) holds the job's lock."""
        if key in self.held:
            return False
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)   # closing drops the probe's lock
        return False


class Progress:
    """The plan's progress bar (tqdm, on stderr by default): jobs done of all, with the running and
    failed counts and an ETA from the rate of jobs finished so far. `enabled` None: only where its
    stream is a terminal (a log file gets the per-job lines only)."""

    def __init__(self, total: int, done: int, enabled: bool | None = None, stream=None):
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bar = tqdm(total=total, initial=done, unit="job", file=stream or sys.stderr, dynamic_ncols=True,
                        disable=None if enabled is None else not enabled)
        self.shown: tuple = ()
        self.shown_at = 0.0

    def show(self, done: int, running: int, elsewhere: int, failed: int) -> None:
        """Redrawn when a count changes, else at most every few seconds (the elapsed time and ETA)."""
        now = time.monotonic()
        if self.bar.disable or (self.shown == (done, running, elsewhere, failed) and now - self.shown_at < 5):
            return
        self.shown, self.shown_at = (done, running, elsewhere, failed), now
        self.bar.set_postfix_str(f"{running} running, {elsewhere} elsewhere, {failed} failed", refresh=False)
        self.bar.update(done - self.bar.n)   # negative if a done run vanished meanwhile
        self.bar.refresh()

    def write(self, text: str, stream) -> None:
        """A line to `stream` without tearing the bar."""
        with self.tqdm.external_write_mode(file=stream):
            print(text, file=stream, flush=True)

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------------

@dataclass
class Runner:
    jobs: list[Job]
    results_dir: Path
    commands: Commands = Commands()
    max_parallel: int = 1
    stale_after: float = 300.0
    poll_seconds: float = 10.0
    out: object = None   # a text stream; None: sys.stdout at the time of printing
    train_extra: tuple[str, ...] = ()   # Sacred words for every training job (pass_through_words)
    threads_per_job: int | None = None  # math-library threads of a job; None: its share of this machine
    progress: bool | None = None        # the progress bar: None where stderr is a terminal
    progress_stream: object = None      # where the bar goes; None: sys.stderr

    def __post_init__(self):
        self.results_dir = Path(self.results_dir)
        self.statuses: dict[Job, Status] = {}
        self.runs: list[SacredRun] = []
        self.locks = JobLocks(self.results_dir)
        self.bar: Progress | None = None
        # demo job -> the training jobs that read it
        self.learners_of = {job: [j for j in self.jobs if job in j.deps] for job in self.jobs if isinstance(job, DemoJob)}
        self.refresh()

    def say(self, text: str) -> None:
        stream = self.out or sys.stdout
        if self.bar is not None:
            self.bar.write(text, stream)
        else:
            print(text, file=stream, flush=True)

    def refresh(self) -> None:
        self.runs = load_runs(self.results_dir)
        now = dt.datetime.utcnow()
        self.statuses = {job: self.locked(job, job_status(job, self.runs, self.results_dir, now, self.stale_after))
                         for job in self.jobs}
        for job, learners in self.learners_of.items():   # an .npz not here (not committed) that no learner needs
            if (self.statuses[job].state == TODO and learners
                    and all(self.statuses[j].state == DONE for j in learners)):
                self.statuses[job] = Status(DONE, None, "not needed: every learner of it is done (the .npz is "
                                                        "remade, bit for bit, when one of them is rerun)")

    def locked(self, job: Job, status: Status) -> Status:
        """A job not done whose lock another runner holds is running elsewhere."""
        if status.state in (DONE, RUNNING) or not self.locks.held_elsewhere(job.key):
            return status
        return Status(RUNNING, status.run, f"another runner holds its lock {self.locks.path(job.key)}")

    def say_damaged(self) -> None:
        for line in damaged_lines(self.runs):
            self.say(line)

    def counts(self, running: set, failed: set) -> str:
        states = [self.statuses[j].state for j in self.jobs if j.key not in running | failed]
        return (f"{states.count(DONE)} done | {len(running)} running | "
                f"{states.count(RUNNING)} running elsewhere | "
                f"{states.count(TODO) + states.count(RESUMABLE)} todo | {len(failed)} failed")

    def planned_command(self, job: Job) -> list[str] | None:
        """What would run the job now; None for a job done or running elsewhere."""
        status = self.statuses[job]
        if status.state not in (TODO, RESUMABLE):
            return None
        return command(job, status, self.runs, self.results_dir, self.commands, self.train_extra)

    def plan_data(self) -> dict:
        """The plan as data (`--dry-run --json`): every job in dependency order with its state, the
        command that would run it (null when done or running elsewhere) and the keys it needs."""
        states = [self.statuses[job].state for job in self.jobs]
        jobs = []
        for job in self.jobs:
            status = self.statuses[job]
            jobs.append(dict(key=job.key, kind="train" if isinstance(job, TrainJob) else "demo",
                             state=status.state, argv=self.planned_command(job),
                             deps=[dep.key for dep in job.deps],
                             run=str(status.run.path) if status.run else None, note=status.note or None))
        return dict(results=str(self.results_dir),
                    counts={state: states.count(state) for state in (DONE, RUNNING, RESUMABLE, TODO)},
                    damaged=[dict(path=str(path), problem=reason)
                             for path, reason in getattr(self.runs, "damaged", [])],
                    jobs=jobs)

    def dry_run(self, as_json: bool = False) -> int:
        if as_json:
            self.say(json.dumps(self.plan_data(), indent=1))
            return 0
        self.say(f"plan: {len(self.jobs)} jobs | {self.counts(set(), set())}")
        self.say_damaged()
        for job in self.jobs:
            status = self.statuses[job]
            where = f" (run {status.run.path})" if status.run else ""
            self.say(f"  {status.state:<17} {job.key}{where}")
            if status.note:
                self.say(f"      note: {status.note}")
            argv = self.planned_command(job)
            if argv is not None:
                self.say(f"      $ {shlex.join(argv)}")
        return 0

    def thread_env(self) -> dict[str, str]:
        """Math-library threads of each job, unless the user chose a number: the job's own (a Ray or
        SLURM job's CPUs), else its share of this machine's cores among the parallel runs."""
        share = str(self.threads_per_job or max(1, (os.cpu_count() or 1) // self.max_parallel))
        return {var: os.environ.get(var, share) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def show_progress(self, running: set, failed: set) -> None:
        if self.bar is None:
            return
        states = [self.statuses[j].state for j in self.jobs if j.key not in running | failed]
        self.bar.show(states.count(DONE), len(running), states.count(RUNNING), len(failed))

    def execute(self, launcher) -> int:
        """Run every job not done; returns 0 iff all are done at the end."""
        running: dict[str, float] = {}   # key -> start time
        failed: set[str] = set()
        by_key = {job.key: job for job in self.jobs}
        self.say(f"plan: {len(self.jobs)} jobs | {self.counts(set(), failed)}")
        self.say_damaged()
        done = sum(self.statuses[j].state == DONE for j in self.jobs)
        self.bar = Progress(len(self.jobs), done, self.progress, self.progress_stream)
        try:
            while True:
                self.launch_ready(launcher, running, failed)
                self.show_progress(set(running), failed)
                if running:
                    # A run may look done (Sacred wrote COMPLETED) before its process exits:
                    # always wait for our own processes to end.
                    finished = launcher.wait(self.poll_seconds)
                elif any(self.statuses[j].state == RUNNING for j in self.jobs):
                    time.sleep(self.poll_seconds)   # only runs of another runner to wait for
                    finished = []
                else:
                    break   # everything is done, failed, or blocked by a failure
                self.refresh()
                for key, _ in finished:
                    self.locks.release(key)
                for key, returncode in finished:
                    elapsed = time.monotonic() - running.pop(key)
                    job = by_key[key]
                    if returncode == 0 and self.statuses[job].state == DONE:
                        self.say(f"finished {key} in {elapsed / 60:.1f} min")
                    else:
                        failed.add(key)
                        self.say(f"FAILED {key} (exit code {returncode}); log: "
                                 f"{log_path(job, self.results_dir)}")
                if finished:
                    self.say(f"progress: {self.counts(set(running), failed)}")
                self.show_progress(set(running), failed)
        finally:
            if running:
                self.say(f"stopping {len(running)} running job(s) (SIGINT: they record INTERRUPTED and resume "
                         "on the next call)")
            launcher.stop()
            self.locks.release_all()
            self.bar.close()
            self.bar = None
        for job in self.jobs:
            if job.key not in failed and self.blocked(job, failed):
                self.say(f"not run (a prerequisite failed): {job.key}")
        self.say(f"end: {self.counts(set(), failed)}")
        return 0 if all(self.statuses[j].state == DONE for j in self.jobs) else 1

    def blocked(self, job: Job, failed: set[str]) -> bool:
        return any(dep.key in failed or self.blocked(dep, failed) for dep in job.deps)

    def launch_ready(self, launcher, running: dict[str, float], failed: set[str]) -> None:
        for job in self.jobs:
            if len(running) >= self.max_parallel:
                return
            status = self.statuses[job]
            if job.key in running or job.key in failed or status.state in (DONE, RUNNING):
                continue
            if not all(self.statuses[dep].state == DONE for dep in job.deps):
                continue
            lock = self.locks.acquire(job.key)
            if lock is None:   # another runner took it since the last refresh
                self.statuses[job] = Status(RUNNING, status.run, "another runner holds its lock")
                self.say(f"skip {job.key}: another runner is running it")
                continue
            # the state again, under the lock: another runner may have finished it meanwhile
            runs = load_runs(self.results_dir)
            status = job_status(job, runs, self.results_dir, dt.datetime.utcnow(), self.stale_after)
            self.statuses[job] = status
            if status.state in (DONE, RUNNING):
                self.locks.release(job.key)
                continue
            try:
                argv = command(job, status, runs, self.results_dir, self.commands, self.train_extra)
            except RuntimeError as error:
                self.locks.release(job.key)
                failed.add(job.key)
                self.say(f"FAILED {job.key}: {error}")
                continue
            verb = "resume" if status.state == RESUMABLE else "start"
            self.say(f"{verb} {job.key}\n      $ {shlex.join(argv)}")
            launcher.start(job.key, argv, log_path(job, self.results_dir), self.thread_env(), (lock,),
                           gpu=isinstance(job, TrainJob))
            running[job.key] = time.monotonic()
