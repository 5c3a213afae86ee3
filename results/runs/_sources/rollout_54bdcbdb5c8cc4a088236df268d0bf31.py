"""Collect whole episodes from a batched env into padded episode batches (PyMARL style)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from dm2_repro.envs.base import BatchedEnv


@dataclass
class EpisodeBatch:
    """B whole episodes padded to T steps. Step t is real iff mask[b, t]; obs[b, ep_length[b]] is the
    episode's final observation (used to bootstrap a time-limit end)."""

    obs: torch.Tensor  # [B, T+1, K, obs_dim]
    state: torch.Tensor  # [B, T+1, state_dim]
    avail: torch.Tensor  # [B, T+1, K, A] bool
    actions: torch.Tensor  # [B, T, K] long
    reward: torch.Tensor  # [B, T] team reward (0 on padding)
    terminated: torch.Tensor  # [B, T] float, 1 where the game ended (not the time limit)
    mask: torch.Tensor  # [B, T] float, 1 on real steps
    battle_won: torch.Tensor  # [B] float
    ep_return: torch.Tensor  # [B]
    ep_length: torch.Tensor  # [B] long

    STEP_FIELDS = ("obs", "state", "avail", "actions", "reward", "terminated", "mask")
    EPISODE_FIELDS = ("battle_won", "ep_return", "ep_length")

    @property
    def n_episodes(self) -> int:
        return self.obs.shape[0]

    @property
    def n_steps(self) -> int:
        return int(self.mask.sum().item())

    def lengths(self, n_steps: int):
        """[B] steps of each episode that an unroll over an n_steps-long input computes (nets.unroll_many's
        `lengths`): its real steps, and its final observation when the input includes it (n_steps = T + 1:
        values there bootstrap a time-limit end). The steps after them are padding, masked out of every loss."""
        real = self.mask.sum(1).long()
        return (real + 1).clamp(max=n_steps) if n_steps > self.actions.shape[1] else real.clamp(max=n_steps)

    def to(self, device) -> "EpisodeBatch":
        return EpisodeBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def index(self, idx) -> "EpisodeBatch":
        """Episodes idx (a LongTensor or slice), trimmed to their longest episode."""
        sub = {f.name: getattr(self, f.name)[idx] for f in fields(self)}
        T = max(int(sub["ep_length"].max().item()), 1)
        for k in self.STEP_FIELDS:
            sub[k] = sub[k][:, : T + 1] if k in ("obs", "state", "avail") else sub[k][:, :T]
        return EpisodeBatch(**sub)

    @staticmethod
    def cat(batches: list["EpisodeBatch"]) -> "EpisodeBatch":
        """Concatenate episode batches, padding time to the longest with zeros: padded steps are not
        real (mask 0), carry no reward, never terminate, and count no env steps."""
        T = max(b.actions.shape[1] for b in batches)
        out = {}
        for f in fields(EpisodeBatch):
            parts = []
            for b in batches:
                x = getattr(b, f.name)
                if f.name in EpisodeBatch.STEP_FIELDS:
                    want = T + 1 if f.name in ("obs", "state", "avail") else T
                    if x.shape[1] < want:
                        x = torch.cat([x, x.new_zeros(x.shape[0], want - x.shape[1], *x.shape[2:])], 1)
                parts.append(x)
            out[f.name] = torch.cat(parts, 0)
        return EpisodeBatch(**out)


def episode_seed(run_seed: int, counter: int) -> int:
    """Env seeds of successive env resets, derived from the run seed (so a resumed run sees the
    same episodes as an uninterrupted one)."""
    return (run_seed * 1_000_003 + counter * 7_919) % (2**31 - 1)


@torch.no_grad()
def collect(env: BatchedEnv, policy, n_episodes: int, seed_counter: tuple[int, int], greedy: bool,
            generator: torch.Generator, device="cpu") -> EpisodeBatch:
    """Roll `policy` out for n_episodes (a multiple of env.n_envs is collected; extra are dropped).

    policy: init_hidden(N) and act(obs[N,K,D], state[N,S], avail[N,K,A], last_action[N,K], hidden,
    greedy, generator) -> (actions[N,K] long, hidden)."""
    run_seed, counter = seed_counter
    N, K = env.n_envs, env.spec.n_agents
    batches = []
    for r in range(math.ceil(n_episodes / N)):
        o = env.reset(episode_seed(run_seed, counter + r))
        obs, state, avail = [o.obs], [o.state], [o.avail]
        actions, reward, term, mask = [], [], [], []
        done = np.zeros(N, bool)
        h = policy.init_hidden(N)
        last = torch.full((N, K), -1, dtype=torch.long, device=device)
        for _ in range(env.spec.episode_limit):
            a, h = policy.act(torch.from_numpy(obs[-1]).to(device), torch.from_numpy(state[-1]).to(device),
                              torch.from_numpy(avail[-1]).to(device), last, h, greedy, generator)
            a_np = a.cpu().numpy()  # one device->host copy per step
            s = env.step(a_np)
            mask.append(~done)
            actions.append(a_np)
            reward.append(s.reward)
            term.append(s.terminated)
            obs.append(s.obs), state.append(s.state), avail.append(s.avail)
            done = s.done
            last = a
            if done.all():
                break
        to = lambda xs, dt: torch.from_numpy(np.stack(xs, 1)).to(dt)  # noqa: E731  stack over time
        batches.append(EpisodeBatch(
            obs=to(obs, torch.float32), state=to(state, torch.float32), avail=to(avail, torch.bool),
            actions=to(actions, torch.long), reward=to(reward, torch.float32),
            terminated=to(term, torch.float32), mask=to(mask, torch.float32),
            battle_won=torch.from_numpy(s.battle_won.astype(np.float32)),
            ep_return=torch.from_numpy(s.ep_return), ep_length=torch.from_numpy(s.ep_length.astype(np.int64))))
    batch = EpisodeBatch.cat(batches)
    if batch.n_episodes > n_episodes:
        batch = batch.index(slice(0, n_episodes))
    return batch.to(device)
