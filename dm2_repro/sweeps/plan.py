"""Every paper figure as an experiment definition.

A figure is a list of `Curve`s (one legend entry in one panel). A curve is one training
configuration run over several seeds, so it expands to one `TrainJob` per seed. A learner that
imitates demonstrations depends on a `DemoJob`, which in turn depends on the expert `TrainJob`s
whose policy snapshots it samples: experts -> demonstrations -> learners.

A curve may set hyperparameters of its own (`Context.curve(..., hp={"gail_coef": 1.0})`, e.g.
c_sensitivity's sweep over c): they are merged with the user's overrides into each job's `hp`.

Jobs are plain frozen dataclasses: two figures that need the same run (fig2's IPPO baseline is also
every IPPO-demonstration expert, fig6 re-uses fig2's DM² runs) produce equal jobs, and the plan
keeps one. Nothing here runs anything: `dm2_repro.run` executes a plan, `dm2_repro.figure` and
`dm2_repro.claims` read the runs a plan names.

    plan = expand("fig2", scale="cpu", maps=["3s_vs_3z"])   # fig2's 3s_vs_3z panel only

Reference: docs/figures.md.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

from dm2_repro.algos import DEFAULT_GAIL_REWARD, GAIL_REWARDS, LEGACY_GAIL_REWARD, gail_reward_of
from dm2_repro.demos import STYLES as DEMO_STYLES
from dm2_repro.config import SCALES, make_hp, paper_tables
from dm2_repro.envs import BACKENDS, check_backend
from dm2_repro.envs.maps import MAPS, map_info

# The figure definitions: one file per figure in the repository's top-level experiments/ folder (beside
# paper_tables.yaml), not an importable package, so no name of ours shadows a user's own `experiments`. A file
# added there is a figure of its own (docs/figures.md). DM2_REPRO_EXPERIMENTS adds folders (os.pathsep-separated)
# searched after it, for definitions kept outside the repository.
EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
# the order of `all` and of --help: the paper's figures, then what this package adds beyond it
FIGURE_ORDER = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8",
                "c_sensitivity",   # beyond the paper: DM²'s GAIL reward coefficient c
                "reward_forms",    # beyond the paper: the three forms of the GAIL reward (train's gail_reward)
                "departures",      # beyond the paper: which departure of the cpu preset moves DM²
                "budget_pilot",    # beyond the paper: the runs that set each map's cpu budget
                "paper_hp_pilot",  # beyond the paper: the runs that set each map's budget at the paper's settings
                "task")            # your own task(s): IPPO and DM² on the maps given by --maps


def definition_files() -> dict[str, Path]:
    """name -> file of every definition: experiments/*.py, then $DM2_REPRO_EXPERIMENTS' folders (the first file
    of a name wins). A file whose name starts with `_` is a helper, not a figure."""
    if not EXPERIMENTS_DIR.is_dir():
        raise FileNotFoundError(f"no experiments folder at {EXPERIMENTS_DIR}: the package reads its figure "
                                "definitions from the repository it was installed from (`pip install -e .`)")
    extra = [Path(p) for p in os.environ.get("DM2_REPRO_EXPERIMENTS", "").split(os.pathsep) if p]
    files: dict[str, Path] = {}
    for folder in (EXPERIMENTS_DIR, *extra):
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_") and path.stem.isidentifier():
                files.setdefault(path.stem, path)
    return files


def figure_names() -> tuple[str, ...]:
    """Every definition's name: FIGURE_ORDER first, then the others by name."""
    found = set(definition_files())
    return (*(n for n in FIGURE_ORDER if n in found), *sorted(found - set(FIGURE_ORDER)))


FIGURES = figure_names()


# The GAIL reward form of the paper figures' DM²-family curves (Figures 2-7, c_sensitivity): the default form (the
# absorbing state, algos.DEFAULT_GAIL_REWARD) since their re-run began (2026-12-07); their earlier runs, every one
# `logit`, stay in results/ as the reward-form figure's `logit` arm and no longer feed these curves. The reward-form
# and departure figures set their forms per curve; a user's task takes train's default.
PAPER_FIGURES_GAIL_REWARD = DEFAULT_GAIL_REWARD
# The re-run (docs/figures.md's declaration) gives every DM²-family job of the paper figures the paper's
# discriminator steps per collected episode (paper_rate_gail_epochs) as an explicit override (2 per 16-episode
# update at the cpu preset), so that no run of the preset's 40 steps is taken for one of them.
PAPER_FIGURES_PAPER_RATE = True
# Their runs before the re-run (the biased arm): the log-odds reward at the preset's own discriminator rate.
# `expand(..., before_rerun=True)` builds the curves of those runs, so the claims can say how each verdict moved.
BEFORE_RERUN = {"gail_reward": LEGACY_GAIL_REWARD, "paper_rate": False}
# the "learns faster" window of the claims: the first third of the step range both curves cover (declared
# 2026-12-07, before the runs it judges: the departure ablation and the re-run of every DM²-family curve)
EARLY_WINDOW = 1 / 3


# ---------------------------------------------------------------------------------------------
# Per-scale settings of the experiment definitions
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleSettings:
    """What the figure definitions choose per preset; budgets, snapshot interval and demo size
    come from the preset itself (dm2_repro.config)."""
    n_seeds: int
    # Demonstration quality level -> expert snapshot, as a fraction of the expert's budget: the
    # paper's "5m" and "7m" are 5M and 7M of 10M steps. Easy to change: the step is snapped to
    # the preset's snapshot grid (multiples of save_policy_every up to t_max).
    demo_fractions: dict[str, float]
    max_quality_sweep: int = 10   # Figure 7: at most this many snapshots (paper: every 1M of 10M)


SCALE_SETTINGS = {
    "paper": ScaleSettings(n_seeds=len(paper_tables()["seeds"]),
                           demo_fractions={"early": 0.5, "late": 0.7}),
    # 5 seeds as the paper. With SMAC's reward IPPO on 3s_vs_3z wins ~0.1-0.4 at 15% of the cpu budget and
    # ~0.75-0.85 at 25%, then saturates: these give demonstrations of intermediate and of good quality
    "cpu": ScaleSettings(n_seeds=5, demo_fractions={"early": 0.15, "late": 0.25}),
    # the paper's per-update settings on a shorter budget: the paper's 50% / 70% snapshots
    "paper_hp": ScaleSettings(n_seeds=5, demo_fractions={"early": 0.5, "late": 0.7}),
    "smoke": ScaleSettings(n_seeds=2, demo_fractions={"early": 0.5, "late": 0.7}),
}


def _settings(scale: str) -> ScaleSettings:
    if scale not in SCALE_SETTINGS:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    return SCALE_SETTINGS[scale]


def snapshot_grid(map_name: str, scale: str, hp: Iterable[tuple[str, object]] | dict = ()) -> tuple[int, ...]:
    """Every env step at which the preset's IPPO experts save a policy snapshot; `hp`: the user's overrides given
    to every job (`run --hp`: a t_max or save_policy_every there moves the experts' snapshots)."""
    hp = make_hp("ippo", map_name, scale, dict(hp))
    if hp.t_max < hp.save_policy_every:   # e.g. a task's own tiny budget
        raise ValueError(f"{map_name} at scale {scale}: t_max {hp.t_max} < save_policy_every "
                         f"{hp.save_policy_every}, so the experts save no snapshot to take demonstrations from")
    return tuple(range(hp.save_policy_every, hp.t_max + 1, hp.save_policy_every))


def _planning_grid(map_name: str, scale: str, hp: Iterable[tuple[str, object]] | dict = ()) -> tuple[int, ...]:
    """The grid demonstrations and Figure 7's sweep are planned on: the experts' under the user's overrides; where
    those leave the experts no snapshot at all (a t_max below save_policy_every), the preset's, so that curves
    without demonstrations can still be planned (figure and claims then find no runs for the others, and `run`
    refuses them: check_demo_snapshots)."""
    try:
        return snapshot_grid(map_name, scale, hp)
    except ValueError:
        if not dict(hp):
            raise
        return snapshot_grid(map_name, scale)


def check_demo_snapshots(jobs: Iterable[Job]) -> None:
    """Every demonstration job names a snapshot its expert runs save (ValueError, one line, otherwise): a budget
    given with --hp below the preset's snapshot interval leaves the experts none to take demonstrations from."""
    for job in jobs:
        if not isinstance(job, DemoJob) or job.step is None:
            continue
        for source in job.sources:
            try:
                saved = snapshot_grid(source.map, source.scale, source.hp)
            except ValueError:   # a budget below the snapshot interval: no snapshot at all
                saved = ()
            if job.step not in saved:
                hp = make_hp(source.algo, source.map, source.scale, dict(source.hp))
                raise ValueError(f"{job.name}: its expert ({source.algo} seed {source.seed}, t_max {hp.t_max}) saves "
                                 f"no snapshot at step {job.step} (one every {hp.save_policy_every} steps): give a "
                                 f"t_max of at least {hp.save_policy_every}, or leave out the curves with "
                                 f"demonstrations (--curves)")


def _snap(grid: tuple[int, ...], step: float) -> int:
    return min(grid, key=lambda s: (abs(s - step), s))


def demo_step(map_name: str, scale: str, level: str, hp: Iterable[tuple[str, object]] | dict = ()) -> int:
    """The expert snapshot of a demonstration quality level ("early"/"late") on a map (`hp`: the user's overrides;
    the step is snapped to _planning_grid)."""
    grid = _planning_grid(map_name, scale, hp)
    fractions = _settings(scale).demo_fractions
    steps = {}
    for name in sorted(fractions, key=fractions.get):
        step = _snap(grid, fractions[name] * grid[-1])
        if steps and step <= max(steps.values()):   # keep levels distinct on a coarse grid (smoke)
            step = next((s for s in grid if s > max(steps.values())), step)
        steps[name] = step
    return steps[level]


def quality_sweep(map_name: str, scale: str, hp: Iterable[tuple[str, object]] | dict = ()) -> tuple[int, ...]:
    """Figure 7's snapshots: every one, or evenly spaced ones where there are too many (`hp`: demo_step's)."""
    grid = _planning_grid(map_name, scale, hp)
    n = _settings(scale).max_quality_sweep
    if len(grid) <= n:
        return grid
    return tuple(dict.fromkeys(_snap(grid, grid[-1] * k / n) for k in range(1, n + 1)))


def paper_rate_gail_epochs(scale: str, map_name: str) -> int:
    """Discriminator steps per PPO update at `scale` that give the paper's discriminator steps per collected
    episode on `map_name` (120 per 1024-episode update): round(120 * buffer_episodes / 1024), at least 1."""
    paper, hp = make_hp("dm2", map_name, "paper"), make_hp("dm2", map_name, scale)
    return max(1, round(paper.gail_epochs * hp.buffer_episodes / paper.buffer_episodes))


def seeds_for(n: int, scale: str = "paper") -> tuple[int, ...]:
    """The first n seeds. At paper scale: the original code's seed list, continued with 1, 2, ...
    if n exceeds it; at the smaller presets simply 1..n (short, readable run names)."""
    if scale != "paper":
        return tuple(range(1, n + 1))
    listed = list(paper_tables()["seeds"])
    extra = (s for s in range(1, 10 ** 9) if s not in listed)
    while len(listed) < n:
        listed.append(next(extra))
    return tuple(listed[:n])


def n_agents(map_name: str) -> int:
    return len(map_info(map_name).allies)


def format_steps(steps: int) -> str:
    """5_000_000 -> '5M', 25_000 -> '25k' (legends, file names, axis ticks)."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if steps >= size and steps % (size // 10) == 0:
            value = steps / size
            return f"{value:g}{unit}"
    return str(steps)


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainJob:
    """One `python -m dm2_repro.train` run: one algorithm, map and seed at one scale."""
    algo: str
    map: str
    seed: int
    scale: str
    backend: str = "smax"
    demo: "DemoJob | None" = None
    hp: tuple[tuple[str, object], ...] = ()   # overrides as sorted pairs, so the job is hashable
    tag: str = ""
    gail_reward: str = ""   # the GAIL reward's form for algos that have one (algos.GAIL_REWARDS), else ""

    def __post_init__(self):
        if self.gail_reward != gail_reward_of(self.algo, self.gail_reward or None):
            raise ValueError(f"{self.algo}: gail_reward={self.gail_reward!r}; algos with a GAIL reward take one "
                             f"of {', '.join(GAIL_REWARDS)}, the others ''")

    @property
    def key(self) -> str:
        parts = ["train", self.scale, self.backend, self.map, self.algo, f"seed{self.seed}"]
        if self.demo:
            parts.append(f"demo={self.demo.name}")
        if self.gail_reward:
            parts.append(f"gail_reward={self.gail_reward}")
        parts += [f"{k}={v}" for k, v in self.hp]
        if self.tag:
            parts.append(f"tag={self.tag}")
        return "/".join(parts)

    @property
    def deps(self) -> tuple["Job", ...]:
        return (self.demo,) if self.demo else ()

    def argv(self, prefix: list[str], results_dir: str | Path, extra: Iterable[str] = ()) -> list[str]:
        """The command line; `prefix` is e.g. [python, "-m", "dm2_repro.train"]; `extra` are Sacred
        words that do not make the job (device, threads, tracking: see dm2_repro.run)."""
        args = [*prefix, "with", f"algo={self.algo}", f"map={self.map}", f"seed={self.seed}",
                f"scale={self.scale}", f"backend={self.backend}", f"results={results_dir}"]
        if self.demo:   # relative to the results dir, as config.json records it (train resolves it there)
            args.append(f"demo={self.demo.path('').as_posix()}")
        if self.tag:
            args.append(f"tag={self.tag}")
        if self.gail_reward:
            args.append(f"gail_reward={self.gail_reward}")
        args += [f"hp.{k}={v!r}" for k, v in self.hp]
        return [*args, *extra]

    def matches(self, config: dict) -> bool:
        """Whether a Sacred run's config.json is a run of this job.

        The demonstration is compared by file name: names are deterministic in what the file
        holds, and the stored path may be relative or absolute. `results_dir` and `resume` are
        ignored: a resumed run is the same job. The GAIL reward's form counts for the algos that
        have one; a run recorded before the key existed used `logit`.
        """
        if (config.get("algo"), config.get("map"), config.get("scale"), config.get("backend")) != (
                self.algo, self.map, self.scale, self.backend):
            return False
        if config.get("seed") != self.seed or (config.get("tag") or "") != self.tag:
            return False
        demo_name = Path(config.get("demo") or "").name
        if demo_name != (self.demo.path("").name if self.demo else ""):
            return False
        if self.gail_reward and (config.get("gail_reward") or LEGACY_GAIL_REWARD) != self.gail_reward:
            return False
        return dict(config.get("hp") or {}) == dict(self.hp)


@dataclass(frozen=True)
class DemoJob:
    """One `python -m dm2_repro.demos collect` call: a demonstration file from expert runs.

    `sources` are the expert runs in agent order: for the independent styles agent i's policy
    comes from sources[i]; for the co-trained styles there is one source team.
    `step` None means the source run's last snapshot (QMIX demonstrations).
    `epsilon` is for epsilon-greedy (QMIX) sources; None for IPPO, whose stochastic policy is
    sampled.
    """
    map: str
    scale: str
    backend: str
    sources: tuple[TrainJob, ...]
    step: int | None
    style: str
    episodes: int   # per agent
    epsilon: float | None = None

    def __post_init__(self):
        if self.style not in DEMO_STYLES:
            raise ValueError(f"unknown demo style {self.style!r}; valid: {', '.join(DEMO_STYLES)}")
        if len({job.tag for job in self.sources}) > 1:   # the file name carries one tag (source_label)
            raise ValueError(f"demonstration sources with different tags: {sorted({j.tag for j in self.sources})}")

    @property
    def source_algo(self) -> str:
        return self.sources[0].algo

    @property
    def step_name(self) -> str:
        return "final" if self.step is None else format_steps(self.step)

    @property
    def source_label(self) -> str:
        """The experts' algorithm, with their tag where they are tagged runs (e.g. "ippo-fig7")."""
        tag = self.sources[0].tag
        return f"{self.source_algo}-{tag}" if tag else self.source_algo

    @property
    def name(self) -> str:
        seeds = "-".join(str(job.seed) for job in self.sources)
        name = (f"{self.map}_{self.scale}_{self.backend}_{self.source_label}_s{seeds}_"
                f"{self.step_name}_{self.style}")
        return name if self.epsilon is None else f"{name}_eps{self.epsilon:g}"

    @property
    def key(self) -> str:
        return f"demo/{self.name}"

    @property
    def deps(self) -> tuple["Job", ...]:
        return self.sources

    def path(self, results_dir: str | Path) -> Path:
        return Path(results_dir) / "demos" / f"{self.name}.npz"

    def argv(self, prefix: list[str], results_dir: str | Path, run_dirs: list[str],
             step: int) -> list[str]:
        """The command line, once the expert runs exist: their directories and the snapshot step."""
        epsilon = [] if self.epsilon is None else ["--epsilon", f"{self.epsilon:g}"]
        return [*prefix, "collect", "--runs", *run_dirs, "--step", str(step), "--style", self.style,
                "--episodes", str(self.episodes), *epsilon, "--out", str(self.path(results_dir))]


Job = Union[TrainJob, DemoJob]


# ---------------------------------------------------------------------------------------------
# Curves and figures
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """One legend entry in one panel: a training configuration over seeds."""
    figure: str
    panel: str      # panel title (a map, or a demonstration quality for fig3)
    key: str        # short id used by --curves, e.g. "dm2_ippo_early"
    label: str      # the legend name as in the paper
    map: str
    jobs: tuple[TrainJob, ...]   # one per seed
    metric: str | None = None    # what it plots: "win_rate" or "return"; None: the map's statistic at the
                                 # scale (envs.metric_of)
    color: str = ""              # curves with the same colour key share a colour across panels ("": key)
    linestyle: str = "-"         # matplotlib line style: curves of one colour in a panel differ by it

    @property
    def color_key(self) -> str:
        return self.color or self.key

    @property
    def demos(self) -> tuple[DemoJob, ...]:
        return tuple(job.demo for job in self.jobs if job.demo)


@dataclass(frozen=True)
class Context:
    """What a figure definition builds jobs from: the preset, its seeds and the backend."""
    scale: str
    backend: str
    seeds: tuple[int, ...]
    hp: tuple[tuple[str, object], ...] = ()  # user overrides given to every training job (e.g. n_envs)
    maps: tuple[str, ...] = ()  # the maps the user asked for (--maps); figures without fixed maps use them
    gail_reward: str | None = None  # the GAIL reward form of its jobs (None: train's default; FigureDef's)
    paper_rate: bool = False   # its DM²-family jobs get paper_rate_gail_epochs as an override (FigureDef's)

    def train(self, algo: str, map_name: str, seed: int, demo: DemoJob | None = None,
              hp: dict | Iterable[tuple[str, object]] = (), tag: str = "",
              gail_reward: str | None = None) -> TrainJob:
        """A training job with the context's hp overrides and, on top of them, `hp` (a curve's own
        settings, e.g. {"gail_coef": 1.0}; they win over the context's). A curve setting equal to
        the preset's value for this algorithm and map is no override and is left out (unless the
        user overrode that key), so the job is the very job of the default configuration and a
        sweep point at the default dedupes with the other figures' runs. `tag` makes a separate job of
        the same configuration (e.g. Figure 7's own expert runs). `gail_reward`: the form of the GAIL
        reward (the context's if None, train's default if that is None too; "" for algos without one)."""
        form = gail_reward_of(algo, gail_reward if gail_reward is not None else self.gail_reward)
        if self.paper_rate and form:   # the curve's own hp win over it
            hp = {"gail_epochs": paper_rate_gail_epochs(self.scale, map_name), **dict(hp)}
        return TrainJob(algo=algo, map=map_name, seed=seed, scale=self.scale, backend=self.backend, demo=demo,
                        hp=self.merged_hp(algo, map_name, hp), tag=tag, gail_reward=form)

    def merged_hp(self, algo: str, map_name: str,
                  hp: dict | Iterable[tuple[str, object]] = ()) -> tuple[tuple[str, object], ...]:
        """The context's overrides merged with a curve's (see `train`), as sorted pairs."""
        hp = dict(hp)
        if not hp:
            return self.hp
        merged = dict(self.hp)
        make_hp(algo, map_name, self.scale, hp)   # raises on an unknown key
        defaults = make_hp(algo, map_name, self.scale)
        for key, value in hp.items():
            if key not in merged and getattr(defaults, key) == value:
                continue
            merged[key] = value
        return tuple(sorted(merged.items()))

    def demo_step(self, map_name: str, level: str) -> int:
        return demo_step(map_name, self.scale, level, self.hp)

    def quality_sweep(self, map_name: str) -> tuple[int, ...]:
        return quality_sweep(map_name, self.scale, self.hp)

    def snapshot_grid(self, map_name: str) -> tuple[int, ...]:
        return _planning_grid(map_name, self.scale, self.hp)

    def demo_episodes(self, map_name: str) -> int:
        """Episodes per agent in a demonstration file: what the learners of this preset use."""
        return make_hp("dm2", map_name, self.scale).demo_episodes

    def ippo_demo(self, map_name: str, seed: int, step: int,
                  style: str = "co_concurrent", expert_tag: str = "") -> DemoJob:
        """IPPO demonstrations for the learner of `seed`.

        Co-trained styles: the expert team trained with the same seed, so seeds vary the
        demonstrations too. Independent styles need one expert run per agent; the learner of
        the j-th seed takes the experts in an order rotated by j, so seeds still see different
        mixed teams. `expert_tag`: the experts are the runs of that tag (the same configuration and seeds
        as the untagged experts, run separately).
        """
        if style.startswith("co_"):
            sources = (self.train("ippo", map_name, seed, tag=expert_tag),)
        else:
            k = n_agents(map_name)
            pool = seeds_for(k, self.scale)
            j = self.seeds.index(seed) % k
            sources = tuple(self.train("ippo", map_name, pool[(j + i) % k], tag=expert_tag) for i in range(k))
        return DemoJob(map=map_name, scale=self.scale, backend=self.backend, sources=sources,
                       step=step, style=style, episodes=self.demo_episodes(map_name))

    def qmix_demo(self, map_name: str) -> DemoJob:
        """QMIX demonstrations: the first seed's QMIX run at its last snapshot, epsilon-greedy
        with the paper's per-map epsilon (Table 1)."""
        epsilon = float(paper_tables()["maps"][map_name]["qmix_demo_epsilon"])
        return DemoJob(map=map_name, scale=self.scale, backend=self.backend,
                       sources=(self.train("qmix", map_name, self.seeds[0]),), step=None,
                       style="co_concurrent", episodes=self.demo_episodes(map_name),
                       epsilon=epsilon)

    def curve(self, figure: str, panel: str, key: str, label: str, algo: str, map_name: str,
              demo: Callable[[int], DemoJob] | None = None,
              hp: dict | Iterable[tuple[str, object]] = (), metric: str | None = None,
              color: str = "", gail_reward: str | None = None, linestyle: str = "-") -> Curve:
        """A curve of `algo` over this context's seeds; `demo(seed)` gives each seed's demo and
        `hp` the curve's own hyperparameters (merged with the context's, see `train`; the
        demonstrations' expert runs do not get them); `metric` and `color` as in Curve;
        `gail_reward` the curve's GAIL reward form (None: the context's); `linestyle` as in Curve."""
        jobs = tuple(self.train(algo, map_name, seed, demo(seed) if demo else None, hp, gail_reward=gail_reward)
                     for seed in self.seeds)
        return Curve(figure=figure, panel=panel, key=key, label=label, map=map_name, jobs=jobs, metric=metric,
                     color=color, linestyle=linestyle)


@dataclass(frozen=True)
class FigureDef:
    """What a figure module defines: its name, a title for the plot, and how to build its
    curves for a preset."""
    name: str
    title: str
    build: Callable[[Context], list[Curve]]
    n_seeds: int | None = None   # seeds per curve when the user gives none (None: the preset's)
    needs_maps: bool = False     # its maps come from --maps (the task figure): not part of `all`
    ncols: int | None = None     # panels per row of the plot (None: up to 3)
    gail_reward: str | None = None   # its learners' GAIL reward form (None: train's default, algos.DEFAULT_GAIL_REWARD)
    paper_rate: bool = False         # its DM²-family jobs at the paper's discriminator rate (Context.paper_rate)
    # the preset it runs and is drawn at unless one is named (the paper_hp pilot); None: `run` takes DEFAULT_SCALE,
    # `figure` and `claims` detect it from the runs. `run all --scale S` leaves out the figures pinned to another.
    scale: str | None = None
    # vertical lines a curve's runs call for, as (label, env step) pairs (the paper_hp pilot: where its budget rule
    # finds the plateau and the budget it sets); drawn dashed and written to the CSV as rows of kind "mark"
    marks: Callable | None = None


def definition(name: str):
    """The module of experiments/<name>.py (loaded once, as `dm2_repro_experiments.<name>`): its FIGURE and
    whatever else it defines (a definition may use another's: fig4 draws fig2's comparison on more maps)."""
    module_name = f"dm2_repro_experiments.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; valid figures: {', '.join(FIGURES)}")
    spec = importlib.util.spec_from_file_location(module_name, definition_files()[name])
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    if not isinstance(getattr(module, "FIGURE", None), FigureDef) or module.FIGURE.name != name:
        del sys.modules[module_name]
        raise ValueError(f"experiments/{name}.py must define FIGURE = FigureDef(name={name!r}, ...)")
    return module


def figure_def(name: str) -> FigureDef:
    return definition(name).FIGURE


DEFAULT_SCALE = "cpu"   # the preset of `python -m dm2_repro.run` when neither --scale nor the figure names one


def run_scale(figures: list[str], named: str | None) -> str:
    """The preset a sweep of these figures runs at: the one named, else the figures' own (FigureDef.scale, else
    DEFAULT_SCALE); a ValueError if they differ."""
    if named:
        return named
    own = {figure: figure_def(figure).scale or DEFAULT_SCALE for figure in figures}
    if len(set(own.values())) > 1:
        raise ValueError("the figures run at different presets by default ("
                         + ", ".join(f"{f}: {s}" for f, s in own.items()) + "): name one with --scale")
    return next(iter(own.values()))


# ---------------------------------------------------------------------------------------------
# Expansion into a job graph
# ---------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """The curves of one figure (after filters) and every job they need, in dependency order."""
    figure: str
    scale: str
    backend: str
    seeds: tuple[int, ...]
    curves: list[Curve]

    @property
    def learner_jobs(self) -> list[TrainJob]:
        """Every curve's training jobs, once each (curves may share jobs: a run drawn twice)."""
        return list(dict.fromkeys(job for curve in self.curves for job in curve.jobs))

    @property
    def jobs(self) -> list[Job]:
        return dependency_order(self.learner_jobs)


def dependency_order(roots: Iterable[Job]) -> list[Job]:
    """Every job the roots need, each once, prerequisites before the jobs that need them."""
    ordered: dict[Job, None] = {}

    def visit(job: Job) -> None:
        if job in ordered:
            return
        for dep in job.deps:
            visit(dep)
        ordered[job] = None

    for root in roots:
        visit(root)
    return list(ordered)


def select_curves(curves: list[Curve], maps: Iterable[str] | None = None,
                  curve_patterns: Iterable[str] | None = None) -> list[Curve]:
    """Keep the curves on `maps` whose key matches one of `curve_patterns` (shell globs)."""
    if maps:
        unknown = sorted(set(maps) - set(MAPS))
        if unknown:
            raise ValueError(f"unknown map(s) {unknown}; valid maps: {', '.join(MAPS)}")
        curves = [c for c in curves if c.map in set(maps)]
    if curve_patterns:
        patterns = list(curve_patterns)
        curves = [c for c in curves if any(fnmatch.fnmatchcase(c.key, p) for p in patterns)]
    return curves


def parse_hp(pairs: Iterable[str] | None) -> tuple[tuple[str, object], ...]:
    """['n_envs=8', 'lr=1e-3'] -> (('lr', 0.001), ('n_envs', 8)), checked against dm2_repro.config.HP."""
    import yaml

    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"hp override {pair!r} is not KEY=VALUE")
        for cast in (int, float, yaml.safe_load):  # YAML alone would read 1e-3 as a string
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
    make_hp("ippo", "3s_vs_3z", "smoke", out)  # raises on an unknown key, listing the valid ones
    return tuple(sorted(out.items()))


def expand(figure: str, scale: str, n_seeds: int | None = None, maps: Iterable[str] | None = None,
           curves: Iterable[str] | None = None, backend: str = "smax",
           hp: tuple[tuple[str, object], ...] = (), before_rerun: bool = False) -> Plan:
    """The job graph of one figure at one scale: curve x map x seed, plus prerequisites. `before_rerun`: for a
    figure whose DM²-family curves follow the re-run (rerun_figure), those curves' jobs before it (BEFORE_RERUN)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    definition = figure_def(figure)
    seeds = seeds_for(n_seeds or definition.n_seeds or _settings(scale).n_seeds, scale)
    forms = {"gail_reward": definition.gail_reward, "paper_rate": definition.paper_rate}
    if before_rerun and rerun_figure(figure):
        forms = BEFORE_RERUN
    context = Context(scale=scale, backend=backend, seeds=seeds, hp=tuple(sorted(hp)), maps=tuple(maps or ()),
                      **forms)
    chosen = select_curves(definition.build(context), maps, curves)
    for job in dependency_order(job for curve in chosen for job in curve.jobs):
        if isinstance(job, TrainJob):
            check_backend(job.map, job.backend)   # e.g. --backend toy on a SMAC map: one clear line
    return Plan(figure=figure, scale=scale, backend=backend, seeds=seeds, curves=chosen)


def rerun_figure(figure: str) -> bool:
    """Whether a figure's DM²-family curves follow the re-run switch (PAPER_FIGURES_GAIL_REWARD at the paper's
    discriminator rate): Figures 2-7 and c_sensitivity, whose earlier runs are the BEFORE_RERUN arm."""
    definition = figure_def(figure)
    return (definition.gail_reward, definition.paper_rate) == (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE) \
        and (definition.gail_reward, definition.paper_rate) != tuple(BEFORE_RERUN.values())
