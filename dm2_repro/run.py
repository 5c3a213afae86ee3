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
import signal
import sys
from pathlib import Path

from dm2_repro.training import tracking
from dm2_repro.sweeps.launchers import LAUNCHERS, SLURM_EXECUTORS, SLURM_MINUTES, LocalLauncher, RayLauncher, SlurmLauncher
from dm2_repro.sweeps.plan import (BACKENDS, DEFAULT_SCALE, FIGURES, SCALES, Job, check_demo_snapshots,
                                   dependency_order, expand, figure_def, run_scale)
from dm2_repro.sweeps.record import record_sweep, sweep_jobs
from dm2_repro.sweeps.runner import Runner
from dm2_repro.sweeps.status import Commands, pass_through_words
from dm2_repro.validate import DEVICE_RE, InputError, Parser, at_least, check_hp_pairs, not_a_file


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def plan_jobs(figures: list[str], scale: str, seeds: int | None, maps, curves,
              backend: str, hp: tuple = ()) -> list[Job]:
    learners = []
    for figure in figures:
        learners += expand(figure, scale, seeds, maps, curves, backend, hp).learner_jobs
    jobs = dependency_order(learners)
    check_demo_snapshots(jobs)
    return jobs


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m dm2_repro.run", description=__doc__)
    parser.add_argument("figures", nargs="+", choices=[*FIGURES, "all"], metavar="FIGURE",
                        help=f"one or more of {', '.join(FIGURES)}, or all")
    plan = parser.add_argument_group("what to run (the same options as figure and claims)")
    plan.add_argument("--scale", choices=SCALES, default=None,
                      help=f"preset (default: the figure's own, else {DEFAULT_SCALE}; with `all`, {DEFAULT_SCALE}, "
                           "leaving out the figures pinned to another preset)")
    plan.add_argument("--seeds", type=int, default=None,
                      help="seeds per curve (default: the preset's, paper 5, paper_hp 5, cpu 5, smoke 2)")
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
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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
        if "all" in args.figures:   # every figure of the preset: those pinned to another preset stay out
            args.scale = args.scale or DEFAULT_SCALE
            figures = [f for f in figures if figure_def(f).scale in (None, args.scale)]
        args.scale = run_scale(figures, args.scale)
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
