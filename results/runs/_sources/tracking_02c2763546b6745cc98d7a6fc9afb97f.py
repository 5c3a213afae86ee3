"""What a training run records besides Sacred's own files: its sources and git state, its resolved
hyperparameters, and its curves in TensorBoard and Weights & Biases; and the secrets it keeps out
of the record (docs/tracking.md).

Light at import (standard library only): dm2_repro.validate uses the URL helpers before torch loads.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

PACKAGE_DIR = Path(__file__).resolve().parents[1]   # dm2_repro/
MONGO_ENV = "DM2_MONGO_URL"        # the Mongo URL, kept out of the command line and the record
MONGO_DEFAULT_DB = "sacred"        # Sacred's own default when the URL names no database
REDACTED = "***"
_SECRET_PARAM = re.compile(r"password|secret|token", re.IGNORECASE)
# what counts as "the code that ran" for the dirty flag: results/ changes with every run of a campaign
GIT_CODE_PATHS = ("dm2_repro", "pyproject.toml")
GIT_LISTED_CHANGES = 50            # changed paths listed in info.json (the flag counts them all)
TB_METRICS = ("test_battle_won_mean", "test_return_mean")   # the hparams dashboard's columns


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (getrusage: KiB on Linux, bytes on macOS); nan where the
    platform has no `resource` module (Windows). A run records it in info.json (`peak_rss_mb`): the paper_hp
    preset must fit two runs on a 24 GB machine."""
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# ---------------------------------------------------------------------------------------------
# MongoDB URL: where the run goes, and what the record may show of it
# ---------------------------------------------------------------------------------------------

def is_mongo_url(url: str) -> bool:
    return isinstance(url, str) and url.startswith(("mongodb://", "mongodb+srv://"))


def mongo_database(url: str) -> str:
    """The database a MongoDB URL names (`mongodb://host/dm2` -> dm2), else Sacred's default."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    return name or MONGO_DEFAULT_DB


def redact_url(url: str) -> str:
    """The URL without its secrets: the password and any password/secret/token query value."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{hosts}" if sep else f"{user}@{hosts}"
    query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query)],
                      safe="*", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mongo_url(given: str, environ=os.environ) -> str:
    """The URL a run records to: the mongo_url given, else $DM2_MONGO_URL, else "" (no Mongo)."""
    return given or environ.get(MONGO_ENV, "")


# ---------------------------------------------------------------------------------------------
# Sources and git
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def keep_streams():
    """Puts back sys.stdout/sys.stderr if the body replaced them: importing jaxmarl (its mabrax
    module) sets them to sys.__stdout__/__stderr__, which drops Sacred's capture (cout.txt) or
    pytest's."""
    out, err = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def run_modules(cfg: dict) -> list[str]:
    """The modules a run of `cfg` imports lazily (learner, env backend, demonstrations)."""
    from dm2_repro.algos import ALGOS

    modules = [f"dm2_repro.algos.{ALGOS[cfg['algo']].module}", f"dm2_repro.envs.{cfg['backend']}"]
    if cfg.get("demo"):
        modules.append("dm2_repro.demos")
    if cfg["backend"] == "smax":
        modules.append("jaxmarl")
    return modules


def preload(cfg: dict) -> None:
    """Import what the run will import, before Sacred records the sources and captures output."""
    with keep_streams():
        for name in run_modules(cfg):
            importlib.import_module(name)


def package_sources() -> list[Path]:
    """The files of every dm2_repro module loaded in this process."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and getattr(module, "__name__", "").startswith("dm2_repro"):
            path = Path(path).resolve()
            if path.suffix == ".py" and PACKAGE_DIR in path.parents:
                files.add(path)
    return sorted(files)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        # --no-optional-locks: never write the index (a concurrent `git commit` would find it locked)
        p = subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def git_info(path: Path | None = None) -> dict | None:
    """The checkout `path` (default: this package's) is in: its root, HEAD commit, and whether the code (GIT_CODE_PATHS,
    untracked files included) differs from it. None outside a git checkout or without git."""
    path = PACKAGE_DIR if path is None else Path(path)
    root = _git(["rev-parse", "--show-toplevel"], path)
    commit = _git(["rev-parse", "HEAD"], path)
    if root is None or commit is None:
        return None
    root = Path(root.strip())
    status = _git(["status", "--porcelain", "--", *GIT_CODE_PATHS], root)
    changed = [line[3:] for line in (status or "").splitlines() if line.strip()]
    return dict(url=str(root), commit=commit.strip(), dirty=bool(changed) if status is not None else None,
                changed=changed[:GIT_LISTED_CHANGES], n_changed=len(changed))


def record_sources(ex, git: dict | None) -> None:
    """Add every loaded dm2_repro module to the experiment's sources (Sacred found only those
    imported before the Experiment was made), and put the git state on the main file's source,
    which Sacred reports as experiment.repositories (url, commit, dirty) without GitPython."""
    from sacred.dependencies import Source

    for path in package_sources():
        if all(s.filename != str(path) for s in ex.sources):
            ex.sources.add(Source.create(str(path), save_git_info=False))
    main = next((s for s in ex.sources if ex.mainfile is not None and s.filename == ex.mainfile.filename), None)
    for source in ([main] if main is not None else []):
        source.repo, source.commit, source.is_dirty = ((git["url"], git["commit"], git["dirty"]) if git
                                                       else (None, None, None))


def unrecorded_sources(run) -> list[str]:
    """dm2_repro files loaded now that the run's recorded sources lack (empty when preload covers the run)."""
    recorded = {str(Path(run.experiment_info["base_dir"], name).resolve())
                for name, _ in run.experiment_info["sources"]}
    return [str(p.relative_to(PACKAGE_DIR)) for p in package_sources() if str(p) not in recorded]


# ---------------------------------------------------------------------------------------------
# Names and hyperparameters shown by the dashboards
# ---------------------------------------------------------------------------------------------

def run_label(cfg: dict) -> str:
    """algo/map/seed (and tag): what a dashboard shows as the run's name."""
    parts = [cfg["algo"], cfg["map"], f"seed{cfg['seed']}"] + ([cfg["tag"]] if cfg.get("tag") else [])
    return "/".join(re.sub(r"[^A-Za-z0-9_.=-]", "_", str(p)) for p in parts)


def hparams(cfg: dict, hp_resolved: dict) -> dict:
    """Flat scalar hyperparameters: the run's identity plus every resolved HP field."""
    flat = {k: cfg[k] for k in ("algo", "map", "seed", "scale", "backend", "reward", "tag") if k in cfg}
    flat["demo"] = Path(cfg.get("demo") or "").name
    flat.update({f"hp.{k}": v for k, v in hp_resolved.items()})
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in flat.items()}


class TensorBoardSink:
    """Event files in RUN/tb/<algo>/<map>/seed<seed>: `tensorboard --logdir results/runs` names the
    run `<id>/tb/<algo>/<map>/seed<seed>`; the hparams dashboard gets the resolved HP."""

    def __init__(self, log_dir: Path, hparam_values: dict):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        self.dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.dir))
        # into this run's own event file (SummaryWriter.add_hparams would make a sub-run of its own)
        experiment, session_start, self._session_end = hparams_summary(hparam_values, {m: 0.0 for m in TB_METRICS})
        for summary in (experiment, session_start):
            self.writer._get_file_writer().add_summary(summary)

    def log(self, name: str, value: float, step: int) -> None:
        self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer._get_file_writer().add_summary(self._session_end)
        self.writer.close()


class WandbSink:
    """A Weights & Biases run named algo/map/seed, with the config (hp_resolved included); every
    scalar is logged against `env_step`, so the curve replayed on resume needs no monotonic step."""

    def __init__(self, project: str, cfg: dict, run_dir: Path | None, sacred_id):
        import wandb

        kwargs = {} if os.environ.get("WANDB_DIR") or run_dir is None else dict(dir=str(run_dir))
        self.run = wandb.init(project=project, name=run_label(cfg), group=cfg["map"],
                              tags=[cfg["algo"], cfg["scale"], cfg["backend"]],
                              config=dict(cfg, sacred_id=sacred_id),
                              settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
                              **kwargs)
        self.run.define_metric("env_step")
        self.run.define_metric("*", step_metric="env_step")

    def log(self, name: str, value: float, step: int) -> None:
        self.run.log({name: value, "env_step": step})

    def close(self) -> None:
        self.run.finish()


def open_sinks(cfg: dict, run_dir: Path | None, sacred_id) -> list:
    """The dashboards this run writes to besides Sacred (tensorboard=, wandb_project=)."""
    sinks = []
    if cfg.get("tensorboard") and run_dir is not None:
        sinks.append(TensorBoardSink(run_dir / "tb" / run_label(cfg), hparams(cfg, cfg.get("hp_resolved") or {})))
    if cfg.get("wandb_project"):
        sinks.append(WandbSink(cfg["wandb_project"], cfg, run_dir, sacred_id))
    return sinks


def start(run, cfg: dict, run_dir: Path | None) -> None:
    """The run's first line of output (in cout.txt and the job log), and the git state with the
    changed code paths in info.json (run.json's experiment.repositories has commit and dirty)."""
    run.info["git"] = git_info()
    where = f" -> {run_dir}" if run_dir is not None else ""
    print(f"dm2_repro.train run {run._id}: {run_label(cfg)} scale={cfg['scale']} backend={cfg['backend']}{where}",
          flush=True)
