"""Run a figure's experiments: plan the job graph, skip what is done, resume what was cut off.

    python -m dm2_repro.run fig2 --scale cpu --jobs 2
    python -m dm2_repro.run fig2 --scale cpu --maps 3s_vs_3z --dry-run [--json]
    python -m dm2_repro.run all --scale cpu --launcher ray --address auto     # every CPU of the cluster
    python -m dm2_repro.run all --scale paper --launcher slurm --partition gpu --gpus-per-job 1

A training job is done iff a COMPLETED Sacred run with its config exists; a demonstration job is
done iff its .npz and .json exist and the json's sha256 is the file's. An unfinished training run
that recorded a checkpoint (`info.checkpoint`) and whose process is gone (heartbeat older than
--stale-after, or its pid, when recorded on this host, is dead) is relaunched with
`resume=<run dir>`. A run still alive elsewhere (e.g. another runner) is waited for, not
duplicated. Everything else runs in dependency order (experts -> demonstrations -> learners),
`--jobs` at a time: subprocesses here, Ray tasks (default: as many as the cluster has CPUs) or SLURM
jobs through submitit (default: all that are ready). A progress bar on stderr (a terminal) counts
done / running / failed jobs with an ETA; the per-job lines go to stdout and each job's output to
RESULTS/logs/. --device, --threads and the tracking options reach every training job's command but
are not part of a job's identity: a run made with --tensorboard is the same job as one without.

Two runners on one results dir never run the same job twice: a runner holds a lock per job
(fcntl, `RESULTS/locks/<hash of the job key>.lock`, shared with the job's process) while it runs
it, and a job whose lock another runner holds counts as running elsewhere (demonstration jobs
included). Stopping a runner (Ctrl-C or SIGTERM) stops its jobs with SIGINT, which Sacred records
as INTERRUPTED (they resume on the next call). The plan shows a RUNNING run whose process is dead
as such, and lists the run dirs whose files cannot be read ("damaged runs").

Reference: docs/sweeps.md.
"""
from __future__ import annotations

import argparse
import ast
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

import psutil

from dm2_repro.experiments import BACKENDS, FIGURES, SCALES, DemoJob, Job, TrainJob, dependency_order, expand
from dm2_repro import tracking
from dm2_repro.snapshots import snapshot_steps
from dm2_repro.sweeps import record_sweep, sweep_jobs
from dm2_repro.results import SacredRun, completed_run, damaged_lines, demo_metadata, load_runs, runs_of
from dm2_repro.validate import DEVICE_RE, InputError, Parser, at_least, check_hp_pairs, not_a_file

DONE, RUNNING, RESUMABLE, TODO = "done", "running elsewhere", "resumable", "todo"
LAUNCHERS = ("local", "ray", "slurm")
SLURM_EXECUTORS = ("slurm", "local")   # submitit's: "local" runs the jobs here as SLURM would
SLURM_MINUTES = 24 * 60                 # a SLURM job's time limit unless --time says otherwise
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
              keep_fds: tuple[int, ...] = (), gpu: bool = False) -> None:
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
    """The same commands as Ray tasks (`cpus_per_job` CPUs each; training jobs also `num_gpus` GPUs), on
    a cluster or a local Ray instance. A local instance gets room for `num_cpus` jobs (None: all of this
    machine's CPUs).

    On a cluster every node must see the repository and the results directory at the same
    path (a shared file system): tasks run the commands in this process's working directory.
    Ray sets CUDA_VISIBLE_DEVICES of a task that asks for GPUs; its command inherits it.
    """

    def __init__(self, address: str | None, num_cpus: int | None, num_gpus: float = 0.0, cpus_per_job: int = 1):
        try:
            import ray
        except ImportError:
            raise SystemExit('--launcher ray needs Ray: pip install -e ".[ray]"') from None
        self.ray = ray
        self.cpus_per_job = cpus_per_job
        self.owns_instance = not ray.is_initialized()
        if self.owns_instance:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=num_cpus * cpus_per_job if num_cpus else None, include_dashboard=False)
        # demonstration jobs sample on the CPU: only training jobs hold GPUs
        self.tasks = {False: ray.remote(num_cpus=cpus_per_job)(run_command),
                      True: ray.remote(num_cpus=cpus_per_job, num_gpus=num_gpus)(run_command)}
        self.pending: dict[object, str] = {}

    def capacity(self) -> int:
        """Jobs the cluster runs at once: its CPUs over each job's (a job is one CPU by default)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)) // self.cpus_per_job)

    def start(self, key: str, argv: list[str], log_file: Path, env: dict[str, str],
              keep_fds: tuple[int, ...] = (), gpu: bool = False) -> None:
        ref = self.tasks[gpu].remote(argv, str(log_file.resolve()), env, os.getcwd())   # the lock stays with us
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


def slurm_parameters(partition: str | None = None, minutes: int | None = None, cpus_per_job: int | None = None,
                     gpus_per_job: float = 0, mem_gb: float | None = None,
                     extra: dict[str, str] | None = None) -> dict:
    """submitit's AutoExecutor parameters of one job (None: the cluster's default)."""
    params = dict(name="dm2_repro", timeout_min=int(minutes or SLURM_MINUTES), cpus_per_task=cpus_per_job or 1,
                  nodes=1, tasks_per_node=1, mem_gb=mem_gb, slurm_partition=partition,
                  slurm_additional_parameters=dict(extra) if extra else None)
    if gpus_per_job:
        params["gpus_per_node"] = int(gpus_per_job)
    return {key: value for key, value in params.items() if value is not None}


class SlurmLauncher:
    """The same commands as SLURM jobs through submitit, one job each (`slurm_parameters`). The
    results directory and the repository must be on a file system the nodes share; submitit's
    own files (pickled calls, its logs: <job id>_0_log.out/.err) go to `folder`. `executor="local"` is submitit's
    local executor: the jobs run on this machine, through the same submit / poll / cancel path."""

    def __init__(self, folder: Path, executor: str = "slurm", grace_seconds: float = 60.0, **parameters):
        try:
            import submitit
        except ImportError:
            raise SystemExit('--launcher slurm needs submitit: pip install -e ".[slurm]"') from None
        # demonstration jobs sample on the CPU: only training jobs ask for GPUs
        gpus = parameters.pop("gpus_per_job", 0)
        try:
            self.executors = {gpu: submitit.AutoExecutor(folder=str(folder), cluster=executor)
                              for gpu in (False, True)}
        except RuntimeError as error:   # no sbatch/srun here
            raise SystemExit(f"error: --launcher slurm: {' '.join(str(error).split())} (--slurm-executor local "
                             "runs the jobs on this machine)") from None
        for gpu, each in self.executors.items():
            each.update_parameters(**slurm_parameters(**parameters, gpus_per_job=gpus if gpu else 0))
        self.pending: dict[object, tuple[str, Path]] = {}   # submitit job -> (key, log file)
        self.grace_seconds = grace_seconds

    def start(self, key: str, argv: list[str], log_file: Path, env: dict[str, str],
              keep_fds: tuple[int, ...] = (), gpu: bool = False) -> None:
        log_file = Path(log_file).resolve()
        job = self.executors[gpu].submit(run_command, argv, str(log_file), env, os.getcwd())   # the lock stays with us
        self.pending[job] = (key, log_file)

    def _result(self, job, log_file: Path) -> int:
        """The command's exit code; a job SLURM ended (time limit, cancelled, node failure) counts as
        failed, and its log says why and where submitit's own output is."""
        try:
            return int(job.result())
        except Exception as error:   # submitit's UncompletedJobError / FailedJobError, or anything unpickling
            with open(log_file, "a") as log:
                log.write(f"submitit job {job.job_id} ended without a result: {' '.join(str(error).split())[:500]}"
                          f" (its output: {job.paths.stdout} / {job.paths.stderr})\n")
            return 1

    def wait(self, timeout: float) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while self.pending:
            done = [job for job in self.pending if job.done()]
            if done or time.monotonic() >= deadline:
                return [(self.pending[job][0], self._result(job, self.pending.pop(job)[1])) for job in done]
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return []

    @staticmethod
    def _interrupt(job) -> None:
        """SIGINT to the job's command, which Sacred records as INTERRUPTED (scancel's default SIGTERM
        would leave the run RUNNING); the local executor's cancel sends SIGINT itself."""
        if type(job).__name__ == "SlurmJob":
            subprocess.call(["scancel", "--signal=INT", str(job.job_id)])
        else:
            job.cancel(check=False)

    def stop(self) -> None:
        for job in self.pending:
            self._interrupt(job)
        deadline = time.monotonic() + self.grace_seconds
        while any(not job.done() for job in self.pending) and time.monotonic() < deadline:
            time.sleep(0.5)
        for job in self.pending:
            if not job.done():
                job.cancel(check=False)
        self.pending.clear()


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
    parser = Parser(prog="python -m dm2_repro.run", description=__doc__)
    parser.add_argument("figures", nargs="+", choices=[*FIGURES, "all"], metavar="FIGURE",
                        help=f"one or more of {', '.join(FIGURES)}, or all")
    plan = parser.add_argument_group("what to run (the same options as figure and claims)")
    plan.add_argument("--scale", choices=SCALES, default="cpu", help="preset")
    plan.add_argument("--seeds", type=int, default=None,
                      help="seeds per curve (default: the preset's, paper 5, cpu 5, smoke 2)")
    plan.add_argument("--maps", nargs="+", default=None, help="only these maps' panels")
    plan.add_argument("--curves", nargs="+", default=None,
                      help="only curves whose key matches one of these globs (e.g. dm2_*)")
    plan.add_argument("--backend", choices=BACKENDS, default="smax", help="environment backend")
    plan.add_argument("--hp", nargs="+", default=None, metavar="KEY=VALUE",
                      help="hyperparameter overrides for every training job, e.g. n_envs=8 (fewer SC2 games)")
    plan.add_argument("--results", default="results", help="results directory")
    where = parser.add_argument_group("where to run")
    where.add_argument("--launcher", choices=LAUNCHERS, default="local",
                       help="local: subprocesses here; ray: Ray tasks; slurm: SLURM jobs through submitit")
    where.add_argument("--jobs", type=int, default=None,
                       help="jobs run at once (default: 1 locally, one per CPU of the Ray cluster, every ready "
                            "job with slurm)")
    where.add_argument("--address", default=None, help="Ray cluster address, e.g. auto (with --launcher ray; "
                                                       "without it a local Ray instance starts)")
    where.add_argument("--cpus-per-job", type=int, default=None,
                       help="CPUs of each job (ray, slurm; default 1, and that many math-library threads)")
    where.add_argument("--gpus-per-job", type=float, default=0.0,
                       help="GPUs of each training job (ray: fractions share one, e.g. 0.5; slurm: whole GPUs); "
                            "> 0 also trains with --device cuda unless --device says otherwise")
    slurm = parser.add_argument_group("SLURM (with --launcher slurm)")
    slurm.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--time", type=int, default=None, metavar="MINUTES",
                       help=f"time limit of each job in minutes (default: {SLURM_MINUTES})")
    slurm.add_argument("--mem-gb", type=float, default=None, help="memory of each job (default: the cluster's)")
    slurm.add_argument("--slurm-extra", nargs="+", default=None, metavar="KEY=VALUE",
                       help="more sbatch options, e.g. account=myproj qos=high")
    slurm.add_argument("--slurm-executor", choices=SLURM_EXECUTORS, default=None,
                       help="submitit executor (default: slurm); local runs the jobs on this machine the way "
                            "SLURM would, to try a plan")
    train = parser.add_argument_group("passed to every training job (not part of a job's identity)")
    train.add_argument("--device", default=None, help="train's device=: cpu, cuda, cuda:<index> (default: train's, "
                                                     "cpu; cuda with --gpus-per-job)")
    train.add_argument("--threads", type=int, default=None, help="train's threads= (default: train's, 1)")
    train.add_argument("--tensorboard", action="store_true", help="train's tensorboard=True")
    train.add_argument("--wandb-project", default=None, help="train's wandb_project=: log to Weights & Biases")
    train.add_argument("--mongo-url", default=None, help="train's mongo_url=: also record to MongoDB")
    show = parser.add_argument_group("output")
    show.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    show.add_argument("--json", action="store_true",
                      help="with --dry-run: the plan as one JSON document (jobs with key, kind, state, argv, deps)")
    show.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="progress bar on stderr (default: when stderr is a terminal)")
    show.add_argument("--stale-after", type=float, default=300.0,
                      help="seconds without heartbeat after which a RUNNING run counts as dead")
    show.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    return parser.parse_args(argv)


def key_values(option: str, pairs) -> dict[str, str]:
    """KEY=VALUE words of an option as a dict of strings."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {pair!r}: not KEY=VALUE")
        out[key] = value
    return out


def only_with(args: argparse.Namespace, launchers: tuple[str, ...], options: dict[str, object]) -> None:
    """Options given (not None) with a launcher that does not use them are an error, not ignored."""
    if args.launcher in launchers:
        return
    for name, value in options.items():
        if value is not None:
            shown = f"{value:g}" if isinstance(value, float) else value
            raise InputError(f"{name} {shown}: only with --launcher {' or '.join(launchers)}")


def check_args(args: argparse.Namespace) -> tuple:
    """The arguments' values (argparse checked names and types); returns the parsed hp overrides."""
    at_least("--seeds", args.seeds, 1)
    at_least("--jobs", args.jobs, 1)
    at_least("--stale-after", args.stale_after, 1, "a number")
    at_least("--poll", args.poll, 0.01, "a number")
    at_least("--cpus-per-job", args.cpus_per_job, 1)
    at_least("--gpus-per-job", args.gpus_per_job, 0, "a number")
    at_least("--time", args.time, 1)
    at_least("--mem-gb", args.mem_gb, 0.01, "a number")
    at_least("--threads", args.threads, 1)
    not_a_file("--results", args.results)
    only_with(args, ("ray",), {"--address": args.address})
    only_with(args, ("ray", "slurm"), {"--cpus-per-job": args.cpus_per_job,
                                       "--gpus-per-job": args.gpus_per_job or None})
    only_with(args, ("slurm",), {"--partition": args.partition, "--time": args.time, "--mem-gb": args.mem_gb,
                                 "--slurm-extra": args.slurm_extra and " ".join(args.slurm_extra),
                                 "--slurm-executor": args.slurm_executor})
    if args.launcher == "slurm" and not float(args.gpus_per_job).is_integer():
        raise InputError(f"--gpus-per-job {args.gpus_per_job:g}: SLURM gives whole GPUs (fractions: --launcher ray)")
    key_values("--slurm-extra", args.slurm_extra)
    if args.json and not args.dry_run:
        raise InputError("--json: only with --dry-run (it prints the plan as data)")
    if args.device is not None and not DEVICE_RE.match(args.device):
        raise InputError(f"--device {args.device!r}: valid devices: cpu, cuda, cuda:<index>")
    if args.mongo_url is not None and not args.mongo_url.startswith(("mongodb://", "mongodb+srv://")):
        raise InputError(f"--mongo-url {args.mongo_url!r}: must be a MongoDB URL, e.g. mongodb://localhost:27017/dm2")
    if args.wandb_project is not None and (not args.wandb_project or any(c.isspace() for c in args.wandb_project)):
        raise InputError(f"--wandb-project {args.wandb_project!r}: must be a project name without spaces")
    return check_hp_pairs(args.hp)


def train_extra(args: argparse.Namespace) -> tuple[str, ...]:
    """The pass-through words of the arguments: a job that asks for GPUs trains on one."""
    device = args.device or ("cuda" if args.gpus_per_job else None)
    return pass_through_words(device, args.threads, args.tensorboard, args.wandb_project, args.mongo_url)


def make_launcher(args: argparse.Namespace):
    if args.launcher == "ray":
        return RayLauncher(args.address, args.jobs, args.gpus_per_job, args.cpus_per_job or 1)
    if args.launcher == "slurm":
        return SlurmLauncher(Path(args.results) / "slurm", args.slurm_executor or "slurm",
                             partition=args.partition, minutes=args.time, cpus_per_job=args.cpus_per_job,
                             gpus_per_job=args.gpus_per_job, mem_gb=args.mem_gb,
                             extra=key_values("--slurm-extra", args.slurm_extra))
    return LocalLauncher()


def parallel_jobs(args: argparse.Namespace, launcher, n_jobs: int) -> int:
    """--jobs, else the launcher's: one locally, the Ray cluster's CPUs, every job for SLURM (it queues)."""
    if args.jobs:
        return args.jobs
    if args.launcher == "ray":
        return launcher.capacity()
    return n_jobs if args.launcher == "slurm" else 1


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
    if not args.json:   # --json: stdout is the one JSON document
        print(f"{' '.join(figures)} @ {args.scale} (backend {args.backend}, results {args.results})",
              file=out or sys.stdout)
    runner = Runner(jobs, Path(args.results), commands, max(1, args.jobs or 1), args.stale_after,
                    args.poll, out, train_extra=train_extra(args), progress=args.progress)
    if args.dry_run:
        return runner.dry_run(as_json=args.json)
    launcher = make_launcher(args)
    runner.max_parallel = parallel_jobs(args, launcher, len(jobs))
    if args.launcher != "local":
        runner.threads_per_job = args.threads or args.cpus_per_job or 1
    elif args.threads:
        runner.threads_per_job = args.threads
    print(f"launcher {args.launcher}: up to {runner.max_parallel} job(s) at a time", file=out or sys.stdout)
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    # the sweep is a Sacred run of its own in RESULTS/sweeps: the plan as config, the runs it resolved to as info
    plan = dict(figures=figures, scale=args.scale, backend=args.backend, seeds=args.seeds, maps=args.maps,
                curves=args.curves, hp=dict(hp), launcher=args.launcher, jobs_at_once=runner.max_parallel)

    def job_table() -> list[dict]:
        runner.refresh()
        return sweep_jobs(runner.plan_data(), args.results)

    try:
        return record_sweep(args.results, plan, lambda: runner.execute(launcher), job_table,
                            tracking.mongo_url(args.mongo_url or ""))
    except KeyboardInterrupt:
        print("interrupted: the stopped jobs resume on the next call", file=out or sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
