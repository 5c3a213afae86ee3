"""PettingZoo *parallel* envs as a BatchedEnv: n_envs copies stepped in lockstep.

- agents: `possible_agents`, in that order; every agent needs a Discrete action space. Agents
  with fewer actions than the largest space have the extra actions masked out.
- action masks: `infos[agent]["action_mask"]`, or the observation dict's "action_mask" (then its
  "observation" is the observation); else every action is available. An agent that has left the
  episode observes zeros and has only action 0 available (SMAC's convention for dead units).
- global state: `env.state()` where the env implements it, else the agents' observations
  concatenated.
- team reward: the mean (or sum, `team_reward="sum"`) of the agents' rewards of the step.
- episode end: every agent terminated or truncated (or none left), or `episode_limit` steps
  (default: the env's `max_cycles`); `terminated` means ended by termination only (no agent
  truncated, limit not reached), so a time limit bootstraps. `battle_won`: any agent's
  `infos[agent]["battle_won"]` (SMAC's name) at the last step, else False.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import BatchedEnv, EnvSpec, Obs, Step

TEAM_REWARDS = ("mean", "sum")


def _split_obs(raw) -> tuple[np.ndarray, np.ndarray | None]:
    """(flat observation, action mask from the observation dict or None)."""
    if isinstance(raw, dict) and "observation" in raw:
        mask = raw.get("action_mask")
        return np.asarray(raw["observation"], np.float32).ravel(), None if mask is None else np.asarray(mask, bool)
    return np.asarray(raw, np.float32).ravel(), None


def _episode_seed(seed: int, i: int) -> int:
    return int((int(seed) * 1_000_003 + i) % (2 ** 31 - 1))


class PettingZooEnv(BatchedEnv):
    def __init__(self, make: Callable[[], object], n_envs: int, name: str = "pettingzoo",
                 episode_limit: int | None = None, seed: int = 0, team_reward: str = "mean"):
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if team_reward not in TEAM_REWARDS:
            raise ValueError(f"unknown team_reward {team_reward!r}; valid: {', '.join(TEAM_REWARDS)}")
        self.n_envs, self.team_reward = n_envs, team_reward
        self.envs = [make() for _ in range(n_envs)]
        first = self.envs[0]
        self.agents = list(first.possible_agents)
        self.n_actions_of = []
        for agent in self.agents:
            space = first.action_space(agent)
            if not hasattr(space, "n"):
                raise ValueError(f"{name}: agent {agent!r} has action space {space}; DM² needs Discrete actions")
            self.n_actions_of.append(int(space.n))
        limit = episode_limit or getattr(first.unwrapped, "max_cycles", None) or getattr(first, "max_cycles", None)
        if not limit:
            raise ValueError(f"{name}: the env has no max_cycles; register the task with defaults episode_limit=...")
        raw, _ = first.reset(seed=_episode_seed(seed, 0))
        self.obs_dims = [_split_obs(raw[a])[0].size if a in raw else 0 for a in self.agents]
        self._has_state = self._state_of(first) is not None
        K, D = len(self.agents), max(self.obs_dims)
        state_dim = self._state_of(first).size if self._has_state else K * D
        self.spec = EnvSpec(map_name=name, n_agents=K, n_actions=max(self.n_actions_of), obs_dim=D,
                            state_dim=state_dim, episode_limit=int(limit))
        self._started = False

    @staticmethod
    def _state_of(env) -> np.ndarray | None:
        try:
            state = env.state()
        except (NotImplementedError, AttributeError):
            return None
        return None if state is None else np.asarray(state, np.float32).ravel()

    def _observe(self, i: int, raw: dict, infos: dict) -> None:
        """Write env i's observation, mask and state into the batch arrays."""
        K, A = self.spec.n_agents, self.spec.n_actions
        self.obs[i] = 0.0
        self.avail[i] = False
        for k, agent in enumerate(self.agents):
            if agent not in raw:  # left the episode
                self.avail[i, k, 0] = True
                continue
            obs, mask = _split_obs(raw[agent])
            self.obs[i, k, :obs.size] = obs
            info_mask = (infos.get(agent) or {}).get("action_mask") if isinstance(infos, dict) else None
            mask = mask if mask is not None else info_mask
            n = self.n_actions_of[k]
            self.avail[i, k, :n] = True if mask is None else np.asarray(mask, bool).ravel()[:n]
            if not self.avail[i, k].any():
                self.avail[i, k, 0] = True
        self.state[i] = self._state_of(self.envs[i]) if self._has_state else self.obs[i].reshape(-1)
        assert self.avail.shape == (self.n_envs, K, A)

    def reset(self, seed: int) -> Obs:
        N, K, D, A = self.n_envs, self.spec.n_agents, self.spec.obs_dim, self.spec.n_actions
        self.obs = np.zeros((N, K, D), np.float32)
        self.avail = np.zeros((N, K, A), bool)
        self.state = np.zeros((N, self.spec.state_dim), np.float32)
        self.done = np.zeros(N, bool)
        self.terminated = np.zeros(N, bool)
        self.won = np.zeros(N, bool)
        self.ep_return = np.zeros(N, np.float32)
        self.t = np.zeros(N, np.int32)
        for i, env in enumerate(self.envs):
            raw, infos = env.reset(seed=_episode_seed(seed, i))
            self._observe(i, raw, infos)
        self._started = True
        return Obs(self.obs.copy(), self.state.copy(), self.avail.copy())

    def step(self, actions: np.ndarray) -> Step:
        actions = np.asarray(actions)
        if actions.shape != (self.n_envs, self.spec.n_agents):
            raise ValueError(f"actions must have shape [N={self.n_envs}, K={self.spec.n_agents}], got {actions.shape}")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        reward = np.zeros(self.n_envs, np.float32)
        for i, env in enumerate(self.envs):
            if self.done[i]:  # ended episodes stay frozen
                continue
            live = [a for a in self.agents if a in env.agents]
            act = {a: int(actions[i, self.agents.index(a)]) for a in live}
            raw, rewards, terms, truncs, infos = env.step(act)
            values = [float(rewards.get(a, 0.0)) for a in live]
            r = (np.mean(values) if self.team_reward == "mean" else np.sum(values)) if values else 0.0
            reward[i] = r
            self.ep_return[i] += r
            self.t[i] += 1
            all_ended = not env.agents or all(terms.get(a, False) or truncs.get(a, False) for a in live)
            at_limit = self.t[i] >= self.spec.episode_limit
            if all_ended or at_limit:
                self.done[i] = True
                self.terminated[i] = all_ended and not at_limit and not any(truncs.get(a, False) for a in live)
                self.won[i] = any(bool((infos.get(a) or {}).get("battle_won", False)) for a in live)
            self._observe(i, raw, infos)
        return Step(self.obs.copy(), self.state.copy(), self.avail.copy(), reward, self.done.copy(),
                    self.terminated.copy(), self.won.copy(), self.ep_return.copy(), self.t.copy())

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:  # closing a rendering backend must not mask the run's own result
                pass
