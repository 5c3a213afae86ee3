"""Environment backends behind one batched interface (see base.py)."""
from __future__ import annotations

from .base import BatchedEnv, EnvSpec, Obs, Step
from .maps import MAPS, map_info

BACKENDS = ("smax", "sc2")


def make_env(backend: str, map_name: str, n_envs: int, episode_limit: int | None = None, seed: int = 0,
             reward: str = "smac") -> BatchedEnv:
    """N parallel environments of `map_name` on `backend` ('smax' default, 'sc2' = real StarCraft II).
    `reward`: 'smac' (SMAC's default reward, every backend) or, on smax only, 'smax' (SMAX's own x 10)."""
    if backend == "smax":
        map_info(map_name)  # clear error on an unknown map before any JAX work
        from .smax import SMAXEnv

        return SMAXEnv(map_name, n_envs, episode_limit, reward=reward)
    if backend == "sc2":
        if reward != "smac":  # SMAC computes its own reward
            raise ValueError(f"unknown reward {reward!r} for the sc2 backend; valid rewards: smac")
        from .sc2 import SC2Env  # imports neither pysc2 nor smac until a game is made

        return SC2Env(map_name, n_envs, episode_limit=episode_limit, seed=seed)
    raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")


__all__ = ["BatchedEnv", "EnvSpec", "Obs", "Step", "MAPS", "BACKENDS", "make_env", "map_info"]
