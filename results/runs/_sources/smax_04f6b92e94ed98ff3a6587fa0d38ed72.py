"""SMAX backend (jaxmarl): N environments stepped in one jitted, vmapped call.

The time limit is handled here, not by SMAX (its `max_steps` check runs one step late relative
to SMAC's limit), so an episode ends exactly after `episode_limit` steps as in SMAC.

Rewards (`reward=`):
- "smac" (default): SMAC's default shaped reward (oxwhirl/smac `StarCraft2Env.reward_battle` with
  reward_only_positive=True, reward_death_value=10, reward_win=200, reward_defeat=0,
  reward_scale=True, reward_scale_rate=20), computed from SMAX unit health (SMAX has no shields);
  see `smac_reward`. A won episode that destroyed every enemy returns exactly 20.
- "smax": SMAX's own reward (fraction of enemy health removed / n_enemies, + 1 on a win) x 10.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .base import BatchedFns, EnvSpec, JaxBatchedEnv
from .maps import UNIT_TYPE_ID, map_info

REWARD_SCALE = 10.0  # reward="smax": SMAX returns at most 2.0 per episode; SMAC's shaped reward is scaled to 20
REWARDS = ("smac", "smax")  # valid `reward=` values, the default first

# SMAC's reward defaults (smac/env/starcraft2/starcraft2.py)
SMAC_DEATH_VALUE = 10.0
SMAC_WIN = 200.0
SMAC_SCALE_RATE = 20.0  # reward_scale=True: every step's reward is divided by max_reward / 20


def check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise ValueError(f"unknown reward {reward!r}; valid rewards for the smax backend: {', '.join(REWARDS)}")
    return reward


def smac_max_reward(max_health, n_allies: int) -> float:
    """SMAC's max_reward: n_enemies * reward_death_value + reward_win + sum of enemy max health
    (+ max shield, 0 in SMAX). `max_health`[n_units] is every unit's max health, allies first."""
    enemy_max = np.asarray(max_health, np.float64)[n_allies:]
    return float(len(enemy_max) * SMAC_DEATH_VALUE + SMAC_WIN + enemy_max.sum())


def smac_reward(prev_health, prev_alive, health, alive, won, max_health, n_allies: int):
    """SMAC's default per-step reward from the previous and current unit health/alive ([..., n_units],
    allies first; `won`[...] the battle was won at this step):
      damage = sum over enemies alive before the step of (previous health - current health)
               (an enemy that died contributes its whole previous health),
      reward = |damage + 10 * enemies died this step| + 200 * won        (ally damage/deaths ignored,
               reward_defeat = 0), divided by max_reward / 20 (see `smac_max_reward`)."""
    scale = smac_max_reward(max_health, n_allies) / SMAC_SCALE_RATE
    prev_h, prev_a = prev_health[..., n_allies:], prev_alive[..., n_allies:].astype(bool)
    alive_e = alive[..., n_allies:].astype(bool)
    cur_h = jnp.where(alive_e, health[..., n_allies:], 0.0)
    damage = jnp.sum(jnp.where(prev_a, prev_h - cur_h, 0.0), -1)
    deaths = jnp.sum(prev_a & ~alive_e, -1).astype(jnp.float32)
    r = jnp.abs(damage + SMAC_DEATH_VALUE * deaths) + jnp.where(won, SMAC_WIN, 0.0)
    return (r / scale).astype(jnp.float32)


def make_jaxmarl_env(map_name: str, max_steps: int = 10**9):
    """The raw jaxmarl SMAX env of a map, the heuristic enemy (allies first in the unit list)."""
    import jaxmarl
    from jaxmarl.environments.smax import Scenario

    info = map_info(map_name)
    unit_types = jnp.array([UNIT_TYPE_ID[u] for u in info.allies + info.enemies], dtype=jnp.uint8)
    scenario = Scenario(unit_types, len(info.allies), len(info.enemies), False, False)
    return jaxmarl.make("HeuristicEnemySMAX", scenario=scenario, see_enemy_actions=True, walls_cause_death=True,
                        attack_mode="closest", max_steps=max_steps)


def unit_max_health(env, map_name: str) -> np.ndarray:
    """Every unit's max health (allies first), from SMAX's per-unit-type table `unit_type_health`."""
    info = map_info(map_name)
    types = [UNIT_TYPE_ID[u] for u in info.allies + info.enemies]
    return np.asarray(env.unit_type_health, np.float32)[types]


@functools.lru_cache(maxsize=None)
def _compiled(map_name: str, episode_limit: int, reward: str):
    """The SMAX env and its jitted batched reset/step, shared by every SMAXEnv of this map, limit and
    reward (JAX compiles once per batch size, so tests and eval reuse the compiled code)."""
    check_reward(reward)
    env = make_jaxmarl_env(map_name)  # SMAX's own time limit is off: ours is applied below
    agents = env.agents  # ally_0 .. ally_{K-1}
    n_allies = len(map_info(map_name).allies)
    max_health = unit_max_health(env, map_name)

    def observe(obs_dict, state):
        obs = jnp.stack([obs_dict[a] for a in agents])  # [K, obs_dim]
        avail_dict = env.get_avail_actions(state)
        avail = jnp.stack([avail_dict[a] for a in agents]).astype(bool)  # [K, A]
        return obs, obs_dict["world_state"], avail

    def reset_one(key):
        obs_dict, state = env.reset(key)
        obs, world, avail = observe(obs_dict, state)
        carry = dict(state=state, t=jnp.int32(0), done=jnp.bool_(False), terminated=jnp.bool_(False),
                     won=jnp.bool_(False), ret=jnp.float32(0.0), obs=obs, world=world, avail=avail)
        return carry

    def step_one(key, carry, actions):  # actions[K]
        act = {a: actions[i] for i, a in enumerate(agents)}
        obs_dict, state, rewards, dones, _ = env.step_env(key, carry["state"], act)
        obs, world, avail = observe(obs_dict, state)
        alive = state.state.unit_alive
        allies_dead = ~jnp.any(alive[:n_allies])
        enemies_dead = ~jnp.any(alive[n_allies:])
        terminated = allies_dead | enemies_dead
        won = enemies_dead & ~allies_dead
        if reward == "smac":
            prev = carry["state"].state
            r = smac_reward(prev.unit_health, prev.unit_alive, state.state.unit_health, alive, won,
                            max_health, n_allies)
        else:
            r = (rewards[agents[0]] * REWARD_SCALE).astype(jnp.float32)
        t = carry["t"] + 1
        new = dict(state=state, t=t, done=terminated | (t >= episode_limit), terminated=terminated,
                   won=won, ret=carry["ret"] + r, obs=obs, world=world, avail=avail)
        # an episode that already ended stays frozen: same values, no reward
        frozen = carry["done"]
        new = jax.tree_util.tree_map(lambda old, nw: jnp.where(frozen, old, nw), carry, new)
        return new, jnp.where(frozen, 0.0, r)

    def view(carry, reward):
        """Everything the host needs after a step, packed into one float32 array [N, F] so that it
        crosses to numpy in one transfer (per-array transfers cost ~0.1 ms each on a CPU)."""
        N = carry["obs"].shape[0]
        parts = [carry["obs"].reshape(N, -1), carry["world"], carry["avail"].reshape(N, -1),
                 carry["done"][:, None], carry["terminated"][:, None], carry["won"][:, None], carry["ret"][:, None],
                 carry["t"][:, None], reward[:, None]]
        return jnp.concatenate([x.astype(jnp.float32) for x in parts], 1)

    batched = BatchedFns(reset_one, step_one)
    spec = EnvSpec(map_name, n_allies, env.action_spaces[agents[0]].n,
                   env.observation_space(agents[0]).shape[0], env.state_size, episode_limit)
    return spec, batched.jit_reset(view), batched.jit_step(view), batched


class SMAXEnv(JaxBatchedEnv):
    def __init__(self, map_name: str, n_envs: int, episode_limit: int | None = None, reward: str = "smac"):
        limit = episode_limit or map_info(map_name).episode_limit
        self.reward = check_reward(reward)
        self.spec, self._reset, self._step, self.batched = _compiled(map_name, int(limit), reward)
        self.n_envs = n_envs
        self._carry = None
        self._key = None

    def _host(self, packed) -> tuple:
        """The host copy of `view`'s array, split back into (obs, world, avail, done, terminated, won,
        return, t, reward) numpy arrays."""
        x = np.array(packed)  # one writable host copy; the arrays below are views of it
        K, D, S, A, N = self.spec.n_agents, self.spec.obs_dim, self.spec.state_dim, self.spec.n_actions, self.n_envs
        cuts = np.cumsum([K * D, S, K * A, 1, 1, 1, 1, 1])
        obs, world, avail, done, term, won, ret, t, reward = np.split(x, cuts, axis=1)
        return (obs.reshape(N, K, D), np.ascontiguousarray(world), avail.reshape(N, K, A) > 0.5, done[:, 0] > 0.5,
                term[:, 0] > 0.5, won[:, 0] > 0.5, ret[:, 0].copy(), t[:, 0].astype(np.int32), reward[:, 0].copy())
