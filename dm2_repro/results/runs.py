"""Logged Sacred runs as Python objects and pandas frames.

A training run is a Sacred FileStorageObserver directory `{results}/runs/<id>/` holding
config.json, run.json (status, heartbeat, host, info) and metrics.json
(`{name: {"steps": [...], "values": [...], "timestamps": [...]}}`). Figures and claims read only
COMPLETED runs; the runner also looks at unfinished ones to resume them.

Damaged runs are reported, never silently dropped: `load_runs` returns the runs with a readable
config.json (those whose run.json cannot be read carry `problem`; their last sign of life is the
file's mtime, as Sacred rewrites run.json on every heartbeat) and lists every run dir that has a
problem in `.damaged` (path and reason), which figure, claims and run print. A metrics.json that
cannot be read takes its run out of the curves and into `.damaged`; a win rate outside [0, 1]
(or not finite) is an error naming the run.

Aligning seeds: every run evaluates at a fixed interval, so the eval steps of a curve's seeds
should coincide. When they do not exactly (e.g. an evaluation triggered at the first episode
boundary past the interval), the run with the fewest evaluations (ties: the first seed) sets the
step grid, every other seed contributes its evaluation nearest to each grid step if that is
within half the grid's median spacing, and grid steps some seed cannot fill are dropped.

For pandas users, `to_dataframe(results_dir)` is every run's metrics as one long table (run id,
algo, map, seed, scale, demo, hp overrides, metric, step, value); docs/results_api.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dm2_repro.envs import METRICS
from dm2_repro.sweeps.plan import expand
from dm2_repro.cli_io import atomic_write_text, sha256_file

WIN_RATE, RETURN = METRICS["win_rate"], METRICS["return"]   # the logged names


class DamagedRun(ValueError):
    """A run file that cannot be read, or holds values outside their range; names the run."""


def is_win_rate(name: str) -> bool:
    return name.endswith("battle_won_mean")


@dataclass
class SacredRun:
    run_id: str
    path: Path
    config: dict
    run: dict
    _metrics: dict | None = field(default=None, repr=False)
    problem: str | None = None   # why run.json could not be read (then `run` is {})
    strict: bool = True          # a win rate outside [0, 1] raises DamagedRun (else see range_problem)

    @property
    def status(self) -> str:
        return self.run.get("status", "")

    @property
    def info(self) -> dict:
        """The run's info: Sacred's FileStorageObserver saves it to info.json in the run dir;
        run.json's "info" is read only where info.json is missing (or unreadable, e.g. being
        rewritten by the live run right now)."""
        info = _read_json(self.path / "info.json")
        return info if info is not None else (self.run.get("info") or {})

    @property
    def git_commit(self) -> str | None:
        """The commit of the code that made the run, as Sacred recorded it (None: not recorded)."""
        repositories = (self.run.get("experiment") or {}).get("repositories") or [{}]
        return repositories[0].get("commit")

    @property
    def hostname(self) -> str | None:
        return (self.run.get("host") or {}).get("hostname")

    @property
    def last_alive(self) -> dt.datetime | None:
        """The last sign of life (heartbeat, else start time), naive UTC as Sacred writes it; for an
        unreadable run.json, the time it was last written."""
        stamp = self.run.get("heartbeat") or self.run.get("start_time")
        if stamp:
            try:
                return dt.datetime.fromisoformat(stamp)
            except (TypeError, ValueError):
                pass
        try:
            mtime = (self.path / "run.json").stat().st_mtime
        except OSError:
            return None
        return dt.datetime.utcfromtimestamp(mtime)

    @property
    def sort_key(self) -> tuple:
        """Newer runs sort later: by last sign of life, then by numeric id."""
        alive = self.last_alive or dt.datetime.min
        return (alive, int(self.run_id) if self.run_id.isdigit() else -1, self.run_id)

    @property
    def metrics(self) -> dict:
        """metrics.json ({} if absent); DamagedRun naming the file if it cannot be read."""
        if self._metrics is None:
            path = self.path / "metrics.json"
            if not path.exists():
                return {}
            metrics, problem = _read_json_retry(path)
            if problem or not isinstance(metrics, dict):
                raise DamagedRun(f"{path}: {problem or 'not a json object'}")
            self._metrics = metrics
        return self._metrics

    def metric(self, name: str = WIN_RATE) -> pd.Series:
        """One metric as a Series indexed by env step (a step logged twice keeps its last value,
        which happens where a resumed run repeats its predecessor's last evaluation). A win rate
        outside [0, 1] is a DamagedRun error naming the run."""
        entry = self.metrics.get(name)
        if not entry:
            return pd.Series(dtype=float, name=self.run_id)
        try:
            series = pd.Series(entry["values"], index=entry["steps"], dtype=float, name=self.run_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedRun(f"run {self.path}: metric {name} in metrics.json is malformed ({exc})") from None
        problem = _range_problem(self, name, series) if self.strict else None
        if problem:
            raise DamagedRun(f"{problem}; its metrics.json is wrong: fix or remove the run")
        series = series[~series.index.duplicated(keep="last")].sort_index()
        series.index.name = "step"
        return series


def _range_problem(run: SacredRun, name: str, series: pd.Series) -> str | None:
    if not is_win_rate(name):
        return None
    bad = series[~((series >= 0) & (series <= 1))]
    if not len(bad):
        return None
    return f"run {run.path}: {name} = {float(bad.iloc[0]):g} at step {bad.index[0]} is outside [0, 1]"


def range_problem(run: SacredRun, name: str = WIN_RATE) -> str | None:
    """Why the run's `name` has values outside their range (win rates: [0, 1]), or None."""
    strict, run.strict = run.strict, False
    try:
        return _range_problem(run, name, run.metric(name))
    finally:
        run.strict = strict


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None   # missing, or being written by a live run right now


def _read_json_retry(path: Path, retry_after: float = 0.1) -> tuple[object, str | None]:
    """(content, None), or (None, why it cannot be read). A file a live run is rewriting right now
    (Sacred rewrites run.json in place) may read truncated: it is read once more after a pause."""
    for attempt in (0, 1):
        try:
            return json.loads(path.read_text()), None
        except FileNotFoundError:
            return None, f"{path.name} is missing"
        except (OSError, ValueError) as exc:
            problem = f"{path.name} cannot be read ({type(exc).__name__}: {exc})"
            if attempt == 0:
                time.sleep(retry_after)
    return None, problem


class RunList(list):
    """The runs of a results dir (a list of SacredRun) and `.damaged`: (path, reason) of every
    run dir with a file that cannot be read."""

    def __init__(self, runs=(), damaged=()):
        super().__init__(runs)
        self.damaged: list[tuple[Path, str]] = list(damaged)

    def add_damaged(self, path: Path, reason: str) -> None:
        if (path, reason) not in self.damaged:
            self.damaged.append((path, reason))


def load_runs(results_dir: str | Path, strict: bool = True) -> RunList:
    """Every run under `{results_dir}/runs` with a readable config.json (Sacred's `_sources` folder
    is skipped); `.damaged` lists the run dirs with unreadable files (see the module doc).
    strict: a win rate outside [0, 1] raises when read (else the caller reports range_problem)."""
    runs_dir = Path(results_dir) / "runs"
    if not runs_dir.is_dir():
        return RunList()
    runs = RunList()
    for path in sorted(runs_dir.iterdir()):
        if not path.is_dir() or path.name.startswith("_"):
            continue
        if not (path / "config.json").exists() and not (path / "run.json").exists():
            continue   # Sacred has just made the dir and not yet written into it
        config, problem = _read_json_retry(path / "config.json")
        if problem or not isinstance(config, dict):
            runs.add_damaged(path, problem or "config.json is not a json object")
            continue
        run, problem = _read_json_retry(path / "run.json")
        if not problem and not isinstance(run, dict):
            problem = "run.json is not a json object"
        if problem:
            runs.add_damaged(path, problem)
            run = {}
        runs.append(SacredRun(run_id=path.name, path=path, config=config, run=run, problem=problem,
                              strict=strict))
    return runs


def damaged_lines(runs) -> list[str]:
    """The `damaged runs` report of a scan (empty if nothing is damaged)."""
    damaged = getattr(runs, "damaged", [])
    if not damaged:
        return []
    return [f"damaged runs ({len(damaged)}; not used until repaired or removed):",
            *(f"  {path}: {reason}" for path, reason in damaged)]


def runs_of(job, runs: list[SacredRun]) -> list[SacredRun]:
    """The runs of a job (any status), oldest first."""
    return sorted((run for run in runs if job.matches(run.config)), key=lambda r: r.sort_key)


def completed_run(job, runs: list[SacredRun]) -> SacredRun | None:
    """The newest COMPLETED run of a job, or None."""
    done = [run for run in runs_of(job, runs) if run.status == "COMPLETED"]
    return done[-1] if done else None


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def cached_sha256(path: str | Path) -> str:
    """The file's sha256, cached while size and mtime stay the same (the runner asks often)."""
    stat = Path(path).stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def demo_metadata(demo_job, results_dir: str | Path) -> dict | None:
    """The demonstration's json, if the file is complete: json present and its sha256 matches."""
    npz = demo_job.path(results_dir)
    meta = _read_json(npz.with_suffix(".json"))
    if meta is None or not npz.exists() or meta.get("sha256") != cached_sha256(npz):
        return None
    return meta


# (team, metric) -> demo json key. "greedy": the source team acting greedily (the paper's demonstration
# quality, its own evaluation); "sampled": the sampled episodes in the file, the team DM² imitates.
QUALITY_KEYS = {("greedy", "win_rate"): "quality", ("greedy", "return"): "quality_return",
                ("sampled", "win_rate"): "demo_win_rate", ("sampled", "return"): "demo_return_mean"}
TEAMS = ("greedy", "sampled")


def demo_quality(demo_job, run: SacredRun | None, results_dir: str | Path,
                 metric: str = "win_rate", team: str = "greedy") -> float | None:
    """The quality of a demonstration's source, its win rate or (metric "return") its mean return,
    of the team acting greedily (team "greedy", the paper's quality) or of the sampled episodes in the
    file (team "sampled", what DM² imitates): from the learner run's own record of the demonstration
    it used, else from the demonstration's json next to the file. A greedy return is also read from
    the source runs' greedy evaluation at the snapshot's step for demonstrations made before their
    json recorded it."""
    if team not in TEAMS:
        raise ValueError(f"team {team!r}: expected one of {', '.join(TEAMS)}")
    key = QUALITY_KEYS[team, metric]
    recorded = (run.info.get("demo") or {}) if run else {}
    json_path = demo_job.path(results_dir).with_suffix(".json")
    if recorded.get(key) is not None:
        meta, where = recorded, f"run {run.path} (info.demo.{key})"
    else:
        meta, where = _read_json(json_path), str(json_path)
    if meta is None:
        return None
    quality = meta.get(key)
    if quality is None and (team, metric) == ("greedy", "return"):
        quality = source_eval_return(meta, results_dir)
    if quality is None:
        return None
    try:
        value = float(quality)
    except (TypeError, ValueError):
        value = math.nan
    if metric == "win_rate" and not 0.0 <= value <= 1.0:
        raise DamagedRun(f"{where}: demonstration quality {quality!r} is not a win rate in [0, 1]")
    if not math.isfinite(value):
        raise DamagedRun(f"{where}: demonstration {key} {quality!r} is not a number")
    return value


DEMO_LENGTH = "demo_ep_length_mean"   # a demonstration's mean episode length (json key and DM²'s metric)


def demo_episode_length(demo_job, run: SacredRun | None, results_dir: str | Path) -> float | None:
    """The mean episode length of a demonstration's (sampled) episodes: from the learner run's record of
    the demonstration, else the demonstration's json, else the run's own log of it (DM²-family runs log
    it since 2026-12-07). None where nothing records it (older demonstrations whose file is not here)."""
    recorded = (run.info.get("demo") or {}) if run else {}
    meta = _read_json(demo_job.path(results_dir).with_suffix(".json")) or {}
    for value in (recorded.get(DEMO_LENGTH), meta.get(DEMO_LENGTH)):
        if value is not None:
            return float(value)
    logged = run.metric(DEMO_LENGTH) if run is not None and DEMO_LENGTH in run.metrics else None
    return float(logged.iloc[0]) if logged is not None and len(logged) else None


def relative_recorded_paths(results_dir: str | Path) -> list[Path]:
    """Rewrite the paths older code recorded absolute (or relative to where it ran) into the results
    directory's own files as paths relative to it: each run's config.json `demo` ("demos/NAME.npz") and
    each demonstration json's `source_runs` ("runs/<id>"). Only paths into the results layout (a demos/ or
    runs/ folder) are rewritten; everything else is kept. A run whose status is RUNNING (live, or killed and waiting
    for its resume=) keeps its config: the code that started it compares its recorded demo with the one it is
    given on resume, and older code compares the paths as written. Returns the files rewritten."""
    results_dir = Path(results_dir)
    changed = []

    def rewrite(path: Path, update) -> None:
        data = _read_json(path)
        if isinstance(data, dict) and update(data):
            atomic_write_text(path, json.dumps(data, sort_keys=True, indent=2))
            changed.append(path)

    def run_config(config: dict) -> bool:
        demo = config.get("demo") or ""
        new = f"demos/{Path(demo).name}" if demo and Path(demo).parent.name == "demos" else demo
        config["demo"] = new
        return new != demo

    def demo_json(meta: dict) -> bool:
        old = list(meta.get("source_runs") or [])
        meta["source_runs"] = [f"runs/{Path(r).name}" if Path(r).parent.name == "runs" else r for r in old]
        return meta["source_runs"] != old

    for config in sorted((results_dir / "runs").glob("*/config.json")):
        if (_read_json(config.parent / "run.json") or {}).get("status") != "RUNNING":
            rewrite(config, run_config)
    for meta in sorted((results_dir / "demos").glob("*.json")):
        rewrite(meta, demo_json)
    return changed


def source_eval_return(meta: dict, results_dir: str | Path) -> float | None:
    """Mean over a demonstration's source runs of their first greedy test return at or after the
    snapshot's step: the snapshot's own policy where evaluations and snapshots share an interval
    (every preset), as train.py evaluates before the next update. None if a source is not here."""
    returns = []
    for recorded in meta.get("source_runs") or []:
        path = Path(recorded) if Path(recorded).is_absolute() else Path(results_dir) / recorded   # relative: to it
        if not path.is_dir():   # recorded on another machine: the same run id under this results dir
            path = Path(results_dir) / "runs" / path.name
        metrics = _read_json(path / "metrics.json") or {}
        series = metrics.get(RETURN) or {}
        after = [v for t, v in zip(series.get("steps", []), series.get("values", []))
                 if t >= meta.get("checkpoint_step", math.inf)]
        if not after:
            return None
        returns.append(float(after[0]))
    return float(np.mean(returns)) if returns else None


@dataclass
class CurveRuns:
    """A curve of an experiment definition and its COMPLETED runs, seed by seed."""
    curve: object               # sweeps.plan.Curve
    runs: dict[int, SacredRun]  # seed -> newest COMPLETED run; seeds without one are missing

    @property
    def n_expected(self) -> int:
        return len(self.curve.jobs)

    @property
    def missing_jobs(self) -> list:
        return [job for job in self.curve.jobs if job.seed not in self.runs]

    def series(self, metric: str = WIN_RATE) -> dict[int, pd.Series]:
        return {seed: run.metric(metric) for seed, run in self.runs.items()}

    def demo_qualities(self, results_dir: str | Path, metric: str = "win_rate",
                       team: str = "greedy") -> dict[int, float]:
        """Seed -> quality (demo_quality's `metric` and `team`) of that seed's demonstrations (where known)."""
        qualities = {}
        for job in self.curve.jobs:
            if job.demo:
                quality = demo_quality(job.demo, self.runs.get(job.seed), results_dir, metric, team)
                if quality is not None:
                    qualities[job.seed] = quality
        return qualities


def readable_completed_run(job, runs: list[SacredRun]) -> SacredRun | None:
    """The newest COMPLETED run of a job whose metrics.json can be read; the unreadable ones go to
    `runs.damaged` (if runs is a RunList) and are skipped."""
    done = [run for run in runs_of(job, runs) if run.status == "COMPLETED"]
    for run in reversed(done):
        try:
            run.metrics
        except DamagedRun as exc:
            if isinstance(runs, RunList):
                runs.add_damaged(run.path, str(exc).removeprefix(f"{run.path / 'metrics.json'}: "))
            continue
        return run
    return None


def curve_runs(curves, runs: list[SacredRun]) -> list[CurveRuns]:
    found = []
    for curve in curves:
        by_seed = {job.seed: readable_completed_run(job, runs) for job in curve.jobs}
        found.append(CurveRuns(curve, {seed: run for seed, run in by_seed.items() if run}))
    return found


def detect_scale(figures, runs: list[SacredRun], backend: str = "smax",
                 n_seeds: int | None = None, default: str = "cpu", hp: tuple = (), maps=None,
                 curves=None) -> str:
    """The largest preset with at least one COMPLETED learner run of these figures (of their curves
    selected by maps / curves, with the hp overrides the runs were made with)."""
    for scale in ("paper", "cpu", "smoke"):
        for figure in figures:
            plan = expand(figure, scale, n_seeds, maps, curves, backend=backend, hp=hp)
            if any(completed_run(job, runs) for job in plan.learner_jobs):
                return scale
    return default


# ---------------------------------------------------------------------------------------------
# Every run's metrics as one long table (for pandas users)
# ---------------------------------------------------------------------------------------------

RUN_COLUMNS = ["run_id", "status", "algo", "map", "seed", "scale", "backend", "demo", "hp", "tag"]
METRIC_COLUMNS = [*RUN_COLUMNS, "metric", "step", "value"]


def hp_text(hp: dict | None) -> str:
    """A run's hp overrides as sorted "key=value" pairs joined by "," ("" for none): hashable, so
    a table can be grouped by it, and written as TrainJob.key writes them."""
    return ",".join(f"{key}={value}" for key, value in sorted((hp or {}).items()))


def run_row(run: SacredRun) -> dict:
    """The RUN_COLUMNS of a run (demo: the demonstration's name, the file name without .npz)."""
    config = run.config
    demo = config.get("demo") or ""
    return {"run_id": run.run_id, "status": run.status, "algo": config.get("algo"),
            "map": config.get("map"), "seed": config.get("seed"), "scale": config.get("scale"),
            "backend": config.get("backend"), "demo": Path(demo).stem if demo else "",
            "hp": hp_text(config.get("hp")), "tag": config.get("tag") or ""}


def to_dataframe(runs: str | Path | list[SacredRun] = "results", metrics=None,
                 status: str | None = "COMPLETED") -> pd.DataFrame:
    """One row per logged value of every run: METRIC_COLUMNS, i.e. run_id, status, algo, map,
    seed, scale, backend, demo, hp (see hp_text), tag, metric, step, value.

    runs: a results dir (scanned with load_runs) or a load_runs list. metrics: the metric names
    to keep (None: all). status: keep runs with this Sacred status (None: every run). A run whose
    metrics.json cannot be read adds no rows and is listed in `frame.attrs["damaged"]` (path,
    reason), as are the damaged run dirs of the scan; a win rate outside [0, 1] raises
    DamagedRun (see load_runs). Steps are as logged (a step logged twice keeps its last value).
    """
    runs = load_runs(runs) if isinstance(runs, (str, Path)) else runs
    wanted = None if metrics is None else list(metrics)
    damaged = list(getattr(runs, "damaged", []))
    parts = []
    for run in runs:
        if status is not None and run.status != status:
            continue
        try:
            names = [name for name in run.metrics if wanted is None or name in wanted]
        except DamagedRun as exc:
            damaged.append((run.path, str(exc)))
            continue
        head = run_row(run)
        for name in names:
            series = run.metric(name)
            parts.append(pd.DataFrame({**head, "metric": name, "step": series.index.to_numpy(),
                                       "value": series.to_numpy(dtype=float)}))
    frame = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame({column: [] for column in METRIC_COLUMNS}))
    frame = frame[METRIC_COLUMNS].astype({"step": "int64", "value": "float64"})
    frame.attrs["damaged"] = damaged
    return frame


# ---------------------------------------------------------------------------------------------
# Curves over seeds
# ---------------------------------------------------------------------------------------------

def step_tolerance(steps) -> float:
    """Half the median spacing of a run's eval steps (0 for a single step): how far an evaluation may sit
    from the step it stands for (evaluations land up to one rollout past their nominal step)."""
    steps = np.asarray(steps, dtype=float)
    return float(np.median(np.diff(steps)) / 2) if len(steps) > 1 else 0.0


def align_seeds(series_by_seed: dict[int, pd.Series]) -> pd.DataFrame:
    """A step x seed frame of the seeds' values on common eval steps (rule in the module doc)."""
    series_by_seed = {seed: s for seed, s in series_by_seed.items() if len(s)}
    if not series_by_seed:
        return pd.DataFrame()
    indexes = {seed: s.index for seed, s in series_by_seed.items()}
    if all(index.equals(next(iter(indexes.values()))) for index in indexes.values()):
        return pd.DataFrame(series_by_seed)
    reference_seed = min(series_by_seed, key=lambda seed: len(series_by_seed[seed]))
    grid = np.asarray(series_by_seed[reference_seed].index, dtype=float)
    tolerance = step_tolerance(grid) if len(grid) > 1 else None
    left = pd.DataFrame({"step": grid})
    columns = {}
    for seed, series in series_by_seed.items():
        right = pd.DataFrame({"step": np.asarray(series.index, dtype=float),
                              "value": series.to_numpy(dtype=float)}).sort_values("step")
        # ties between two equally near steps go to the earlier one ("nearest" prefers backward)
        matched = pd.merge_asof(left, right, on="step", direction="nearest", tolerance=tolerance)
        columns[seed] = matched["value"].to_numpy()
    frame = pd.DataFrame(columns, index=pd.Index(grid.astype(np.int64), name="step"))
    return frame.dropna()


def seed_table(aligned: pd.DataFrame) -> pd.DataFrame:
    """An aligned step x seed frame as a long table: step, seed, value (seeds in column order)."""
    long = aligned.rename_axis(index="step", columns="seed").melt(
        ignore_index=False, value_name="value").reset_index()
    return long[["step", "seed", "value"]]


def summarise_seeds(long: pd.DataFrame, keys: list[str], band: str = "se") -> pd.DataFrame:
    """Per group of `keys` (rows kept in first-seen order; a missing step is a group too): the
    mean of "value" over seeds, the band (standard error or standard deviation, ddof=1) and
    n_seeds."""
    by_group = long.groupby(keys, sort=False, dropna=False)["value"]
    table = by_group.agg(["mean", "sem" if band == "se" else "std", "count"]).reset_index()
    return table.set_axis([*keys, "mean", band, "n_seeds"], axis=1)


def summarise(aligned: pd.DataFrame, band: str = "se") -> pd.DataFrame:
    """Mean over seeds and the band (standard error or standard deviation, ddof=1) per step."""
    return summarise_seeds(seed_table(aligned), ["step"], band)
