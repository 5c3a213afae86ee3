"""A figure's sweep as a Sacred run of its own (the layout issue, item 2).

`python -m dm2_repro.run fig2 ...` (not `--dry-run`) is recorded in RESULTS/sweeps/<id>/ by Sacred's file
observer, apart from the training runs in RESULTS/runs (figures and claims read only those):

    config.json   the plan: figures, scale, backend, seeds, maps, curves, hp, launcher, jobs at once
    info.json     `git` (the commit the sweep ran from, `tracking.git_info`) and `jobs`: every job of the plan
                  in dependency order with its state at the end and the run it resolved to (runs/<id> or the
                  demonstration file, relative to RESULTS), updated as the sweep ends or is interrupted
    run.json      Sacred's record: status (COMPLETED, FAILED when a job failed, INTERRUPTED), times, host

A dashboard of the sweeps (Omniboard, `--mongo-url`) then shows which plan ran when, from which commit, and
which training runs it produced.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

SWEEPS_DIR = "sweeps"   # RESULTS/sweeps: the sweeps' Sacred runs
EXPERIMENT = "dm2_repro.sweep"


class SweepFailed(RuntimeError):
    """A job of the sweep failed: the sweep's Sacred run is recorded as FAILED (the runner said which)."""


def record_sweep(results_dir: str | Path, plan: dict, execute: Callable[[], int],
                 job_table: Callable[[], list[dict]], mongo_url: str = "") -> int:
    """Run `execute()` (the runner; returns 0 iff every job is done) as a Sacred run under
    RESULTS/sweeps with `plan` as its config and, at the end, `job_table()` as info["jobs"]. Returns
    execute's code; a KeyboardInterrupt passes through (the run is recorded INTERRUPTED)."""
    from sacred import Experiment
    from sacred.observers import FileStorageObserver

    from dm2_repro.training import tracking

    ex = Experiment(EXPERIMENT, save_git_info=False)
    ex.add_config(dict(plan))
    ex.observers.append(FileStorageObserver(str(Path(results_dir) / SWEEPS_DIR)))
    if mongo_url:
        from sacred.observers import MongoObserver

        ex.observers.append(MongoObserver(url=mongo_url, db_name=tracking.mongo_database(mongo_url)))
    code = {}

    def main(_run):
        _run.info["git"] = tracking.git_info()
        try:
            code["exit"] = execute()
        finally:
            _run.info["jobs"] = job_table()
        if code["exit"] != 0:
            raise SweepFailed(f"{sum(j['state'] != 'done' for j in _run.info['jobs'])} job(s) not done")
        return code["exit"]

    ex.main(main)
    try:
        ex.run(options={"--capture": "no", "--loglevel": "ERROR"})
    except SweepFailed:
        pass
    return code.get("exit", 1)


def sweep_jobs(plan_data: dict, results_dir: str | Path) -> list[dict]:
    """The runner's plan_data() jobs as a sweep records them: key, kind, state, and the run each resolved to,
    relative to the results dir (runs/<id>; None where none)."""
    from dm2_repro.cli_io import relative_to_results

    return [dict(key=job["key"], kind=job["kind"], state=job["state"],
                 run=relative_to_results(job["run"], results_dir) if job["run"] else None)
            for job in plan_data["jobs"]]
