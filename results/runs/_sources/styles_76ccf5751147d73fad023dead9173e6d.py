"""Demonstration styles (the paper's Figure 3 ablation): which (team, joint episode) every agent's
e-th episode comes from, and the per-agent arrays those episodes are copied into.

Styles (K agents, E episodes per agent):
    co_concurrent        one team (one run) samples E joint episodes; agent k's e-th = joint e (DM²)
    co_nonconcurrent     one team samples K*E joint episodes; agent k gets the block [k*E, (k+1)*E)
    indep_concurrent     K runs; agent k's actor is run k's agent-k actor; the mixed team is executed
                         together for E episodes; agent k's e-th = joint e
    indep_nonconcurrent  K runs; run k's own team samples E episodes; agent k's e-th = run k's joint e

Agent k's e-th episode and agent j's e-th episode are the same joint episode only in the
concurrent styles. The arrays are those of a demonstration file (dm2_repro/demos/files.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STYLES = ("co_concurrent", "co_nonconcurrent", "indep_concurrent", "indep_nonconcurrent")


@dataclass
class StylePlan:
    teams: list[tuple[int, ...]]  # team t = the source run of each agent's actor, e.g. (0, 0, 0)
    team_of: np.ndarray  # [E, K] team of agent k's e-th episode
    episode_of: np.ndarray  # [E, K] joint episode index within that team's sampled episodes

    def episodes_of_team(self, t: int) -> int:
        """How many joint episodes team t must sample."""
        return int(self.episode_of[self.team_of == t].max()) + 1


def style_plan(style: str, n_agents: int, n_episodes: int) -> StylePlan:
    K, E = n_agents, n_episodes
    e = np.arange(E)[:, None].repeat(K, 1)  # [E, K]: e
    k = np.arange(K)[None, :].repeat(E, 0)  # [E, K]: k
    if style == "co_concurrent":
        return StylePlan([(0,) * K], np.zeros((E, K), np.int64), e)
    if style == "co_nonconcurrent":
        return StylePlan([(0,) * K], np.zeros((E, K), np.int64), k * E + e)
    if style == "indep_concurrent":
        return StylePlan([tuple(range(K))], np.zeros((E, K), np.int64), e)
    if style == "indep_nonconcurrent":
        return StylePlan([(i,) * K for i in range(K)], k, e)
    raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")


def n_sources(style: str, n_agents: int) -> int:
    return 1 if style.startswith("co_") else n_agents


def empty_demo_arrays(E: int, T: int, K: int, D: int, A: int) -> dict[str, np.ndarray]:
    return dict(obs=np.zeros((E, T + 1, K, D), np.float16), actions=np.zeros((E, T, K), np.int16),
                avail=np.ones((E, T, K, A), bool), length=np.zeros((E, K), np.int32),
                ep_return=np.zeros((E, K), np.float32), battle_won=np.zeros((E, K), bool),
                team=np.full((E, K), -1, np.int16), episode=np.full((E, K), -1, np.int32))


def scatter_team_episodes(out: dict, plan: StylePlan, team: int, first: int, chunk: dict) -> None:
    """Copy the joint episodes [first, first + n) that team `team` just sampled into the slots of
    the agents whose episodes they are. chunk: numpy obs[n, T'+1, K, D], actions[n, T', K],
    avail[n, T'+1, K, A], ep_length[n], ep_return[n], battle_won[n] (T' <= the output's T)."""
    n = chunk["actions"].shape[0]
    es, ks = np.nonzero((plan.team_of == team) & (plan.episode_of >= first) & (plan.episode_of < first + n))
    j = plan.episode_of[es, ks] - first  # row of each selected (e, k) in the chunk
    T = chunk["actions"].shape[1]
    # x[j, :, k] with j, k index arrays of equal length m -> [m, T, ...] (numpy puts the advanced dim first)
    out["obs"][es, : T + 1, ks] = chunk["obs"][j, :, ks]
    out["actions"][es, :T, ks] = chunk["actions"][j, :, ks]
    out["avail"][es, :T, ks] = chunk["avail"][j, :T, ks]
    out["length"][es, ks] = chunk["ep_length"][j]
    out["ep_return"][es, ks] = chunk["ep_return"][j]
    out["battle_won"][es, ks] = chunk["battle_won"][j]
    out["team"][es, ks] = team
    out["episode"][es, ks] = plan.episode_of[es, ks]


def finalize_demo_arrays(out: dict) -> dict:
    """Zero every padded step (obs after o_len, actions from len on; avail True there) and trim time
    to the longest episode, so padding carries no information and compresses to nothing. In place:
    the obs array is the large one."""
    length = out["length"]
    t = np.arange(out["obs"].shape[1])[None, :, None]  # [1, T+1, 1]
    out["obs"][t > length[:, None, :]] = 0
    real = t[:, :-1] < length[:, None, :]  # [E, T, K]
    out["actions"][~real] = 0
    out["avail"][~real] = True
    if not np.isfinite(out["obs"]).all():
        raise ValueError("observations do not fit float16 (inf/nan after the cast)")
    T = int(length.max())
    return {**out, "obs": out["obs"][:, : T + 1], "actions": out["actions"][:, :T], "avail": out["avail"][:, :T]}
