"""The batched multi-agent environment interface every backend implements.

N parallel environments, K agents. Episodes are collected in lockstep, PyMARL style:
`reset()` starts N new episodes; `step()` is called until every environment has ended;
an environment that has ended ignores further actions and reports reward 0, done=True and
its final values again, so a batch of N whole episodes comes out of one reset.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EnvSpec:
    map_name: str
    n_agents: int  # K
    n_actions: int  # A
    obs_dim: int
    state_dim: int
    episode_limit: int  # steps after which an episode is cut (time-limit truncation)


@dataclass
class Obs:
    """What the agents see after reset/step. All arrays are numpy."""

    obs: np.ndarray  # [N, K, obs_dim] float32
    state: np.ndarray  # [N, state_dim] float32
    avail: np.ndarray  # [N, K, A] bool: available actions


@dataclass
class Step(Obs):
    reward: np.ndarray  # [N] float32, team reward scaled to SMAC's 0-20 range; 0 after the episode ended
    done: np.ndarray  # [N] bool, the episode has ended (at this step or before)
    terminated: np.ndarray  # [N] bool, ended by the game (win/loss/draw), not by the time limit
    battle_won: np.ndarray  # [N] bool, valid where done
    ep_return: np.ndarray  # [N] float32, valid where done
    ep_length: np.ndarray  # [N] int32, valid where done


class BatchedEnv:
    """Base class; backends: SMAX (envs/smax.py, default) and StarCraft II (envs/sc2.py)."""

    spec: EnvSpec
    n_envs: int

    def reset(self, seed: int) -> Obs:  # seed: the episodes' randomness derives from it
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> Step:  # actions[N, K] int
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BatchedFns:
    """A JAX env's per-environment `reset_one(key) -> carry` and `step_one(key, carry, actions[K]) ->
    (carry, reward)` as pure batched functions of N envs (unjitted, so a whole rollout can be traced
    into one program: dm2_repro.training.jax_rollout), and the jitted reset/step the host calls step by step.
    A carry holds at least obs[K, D], world[S], avail[K, A], done, terminated, ret, t (and won where
    the env has a win signal); an env that has ended keeps its values and gets reward 0.
    The key discipline is fixed here, once for both paths: reset splits the key over the N envs;
    every step splits the running key into (next key, this step's key) and this step's key over N."""

    def __init__(self, reset_one, step_one):
        self.reset_one, self.step_one = reset_one, step_one

    def reset(self, key, n_envs: int):
        import jax

        return jax.vmap(self.reset_one)(jax.random.split(key, n_envs))

    def step(self, key, carry, actions):  # actions[N, K] -> (next key, carry, reward[N])
        import jax

        key, sub = jax.random.split(key)
        carry, reward = jax.vmap(self.step_one)(jax.random.split(sub, actions.shape[0]), carry, actions)
        return key, carry, reward

    def jit_reset(self, view):
        """jitted (key, zeros[N]) -> (carry, view(carry, reward 0)); the template's shape gives N."""
        import jax
        import jax.numpy as jnp

        def reset(key, template):
            carry = self.reset(key, template.shape[0])
            return carry, view(carry, jnp.zeros(template.shape[0]))
        return jax.jit(reset)

    def jit_step(self, view):
        """jitted (key, carry, actions[N, K]) -> (next key, carry, view(carry, reward))."""
        import jax

        def step(key, carry, actions):
            key, carry, reward = self.step(key, carry, actions)
            return key, carry, view(carry, reward)
        return jax.jit(step)


class JaxBatchedEnv(BatchedEnv):
    """N JAX envs stepped in one jitted, vmapped call (SMAX, other JaxMARL envs). A subclass sets
    `spec`, `n_envs` and the jitted `_reset(key, zeros[N]) -> (carry, view)` and
    `_step(key, carry, actions[N, K]) -> (key, carry, view)` (both made by `batched`, its BatchedFns),
    and turns a view into host arrays in `_host(view) -> (obs, world, avail, done, terminated, won,
    return, t, reward)`."""

    batched: BatchedFns

    _carry = None
    _key = None

    def _host(self, view) -> tuple:
        raise NotImplementedError

    def reset(self, seed: int) -> Obs:
        import jax
        import jax.numpy as jnp

        key, self._key = jax.random.split(jax.random.PRNGKey(seed))
        self._carry, view = self._reset(key, jnp.zeros(self.n_envs))
        obs, world, avail = self._host(view)[:3]
        return Obs(obs, world, avail)

    def step(self, actions: np.ndarray) -> Step:
        import jax.numpy as jnp

        actions = np.asarray(actions)
        if actions.shape != (self.n_envs, self.spec.n_agents):
            raise ValueError(f"actions must have shape [N={self.n_envs}, K={self.spec.n_agents}], got {actions.shape}")
        if self._carry is None:
            raise RuntimeError("call reset() before step()")
        self._key, self._carry, view = self._step(self._key, self._carry, jnp.asarray(actions, jnp.int32))
        obs, world, avail, done, term, won, ret, t, reward = self._host(view)
        return Step(obs, world, avail, reward, done, term, won, ret, t)
