"""Where a sweep's jobs run: subprocesses here, Ray tasks, or SLURM jobs through submitit. A launcher starts a
job's command line with its log file and environment, reports the jobs that ended, and stops the rest (SIGINT,
which Sacred records as INTERRUPTED: they resume on the next call).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path



LAUNCHERS = ("local", "ray", "slurm")
SLURM_EXECUTORS = ("slurm", "local")   # submitit's: "local" runs the jobs here as SLURM would
SLURM_MINUTES = 24 * 60                 # a SLURM job's time limit unless --time says otherwise


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
