"""A tiny cooperative game where coordination matters: the repeated climbing game.

Two agents play the climbing game (Claus & Boutilier 1998) for `n_rounds` rounds; both receive
the team payoff of their joint action:

                agent 2:  a     b     c
    agent 1:  a          11   -30     0
              b         -30     7     6
              c           0     0     5

(a, a) is the joint optimum, but an agent that tries `a` alone is punished hard, so independent
learners drift to the safe equilibria (b, b) or (c, c) and never leave them: leaving needs both
agents to move at once. Miscoordinating on `a` vs `b` (payoff -30) also "crashes" the team and ends
the episode early, so episodes have different lengths (exercising the lockstep freezing).

Each agent observes only its own previous action and the round counter (one-hots), never the
teammate's action: so an agent's observation distribution does tell whether it behaves like a
member of the optimal team (it played `a` in every round), which is what DM2's per-agent,
observation-only discriminator can see. The global state holds both previous actions and the round.

Rewards are scaled so the optimal episode return is 20 (SMAC's 0-20 range, like the other backends).
`battle_won` = the episode reached the optimal return: (a, a) in every round. The game is
deterministic: `reset(seed)` accepts a seed for the interface and ignores it.
"""
from __future__ import annotations

import numpy as np

from .base import BatchedEnv, EnvSpec, Obs, Step

ACTION_NAMES = ("a", "b", "c")
# PAYOFF[a1, a2]: the team payoff of one round of the climbing game
PAYOFF = np.array([[11.0, -30.0, 0.0],
                   [-30.0, 7.0, 6.0],
                   [0.0, 0.0, 5.0]], dtype=np.float32)
OPTIMAL_ACTION = 0  # (a, a)
CRASH_PAYOFF = -30.0  # a joint action with this payoff ends the episode


class ClimbingGameEnv(BatchedEnv):
    """N parallel repeated climbing games, K = 2 agents, A = 3 actions."""

    def __init__(self, n_envs: int, n_rounds: int = 4, crash_ends_episode: bool = True):
        self.n_envs, self.n_rounds, self.crash_ends_episode = n_envs, n_rounds, crash_ends_episode
        K, A = 2, PAYOFF.shape[0]
        self.reward_scale = 20.0 / (n_rounds * PAYOFF.max())  # optimal episode return = 20
        self.spec = EnvSpec(map_name=f"climbing{n_rounds}", n_agents=K, n_actions=A,
                            obs_dim=(n_rounds + 1) + A, state_dim=(n_rounds + 1) + K * A,
                            episode_limit=n_rounds)
        self._reset_arrays()

    # ---- internal state: every array is [N] or [N, K] -------------------------------------------
    def _reset_arrays(self):
        N, K = self.n_envs, self.spec.n_agents
        self.t = np.zeros(N, np.int32)  # rounds played
        self.last = np.full((N, K), -1, np.int64)  # previous joint action, -1 before round 1
        self.done = np.zeros(N, bool)
        self.terminated = np.zeros(N, bool)
        self.n_optimal = np.zeros(N, np.int32)  # rounds played at (a, a)
        self.ep_return = np.zeros(N, np.float32)

    def _observe(self) -> Obs:
        N, K, A = self.n_envs, self.spec.n_agents, self.spec.n_actions
        R1 = self.n_rounds + 1
        rounds = np.eye(R1, dtype=np.float32)[self.t]  # [N, R1]
        own_last = np.zeros((N, K, A), np.float32)  # [N, K, A] one-hot, zeros before round 1
        n_idx, k_idx = np.nonzero(self.last >= 0)
        own_last[n_idx, k_idx, self.last[n_idx, k_idx]] = 1.0
        obs = np.concatenate([np.broadcast_to(rounds[:, None], (N, K, R1)), own_last], -1)  # [N, K, obs_dim]
        state = np.concatenate([rounds, own_last.reshape(N, K * A)], -1)  # [N, state_dim]
        avail = np.ones((N, K, A), bool)
        return Obs(obs=obs.astype(np.float32), state=state.astype(np.float32), avail=avail)

    # ---- the BatchedEnv interface -------------------------------------------------------------
    def reset(self, seed: int = 0) -> Obs:  # deterministic game: the seed changes nothing
        self._reset_arrays()
        return self._observe()

    def step(self, actions: np.ndarray) -> Step:
        actions = np.asarray(actions, np.int64)  # [N, K]
        assert actions.shape == (self.n_envs, self.spec.n_agents), actions.shape
        live = ~self.done  # [N] environments still playing; ended ones are frozen
        payoff = PAYOFF[actions[:, 0], actions[:, 1]]  # [N]
        reward = np.where(live, payoff * self.reward_scale, 0.0).astype(np.float32)
        self.ep_return += reward
        self.n_optimal += (live & (actions == OPTIMAL_ACTION).all(1)).astype(np.int32)
        self.t = np.where(live, self.t + 1, self.t)
        self.last = np.where(live[:, None], actions, self.last)
        crashed = live & (payoff == CRASH_PAYOFF) & self.crash_ends_episode
        # the game itself ends after n_rounds (the round counter is observed, so this is a true
        # terminal, not a time-limit cut) or at a crash
        ended_now = live & (crashed | (self.t >= self.n_rounds))
        self.terminated |= ended_now
        self.done |= ended_now
        o = self._observe()
        return Step(obs=o.obs, state=o.state, avail=o.avail, reward=reward, done=self.done.copy(),
                    terminated=self.terminated.copy(), battle_won=self.n_optimal == self.n_rounds,
                    ep_return=self.ep_return.copy(), ep_length=self.t.copy())


class OptimalTeamPolicy:
    """The jointly optimal team, scripted: both agents always play `a`. Implements the rollout
    policy interface (init_hidden / act), so `rollout.collect` can record its demonstrations."""

    def __init__(self, n_agents: int = 2):
        self.n_agents = n_agents

    def init_hidden(self, n: int):
        return None

    def act(self, obs, state, avail, last_action, hidden, greedy, generator=None):
        import torch  # here, not at the top: the env itself is numpy only

        return torch.full(obs.shape[:2], OPTIMAL_ACTION, dtype=torch.long), hidden
