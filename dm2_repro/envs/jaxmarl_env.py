"""JaxMARL envs other than SMAX as a BatchedEnv: N envs stepped in one jitted, vmapped call.

- agents: `env.agents` in order, each with a Discrete action space (extra actions of agents with
  fewer are masked out); observations are flattened and zero-padded to the largest.
- action masks: `env.get_avail_actions(state)` where the env implements it, else all available.
- global state: the observation dict's "world_state" where the env gives one, else the agents'
  observations concatenated.
- team reward: mean (or sum) of the agents' rewards. Time limit: applied here after
  `episode_limit` steps (default: the env's `max_steps`), on `step_env` (no auto-reset); an
  episode the env ends before the limit is `terminated`. JaxMARL has no common win signal:
  `battle_won` is False (register such a task with metric="return").
"""
from __future__ import annotations

import functools

import numpy as np

from .base import BatchedFns, EnvSpec, JaxBatchedEnv

TEAM_REWARDS = ("mean", "sum")


@functools.lru_cache(maxsize=None)
def _compiled(env_id: str, env_kwargs: tuple, episode_limit: int | None, team_reward: str, name: str):
    import jax
    import jax.numpy as jnp
    import jaxmarl

    env = jaxmarl.make(env_id, **dict(env_kwargs))
    agents = list(env.agents)
    n_actions_of = []
    for agent in agents:
        space = env.action_space(agent)
        if not hasattr(space, "n"):
            raise ValueError(f"{name}: agent {agent!r} of {env_id} has a non-discrete action space; "
                             "DM² needs Discrete actions")
        n_actions_of.append(int(space.n))
    K, A = len(agents), max(n_actions_of)
    dims = [int(np.prod(env.observation_space(a).shape)) for a in agents]
    D = max(dims)
    limit = episode_limit or getattr(env, "max_steps", None)
    if not limit:
        raise ValueError(f"{name}: {env_id} has no max_steps; register the task with defaults episode_limit=...")
    obs0, state0 = env.reset(jax.random.PRNGKey(0))
    has_world = isinstance(obs0, dict) and "world_state" in obs0
    try:
        env.get_avail_actions(state0)
        has_avail = True
    except NotImplementedError:
        has_avail = False
    base_mask = jnp.array([[a < n for a in range(A)] for n in n_actions_of])   # [K, A]

    def observe(obs_dict, state):
        obs = jnp.stack([jnp.pad(obs_dict[a].reshape(-1).astype(jnp.float32), (0, D - d))
                         for a, d in zip(agents, dims)])
        world = obs_dict["world_state"].reshape(-1).astype(jnp.float32) if has_world else obs.reshape(-1)
        if has_avail:
            avail_dict = env.get_avail_actions(state)
            avail = jnp.stack([jnp.pad(avail_dict[a].astype(bool), (0, A - n)) for a, n in zip(agents, n_actions_of)])
        else:
            avail = base_mask
        return obs, world, avail

    def reset_one(key):
        obs_dict, state = env.reset(key)
        obs, world, avail = observe(obs_dict, state)
        return dict(state=state, t=jnp.int32(0), done=jnp.bool_(False), terminated=jnp.bool_(False),
                    ret=jnp.float32(0.0), obs=obs, world=world, avail=avail)

    def step_one(key, carry, actions):
        act = {a: actions[i] for i, a in enumerate(agents)}
        obs_dict, state, rewards, dones, _ = env.step_env(key, carry["state"], act)
        obs, world, avail = observe(obs_dict, state)
        values = jnp.stack([rewards[a] for a in agents]).astype(jnp.float32)
        r = values.mean() if team_reward == "mean" else values.sum()
        t = carry["t"] + 1
        ended = jnp.asarray(dones["__all__"], bool)
        at_limit = t >= limit
        new = dict(state=state, t=t, done=ended | at_limit, terminated=ended & ~at_limit, ret=carry["ret"] + r,
                   obs=obs, world=world, avail=avail)
        frozen = carry["done"]   # an episode that already ended keeps its values and gets no reward
        new = jax.tree_util.tree_map(lambda old, nw: jnp.where(frozen, old, nw), carry, new)
        return new, jnp.where(frozen, 0.0, r)

    def view(carry, reward):
        return (carry["obs"], carry["world"], carry["avail"], carry["done"], carry["terminated"], carry["ret"],
                carry["t"], reward)

    state_dim = int(np.asarray(obs0["world_state"]).size) if has_world else K * D
    spec = EnvSpec(map_name=name, n_agents=K, n_actions=A, obs_dim=D, state_dim=state_dim, episode_limit=int(limit))
    batched = BatchedFns(reset_one, step_one)
    return spec, batched.jit_reset(view), batched.jit_step(view), batched


class JaxMARLEnv(JaxBatchedEnv):
    def __init__(self, env_id: str, n_envs: int, name: str | None = None, env_kwargs: tuple = (),
                 episode_limit: int | None = None, team_reward: str = "mean"):
        if team_reward not in TEAM_REWARDS:
            raise ValueError(f"unknown team_reward {team_reward!r}; valid: {', '.join(TEAM_REWARDS)}")
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.n_envs = n_envs
        self.spec, self._reset, self._step, self.batched = _compiled(env_id, tuple(env_kwargs), episode_limit, team_reward,
                                                       name or env_id)
        self._carry = self._key = None

    def _host(self, view) -> tuple:
        obs, world, avail, done, term, ret, t, reward = (np.array(x) for x in view)
        return (obs.astype(np.float32), world.astype(np.float32), avail.astype(bool), done.astype(bool),
                term.astype(bool), np.zeros(self.n_envs, bool), ret.astype(np.float32), t.astype(np.int32),
                reward.astype(np.float32))   # no common win signal in JaxMARL: won is False
