"""Environment backends behind one batched interface (see base.py).

SMAC maps (dm2_repro/envs/maps.py) run on `smax` (default) or `sc2`; registered tasks
(dm2_repro/envs/registry.py: the toy game, PettingZoo and JaxMARL adapters, your own envs) on the
backend they were registered with.
"""
from __future__ import annotations

from .base import BatchedEnv, EnvSpec, Obs, Step
from .maps import MAPS, PAPER_MAPS, SMAC_MAPS, map_info
from .registry import (METRICS, TASK_BACKENDS, Task, find_task, metric_name, metric_of, register_env,
                       register_jaxmarl, register_pettingzoo, tasks)

SMAC_BACKENDS = ("smax", "sc2")   # the backends of SMAC maps
BACKENDS = SMAC_BACKENDS + TASK_BACKENDS   # every backend name (the one home of the list)


def check_backend(map_name: str, backend: str, reward: str = "smac") -> None:
    """ValueError (one line) unless `backend` runs `map_name` (with `reward`)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    task = find_task(map_name)
    if task is not None and backend != task.backend:
        raise ValueError(f"map {map_name!r} is a task of backend {task.backend!r}, not {backend!r}: "
                         f"pass backend={task.backend}")
    if task is not None and reward != "smac":
        raise ValueError(f"reward={reward!r} applies to the smax backend; task {map_name!r} has its own reward")
    if task is None and backend not in SMAC_BACKENDS:
        map_info(map_name)  # an unknown map is named as such
        raise ValueError(f"map {map_name!r} is a SMAC map: valid backends {', '.join(SMAC_BACKENDS)}, "
                         f"not {backend!r}")


def make_env(backend: str, map_name: str, n_envs: int, episode_limit: int | None = None, seed: int = 0,
             reward: str = "smac") -> BatchedEnv:
    """N parallel environments of `map_name` on `backend` ('smax' default, 'sc2' = real StarCraft II,
    a registered task's own backend). `reward`: 'smac' (SMAC's default reward on SMAC maps; a task's
    own reward on a task) or, on smax only, 'smax' (SMAX's own x 10)."""
    map_info(map_name)  # clear error on an unknown map before any JAX work
    check_backend(map_name, backend, reward)
    task = find_task(map_name)
    if task is not None:
        return task.make(n_envs, seed=seed, episode_limit=episode_limit)
    if backend == "smax":
        from .smax import SMAXEnv

        return SMAXEnv(map_name, n_envs, episode_limit, reward=reward)
    if reward != "smac":  # SMAC computes its own reward
        raise ValueError(f"unknown reward {reward!r} for the sc2 backend; valid rewards: smac")
    from .sc2 import SC2Env  # imports neither pysc2 nor smac until a game is made

    return SC2Env(map_name, n_envs, episode_limit=episode_limit, seed=seed)


__all__ = ["BatchedEnv", "EnvSpec", "Obs", "Step", "MAPS", "PAPER_MAPS", "SMAC_MAPS", "BACKENDS", "SMAC_BACKENDS",
           "TASK_BACKENDS", "METRICS", "Task", "check_backend", "find_task", "make_env", "map_info", "metric_name",
           "metric_of", "register_env", "register_jaxmarl", "register_pettingzoo", "tasks"]
