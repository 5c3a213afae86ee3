"""Records one update of every learner family, computed by the implementation at a given commit,
as the oracle that `tests/test_update_oracle.py` holds later implementations to (same losses, same
updated parameters, float tolerance).

    git worktree add /tmp/base d13363a
    PYTHONPATH=/tmp/base python tests/oracle/make_update_oracle.py tests/oracle/update_d13363a.pt

Everything here uses only interfaces that exist at both commits (HP fields, EpisodeBatch, Demo,
make_learner, state_dict, after_rollout, update), so the same script runs against either tree.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from dm2_repro.algos import make_learner
from dm2_repro.config import HP
from dm2_repro.demos import Demo
from dm2_repro.envs.base import EnvSpec
from dm2_repro.training.rollout import EpisodeBatch

SPEC = EnvSpec("oracle", n_agents=3, n_actions=6, obs_dim=10, state_dim=8, episode_limit=12)
HP_FIELDS = dict(hidden=16, gail_hidden=16, ppo_epochs=3, gail_epochs=4, gail_batch_episodes=4,
                 gail_buffer_episodes=8, demo_episodes=6, qmix_batch_episodes=4, qmix_buffer_episodes=16,
                 target_update_episodes=3, rmappo_ppo_epochs=3, n_envs=6)
ALGOS = ("ippo", "dm2", "rmappo", "qmix", "qmix_ippo_arch")
LENGTHS = [12, 3, 7, 12, 5, 9]


def oracle_batch(spec: EnvSpec = SPEC, lengths=LENGTHS, seed: int = 0) -> EpisodeBatch:
    """Episodes of the given lengths with random obs/state, some actions unavailable, the taken
    action always available; padding zero; time-limit ends where length == episode_limit."""
    g = torch.Generator().manual_seed(seed)
    B, T, K, A = len(lengths), max(lengths), spec.n_agents, spec.n_actions
    length = torch.tensor(lengths)
    mask = (torch.arange(T)[None] < length[:, None]).float()
    real1 = (torch.arange(T + 1)[None] <= length[:, None]).float()  # steps 0..length (final obs included)
    obs = torch.randn(B, T + 1, K, spec.obs_dim, generator=g) * real1[..., None, None]
    state = torch.randn(B, T + 1, spec.state_dim, generator=g) * real1[..., None]
    avail = torch.rand(B, T + 1, K, A, generator=g) < 0.7
    actions = torch.randint(0, A, (B, T, K), generator=g)
    avail[:, :T].scatter_(-1, actions.unsqueeze(-1), True)
    avail[..., 0] |= ~avail.any(-1)
    actions = actions * mask.long().unsqueeze(-1)
    reward = torch.rand(B, T, generator=g) * mask
    terminated = torch.zeros(B, T)
    ended = length < spec.episode_limit
    terminated[torch.arange(B)[ended], length[ended] - 1] = 1.0
    won = (torch.rand(B, generator=g) < 0.5).float()
    return EpisodeBatch(obs=obs, state=state, avail=avail, actions=actions, reward=reward, terminated=terminated,
                        mask=mask, battle_won=won, ep_return=reward.sum(1), ep_length=length)


def oracle_demo(spec: EnvSpec = SPEC, E: int = 6, seed: int = 1) -> Demo:
    g = torch.Generator().manual_seed(seed)
    K, T, D, A = spec.n_agents, spec.episode_limit, spec.obs_dim, spec.n_actions
    length = torch.randint(1, T + 1, (E, K), generator=g)
    mask = (torch.arange(T)[None, :, None] < length[:, None, :]).float()
    obs = torch.randn(E, T + 1, K, D, generator=g)
    actions = torch.randint(0, A, (E, T, K), generator=g) * mask.long()
    return Demo(path=Path("oracle.npz"), sha256="0" * 64, meta={"quality": 0.5}, obs=obs.half(), actions=actions,
                avail=torch.ones(E, T, K, A, dtype=torch.bool), mask=mask, length=length,
                ep_return=torch.zeros(E, K), battle_won=torch.zeros(E, K))


def flat_params(learner) -> dict[str, torch.Tensor]:
    """Every network parameter of a learner, by state-dict path (optimiser states left out)."""
    out = {}
    for key, sd in learner.state_dict().items():
        if isinstance(sd, dict) and key not in ("counters", "buffer", "state_norm", "value_norm") and "opt" not in key:
            for name, v in sd.items():
                if isinstance(v, torch.Tensor) and v.is_floating_point():
                    out[f"{key}.{name}"] = v.detach().clone()
    return out


def run_update(algo: str, learner_factory=make_learner) -> tuple[dict, dict, dict]:
    """(initial state_dict, stats of one after_rollout+update, parameters after it)."""
    torch.manual_seed(0)
    learner = learner_factory(algo, SPEC, HP(**HP_FIELDS), "cpu", demo=oracle_demo() if algo == "dm2" else None)
    init = copy.deepcopy(learner.state_dict())  # state_dict() aliases the live parameters
    batch = oracle_batch()
    learner.t_env = 0
    learner.after_rollout(batch)
    stats = learner.update(batch)
    return init, stats, flat_params(learner)


def main(out: str) -> None:
    record = {}
    for algo in ALGOS:
        init, stats, params = run_update(algo)
        record[algo] = dict(init=init, stats=stats, params=params)
        print(algo, {k: round(v, 5) for k, v in stats.items()})
    torch.save(record, out)


if __name__ == "__main__":
    main(sys.argv[1])
