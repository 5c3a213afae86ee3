"""Run a figure's experiments: plan the job graph, skip what is done, resume what was cut off.

    python -m dm2_repro.run fig2 --scale cpu --jobs 2
    python -m dm2_repro.run fig2 --scale cpu --maps 3s_vs_3z --dry-run
    python -m dm2_repro.run all --scale smoke --launcher ray --jobs 4

A training job is done iff a COMPLETED Sacred run with its config exists; a demonstration job is
done iff its .npz and .json exist and the json's sha256 is the file's. An unfinished training run
that recorded a checkpoint (`info.checkpoint`) and whose process is gone (heartbeat older than
--stale-after, or its pid, when recorded on this host, is dead) is relaunched with
`resume=<run dir>`. A run still alive elsewhere (e.g. another runner) is waited for, not
duplicated. Everything else runs in dependency order (experts -> demonstrations -> learners),
`--jobs` subprocesses at a time, locally or as Ray tasks.

Two runners on one results dir never run the same job twice: a runner holds a lock per job
(fcntl, `RESULTS/locks/<hash of the job key>.lock`, shared with the job's process) while it runs
it, and a job whose lock another runner holds counts as running elsewhere (demonstration jobs
included). Stopping a runner (Ctrl-C or SIGTERM) stops its jobs with SIGINT, which Sacred records
as INTERRUPTED (they resume on the next call). The plan shows a RUNNING run whose process is dead
as such, and lists the run dirs whose files cannot be read ("damaged runs").
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments import BACKENDS, FIGURES, SCALES, DemoJob, Job, TrainJob, dependency_order, expand
from dm2_repro.results import SacredRun, completed_run, damaged_lines, demo_metadata, load_runs, runs_of
from dm2_repro.validate import InputError, Parser, at_least, check_hp_pairs, not_a_file

DONE, RUNNING, RESUMABLE, TODO = "done", "running elsewhere", "resumable", "todo"


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

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True   # exists, owned by someone else
    return True


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
    pid = run.info.get("pid")
    if pid and run.hostname == socket.gethostname():
        return _pid_alive(int(pid))
    return True


def dead_note(run: SacredRun, now: dt.datetime, stale_after: float) -> str:
    """Why a run that says RUNNING (or whose run.json cannot be read) is not alive; "" otherwise."""
    if run.problem:
        return f"run {run.path}: {run.problem}, not rewritten for over {stale_after:.0f} s: its process is dead"
    if run.status != "RUNNING" or is_alive(run, now, stale_after):
        return ""
    pid = run.info.get("pid")
    if pid and run.hostname == socket.gethostname() and not _pid_alive(int(pid)):
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

def snapshot_steps(run_dir: Path) -> list[int]:
    """Env steps of the policy snapshots `checkpoints/policy_<envstep>.pt` of a run."""
    steps = []
    for path in (run_dir / "checkpoints").glob("policy_*.pt"):
        suffix = path.stem.split("_", 1)[1]
        if suffix.isdigit():
            steps.append(int(suffix))
    return sorted(steps)


def demo_step(job: DemoJob, run_dir: Path) -> int:
    """The snapshot to sample: the last one for step=None, else the saved snapshot nearest to
    the nominal step (a snapshot is written at the first episode boundary past its step)."""
    saved = snapshot_steps(run_dir)
    if job.step is None:
        if not saved:
            raise RuntimeError(f"{run_dir} has no checkpoints/policy_*.pt to take the last of")
        return saved[-1]
    return min(saved, key=lambda s: abs(s - job.step)) if saved else job.step


def command(job: Job, status: Status, runs: list[SacredRun], results_dir: Path,
            commands: Commands) -> list[str]:
    if isinstance(job, TrainJob):
        argv = job.argv(list(commands.train), results_dir)
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


# ---------------------------------------------------------------------------------------------
# Launchers
# ---------------------------------------------------------------------------------------------

def open_log(log_file: str | Path, argv: list[str]):
    """The job's log, appended to (a resumed job keeps its earlier output), headed by the command."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    log = open(log_file, "a")
    log.write(f"$ {shlex.join(argv)}\n")
    log.flush()
    return log


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_command(argv: list[str], log_file: str, env_overrides: dict[str, str], cwd: str) -> int:
    """Run one command to completion, output to its log file (the body of a Ray task). Cancelled
    (KeyboardInterrupt), it stops the command with SIGINT, as the local launcher does."""
    with open_log(log_file, argv) as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, **env_overrides}, preexec_fn=_default_sigint)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise


class LocalLauncher:
    """Subprocesses on this machine."""

    def __init__(self, grace_seconds: float = 60.0):
        self.processes: dict[str, tuple[subprocess.Popen, object]] = {}
        self.grace_seconds = grace_seconds   # how long stopped jobs get to record INTERRUPTED

    def start(self, key: str, argv: list[str], log_file: Path, env: dict[str, str],
              keep_fds: tuple[int, ...] = ()) -> None:
        log = open_log(log_file, argv)
        # its own session: a Ctrl-C in the terminal reaches the runner only, which forwards one SIGINT;
        # SIGINT at its default even where the runner was started with it ignored (`cmd &` in a script)
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, pass_fds=keep_fds, start_new_session=True,
                                   preexec_fn=_default_sigint)
        self.processes[key] = (process, log)

    def wait(self, timeout: float) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while True:
            finished = [(key, p.returncode) for key, (p, _) in self.processes.items()
                        if p.poll() is not None]
            if finished or time.monotonic() >= deadline:
                for key, _ in finished:
                    self.processes.pop(key)[1].close()
                return finished
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        """Only our own children, by pid: SIGINT, which Sacred records as INTERRUPTED (SIGTERM
        would leave their runs RUNNING); SIGKILL for any still there after the grace period."""
        for process, _ in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        for process, log in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        self.processes.clear()


class RayLauncher:
    """The same commands as Ray tasks (one CPU each), on a cluster or a local Ray instance.

    On a cluster every node must see the repository and the results directory at the same
    path (a shared file system): tasks run the commands in this process's working directory.
    """

    def __init__(self, address: str | None, num_cpus: int):
        try:
            import ray
        except ImportError:
            raise SystemExit('--launcher ray needs Ray: pip install -e ".[ray]"') from None
        self.ray = ray
        self.owns_instance = not ray.is_initialized()
        if self.owns_instance:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False)
        self.task = ray.remote(num_cpus=1)(run_command)
        self.pending: dict[object, str] = {}

    def start(self, key: str, argv: list[str], log_file: Path, env: dict[str, str],
              keep_fds: tuple[int, ...] = ()) -> None:
        ref = self.task.remote(argv, str(log_file.resolve()), env, os.getcwd())   # the lock stays with us
        self.pending[ref] = key

    def wait(self, timeout: float) -> list[tuple[str, int]]:
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        return [(self.pending.pop(ref), self.ray.get(ref)) for ref in ready]

    def stop(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=False)   # KeyboardInterrupt in the task: its command gets SIGINT
        self.pending.clear()
        if self.owns_instance:
            self.ray.shutdown()


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

    def __post_init__(self):
        self.results_dir = Path(self.results_dir)
        self.statuses: dict[Job, Status] = {}
        self.runs: list[SacredRun] = []
        self.locks = JobLocks(self.results_dir)
        self.refresh()

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def refresh(self) -> None:
        self.runs = load_runs(self.results_dir)
        now = dt.datetime.utcnow()
        self.statuses = {job: self.locked(job, job_status(job, self.runs, self.results_dir, now, self.stale_after))
                         for job in self.jobs}

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

    def dry_run(self) -> int:
        self.say(f"plan: {len(self.jobs)} jobs | {self.counts(set(), set())}")
        self.say_damaged()
        for job in self.jobs:
            status = self.statuses[job]
            where = f" (run {status.run.path})" if status.run else ""
            self.say(f"  {status.state:<17} {job.key}{where}")
            if status.note:
                self.say(f"      note: {status.note}")
            if status.state in (TODO, RESUMABLE):
                argv = command(job, status, self.runs, self.results_dir, self.commands)
                self.say(f"      $ {shlex.join(argv)}")
        return 0

    def thread_env(self) -> dict[str, str]:
        """Parallel runs share the cores: give each its share of math-library threads unless
        the user chose a number."""
        share = str(max(1, (os.cpu_count() or 1) // self.max_parallel))
        return {var: os.environ.get(var, share) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def execute(self, launcher) -> int:
        """Run every job not done; returns 0 iff all are done at the end."""
        running: dict[str, float] = {}   # key -> start time
        failed: set[str] = set()
        by_key = {job.key: job for job in self.jobs}
        self.say(f"plan: {len(self.jobs)} jobs | {self.counts(set(), failed)}")
        self.say_damaged()
        try:
            while True:
                self.launch_ready(launcher, running, failed)
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
        finally:
            if running:
                self.say(f"stopping {len(running)} running job(s) (SIGINT: they record INTERRUPTED and resume "
                         "on the next call)")
            launcher.stop()
            self.locks.release_all()
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
                argv = command(job, status, runs, self.results_dir, self.commands)
            except RuntimeError as error:
                self.locks.release(job.key)
                failed.add(job.key)
                self.say(f"FAILED {job.key}: {error}")
                continue
            verb = "resume" if status.state == RESUMABLE else "start"
            self.say(f"{verb} {job.key}\n      $ {shlex.join(argv)}")
            launcher.start(job.key, argv, log_path(job, self.results_dir), self.thread_env(), (lock,))
            running[job.key] = time.monotonic()


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def plan_jobs(figures: list[str], scale: str, seeds: int | None, maps, curves,
              backend: str, hp: tuple = ()) -> list[Job]:
    learners = []
    for figure in figures:
        learners += expand(figure, scale, seeds, maps, curves, backend, hp).learner_jobs
    return dependency_order(learners)


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(prog="python -m dm2_repro.run", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="+", choices=[*FIGURES, "all"], metavar="FIGURE",
                        help=f"one or more of {', '.join(FIGURES)}, or all")
    parser.add_argument("--scale", choices=SCALES, default="cpu")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per curve (default: the preset's, paper 5, cpu 5, smoke 2)")
    parser.add_argument("--jobs", type=int, default=1, help="jobs run in parallel")
    parser.add_argument("--maps", nargs="+", default=None, help="only these maps' panels")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="only curves whose key matches one of these globs (e.g. dm2_*)")
    parser.add_argument("--launcher", choices=("local", "ray"), default="local")
    parser.add_argument("--address", default=None, help="Ray cluster address (with --launcher ray)")
    parser.add_argument("--backend", choices=BACKENDS, default="smax")
    parser.add_argument("--hp", nargs="+", default=None, metavar="KEY=VALUE",
                        help="hyperparameter overrides for every training job, e.g. n_envs=8 (fewer SC2 games)")
    parser.add_argument("--results", default="results", help="results directory")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--stale-after", type=float, default=300.0,
                        help="seconds without heartbeat after which a RUNNING run counts as dead")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple:
    """The arguments' values (argparse checked names and types); returns the parsed hp overrides."""
    at_least("--seeds", args.seeds, 1)
    at_least("--jobs", args.jobs, 1)
    at_least("--stale-after", args.stale_after, 1, "a number")
    at_least("--poll", args.poll, 0.01, "a number")
    not_a_file("--results", args.results)
    if args.address and args.launcher != "ray":
        raise InputError(f"--address {args.address}: only with --launcher ray")
    return check_hp_pairs(args.hp)


def _interrupt(signum, frame):
    raise KeyboardInterrupt   # SIGTERM stops the runner as Ctrl-C does: its jobs get SIGINT


def main(argv=None, commands: Commands = Commands(), out=None) -> int:
    args = parse_args(argv)
    figures = list(FIGURES) if "all" in args.figures else args.figures
    try:
        hp = check_args(args)
        jobs = plan_jobs(figures, args.scale, args.seeds, args.maps, args.curves, args.backend, hp)
    except ValueError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    if not jobs:
        print("error: the filters select no curves", file=sys.stderr)
        return 2
    print(f"{' '.join(figures)} @ {args.scale} (backend {args.backend}, results {args.results})",
          file=out or sys.stdout)
    runner = Runner(jobs, Path(args.results), commands, max(1, args.jobs), args.stale_after,
                    args.poll, out)
    if args.dry_run:
        return runner.dry_run()
    if args.launcher == "ray":
        launcher = RayLauncher(args.address, max(1, args.jobs))
    else:
        launcher = LocalLauncher()
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return runner.execute(launcher)
    except KeyboardInterrupt:
        print("interrupted: the stopped jobs resume on the next call", file=out or sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
