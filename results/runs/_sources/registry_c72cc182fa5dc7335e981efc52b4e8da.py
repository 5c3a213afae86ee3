"""Your own environments as tasks: a name, a factory of BatchedEnvs, and per-task defaults.

    from dm2_repro.envs import register_env
    register_env("my_task", factory, defaults=dict(t_max={"cpu": 200_000, "paper": 2_000_000},
                                                    metric="return", episode_limit=50))

`factory(n_envs=..., seed=..., episode_limit=...)` returns a BatchedEnv (dm2_repro/envs/base.py);
adapters build one from a PettingZoo parallel env (`register_pettingzoo`) or a JaxMARL env
(`register_jaxmarl`). A registered name is a map everywhere: `python -m dm2_repro.train with
map=my_task backend=<its backend>`, `python -m dm2_repro.run task --maps my_task`.

Defaults (all optional):
  t_max          the budget in env steps: an int (cpu and paper scales) or {scale: steps};
                 the smoke preset's tiny budget stays unless {"smoke": ...} is given
  metric         "win_rate" (test_battle_won_mean) or "return" (test_return_mean): what figures plot
  episode_limit  steps after which an episode is cut (default: what the factory's env says)
  n_agents       the agent count, if known (else one env is built once to read it)
  any HP field   (gail_coef, test_episodes, ppo_epochs, ...): the task's own values, applied where
                 paper_tables.yaml's per-map values are (the scale presets still shrink budgets)
Every other HP value is the paper's IPPO/GAIL setting (dm2_repro.config.HP).

Subprocesses (`dm2_repro.run` starts one `dm2_repro.train` per job) must know your tasks too: put
the module that registers them on the path and name it in the environment variable DM2_TASKS
(comma-separated modules), which is imported on the first task lookup.

Reference: docs/own_task.md.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .base import BatchedEnv
from .maps import RETURN_STATISTIC_MAPS, SMAC_MAPS, MapInfo, set_task_lookup

METRICS = {"win_rate": "test_battle_won_mean", "return": "test_return_mean"}   # metric -> logged name
TASK_BACKENDS = ("toy", "pettingzoo", "jaxmarl", "custom")
TASKS_ENV_VAR = "DM2_TASKS"
TASK_KEYS = ("t_max", "metric", "episode_limit", "n_agents")   # besides HP fields
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")   # names go into file names and job keys


@dataclass(frozen=True)
class Task:
    name: str
    backend: str
    factory: Callable[..., BatchedEnv]
    metric: str = "win_rate"
    episode_limit: int | None = None
    n_agents: int | None = None
    t_max: Mapping[str, int] = field(default_factory=dict)   # scale -> budget
    hp: Mapping[str, object] = field(default_factory=dict)   # HP field -> the task's value

    def make(self, n_envs: int, seed: int = 0, episode_limit: int | None = None) -> BatchedEnv:
        return self.factory(n_envs=int(n_envs), seed=int(seed), episode_limit=episode_limit or self.episode_limit)

    @property
    def info(self) -> MapInfo:
        """Map-like view (agents as `allies`), so code written for SMAC maps reads tasks too."""
        n_agents, limit = self.n_agents, self.episode_limit
        if n_agents is None or limit is None:
            n_agents, limit = _probe(self)
        return MapInfo(("agent",) * n_agents, (), limit)


_TASKS: dict[str, Task] = {}
_PROBED: dict[str, tuple[int, int]] = {}
_plugins_loaded = False


def _probe(task: Task) -> tuple[int, int]:
    """(n_agents, episode_limit) of a task registered without them: one env, built once."""
    if task.name not in _PROBED:
        env = task.make(1)
        try:
            _PROBED[task.name] = (env.spec.n_agents, task.episode_limit or env.spec.episode_limit)
        finally:
            env.close()
    return _PROBED[task.name]


def _check_defaults(name: str, defaults: Mapping) -> tuple[dict, dict]:
    """(task-level settings, HP values) of `defaults`; ValueError naming a bad key or value."""
    from dataclasses import fields

    from dm2_repro.hp import HP, SCALES

    hp_names = {f.name for f in fields(HP)}
    unknown = sorted(set(defaults) - hp_names - set(TASK_KEYS))
    if unknown:
        raise ValueError(f"register_env({name!r}): unknown default(s) {unknown}; valid: "
                         f"{', '.join(TASK_KEYS)} or an HP field ({', '.join(sorted(hp_names))})")
    settings = {k: defaults[k] for k in TASK_KEYS if k in defaults}
    t_max = settings.get("t_max", {})
    if isinstance(t_max, int):
        t_max = {"cpu": t_max, "paper": t_max}
    if not isinstance(t_max, Mapping) or set(t_max) - set(SCALES) or \
            not all(isinstance(v, int) and v >= 1 for v in t_max.values()):
        raise ValueError(f"register_env({name!r}): t_max must be an int >= 1 or {{scale: int}} with scales "
                         f"among {', '.join(SCALES)}, got {settings.get('t_max')!r}")
    settings["t_max"] = dict(t_max)
    metric = settings.setdefault("metric", "win_rate")
    if metric not in METRICS:
        raise ValueError(f"register_env({name!r}): unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    for key in ("episode_limit", "n_agents"):
        value = settings.get(key)
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise ValueError(f"register_env({name!r}): {key} must be an int >= 1, got {value!r}")
    # t_max is a task setting (per scale, applied after the preset), never a per-map HP value
    hp = {k: v for k, v in defaults.items() if k in hp_names and k not in TASK_KEYS}
    return settings, hp


def register_env(name: str, factory: Callable[..., BatchedEnv], defaults: Mapping | None = None,
                 backend: str = "custom", replace: bool = False) -> Task:
    """Make `name` a task every CLI knows (see the module doc). `backend` labels its runs (one of
    TASK_BACKENDS; pass it as backend= to dm2_repro.train). Registering a name twice raises unless
    `replace`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"register_env: task name {name!r} must be letters, digits, '_', '.' or '-'")
    if name in SMAC_MAPS:
        raise ValueError(f"register_env: {name!r} is a SMAC map of the smax/sc2 backends; choose another name")
    if backend not in TASK_BACKENDS:
        raise ValueError(f"register_env({name!r}): unknown backend {backend!r}; valid: {', '.join(TASK_BACKENDS)}")
    if not callable(factory):
        raise ValueError(f"register_env({name!r}): factory must be callable (n_envs, seed, episode_limit)")
    if name in _TASKS and not replace:
        raise ValueError(f"register_env: task {name!r} is already registered (pass replace=True)")
    settings, hp = _check_defaults(name, dict(defaults or {}))
    task = Task(name=name, backend=backend, factory=factory, hp=hp, **settings)
    _TASKS[name] = task
    _PROBED.pop(name, None)
    return task


def _load_plugins() -> None:
    """Import the modules named in DM2_TASKS once (they call register_env)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(TASKS_ENV_VAR, "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken plugin is one line, not a traceback
            _plugins_loaded = False
            raise ValueError(f"{TASKS_ENV_VAR}: cannot import {module!r} ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())})") from None


def tasks() -> dict[str, Task]:
    """Every registered task (built-in ones first, then DM2_TASKS plugins)."""
    _load_plugins()
    return _TASKS


set_task_lookup(tasks)   # envs.maps.MAPS lists the registered tasks through this


def find_task(name: str) -> Task | None:
    return None if name in SMAC_MAPS else tasks().get(name)


def metric_of(map_name: str, scale: str | None = None) -> str:
    """What a map's figures plot and its claims test: the task's metric on a task; on a SMAC map
    "win_rate", or "return" where `scale`'s budget leaves the win rate at the floor
    (maps.RETURN_STATISTIC_MAPS)."""
    task = find_task(map_name)
    if task:
        return task.metric
    return "return" if map_name in RETURN_STATISTIC_MAPS.get(scale, ()) else "win_rate"


def metric_name(map_name: str, scale: str | None = None) -> str:
    """The logged metric of metric_of (test_battle_won_mean or test_return_mean)."""
    return METRICS[metric_of(map_name, scale)]


# ---------------------------------------------------------------------------------------------
# Adapters as tasks
# ---------------------------------------------------------------------------------------------

def register_pettingzoo(name: str, make_parallel_env: Callable[[], object], defaults: Mapping | None = None,
                        team_reward: str = "mean", replace: bool = False) -> Task:
    """A PettingZoo *parallel* env as a task: `make_parallel_env()` returns one env; the task holds
    n_envs of them (dm2_repro/envs/pettingzoo.py says how masks, state and rewards are read)."""
    def factory(n_envs: int, seed: int, episode_limit: int | None):
        from .pettingzoo import PettingZooEnv

        return PettingZooEnv(make_parallel_env, n_envs, name=name, episode_limit=episode_limit, seed=seed,
                             team_reward=team_reward)

    return register_env(name, factory, defaults, backend="pettingzoo", replace=replace)


def register_jaxmarl(name: str, env_id: str, env_kwargs: Mapping | None = None, defaults: Mapping | None = None,
                     team_reward: str = "mean", replace: bool = False) -> Task:
    """A JaxMARL env (`jaxmarl.make(env_id, **env_kwargs)`, discrete actions) as a task, stepped
    jitted and vmapped (dm2_repro/envs/jaxmarl_env.py). SMAX maps need no registration: they are
    maps of the smax backend (dm2_repro/envs/maps.py)."""
    kwargs = tuple(sorted(dict(env_kwargs or {}).items()))

    def factory(n_envs: int, seed: int, episode_limit: int | None):
        from .jaxmarl_env import JaxMARLEnv

        return JaxMARLEnv(env_id, n_envs, name=name, env_kwargs=kwargs, episode_limit=episode_limit,
                          team_reward=team_reward)

    return register_env(name, factory, defaults, backend="jaxmarl", replace=replace)


def _climbing(n_envs: int, seed: int, episode_limit: int | None):
    from .toy import ClimbingGameEnv

    return ClimbingGameEnv(n_envs, n_rounds=4)


def _mpe2_simple_spread():
    try:
        from mpe2 import simple_spread_v3
    except ImportError:
        raise ValueError("task simple_spread needs the mpe2 package: pip install -e \".[pettingzoo]\"") from None
    return simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=False)


# Built-in tasks (budgets: our choice, small enough for the cpu preset on 2 cores)
register_env("climbing4", _climbing, dict(n_agents=2, episode_limit=4, metric="win_rate",
                                          t_max={"cpu": 20_000, "paper": 200_000}), backend="toy")
register_pettingzoo("simple_spread", _mpe2_simple_spread,
                    dict(n_agents=3, episode_limit=25, metric="return", t_max={"cpu": 200_000, "paper": 2_000_000}))
register_jaxmarl("jaxmarl_simple_spread", "MPE_simple_spread_v3", {},
                 dict(n_agents=3, episode_limit=25, metric="return", t_max={"cpu": 200_000, "paper": 2_000_000}))
