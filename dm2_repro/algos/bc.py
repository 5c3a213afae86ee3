"""Behavioural-cloning pretraining (paper Appendix B, Figure 5; not in the original code).

Before any environment step, each agent's actor is fitted by maximum likelihood to its own
demonstration episodes, then training continues as the base learner: IPPO (base="ippo") or DM²
with the mixed reward (base="dm2", the paper's "BC pretraining + DM²").

The actor is recurrent and, as when acting, sees (o_t, a_{t-1} one-hot with none at t=0, agent id);
the demonstrations supply a_{t-1}, so the inputs in cloning are those the actor sees in the game.
"""
from __future__ import annotations

import torch

from ..config import HP
from ..envs.base import EnvSpec
from ..nets import agent_inputs, clip_grad_norm_per_stack, previous_actions
from .dm2 import DM2
from .ippo import IPPO, masked_logits, masked_mean_per_agent


class BCPretrainMixin:
    """pretrain(): hp.bc_epochs passes over the first hp.demo_episodes demonstration episodes in
    batches of hp.bc_batch_episodes episodes, minimising for every agent k

        NLL_k = - E_{(o, a) ~ demo_k} [ log π_k(a_t | o_0..o_t, a_0..a_{t-1}) ]

    over agent k's real demonstration steps (a [K] vector; term k depends on actor k only)."""

    def _bc_data(self):
        E = self.hp.demo_episodes
        if self.demo.n_episodes < E:
            raise ValueError(f"{self.demo.path} has {self.demo.n_episodes} episodes per agent, hp.demo_episodes={E} "
                             "asks for more")
        d = self.demo
        return d.obs[:E], d.actions[:E], d.avail[:E], d.mask[:E]

    def bc_nll(self, obs, actions, avail, mask):
        """obs[n, T+1, K, D], actions/mask[n, T, K], avail[n, T, K, A] -> (NLL [K], accuracy [K])."""
        dev = self.device
        obs, actions, avail, mask = obs.to(dev).float(), actions.to(dev), avail.to(dev), mask.to(dev)
        T = max(int(mask.sum(1).max().item()), 1)  # trim to the longest episode of the batch
        obs, actions, avail, mask = obs[:, :T], actions[:, :T], avail[:, :T], mask[:, :T]
        x = agent_inputs(obs, previous_actions(actions)[:, :T], self.spec.n_actions, self.spec.n_agents)
        logits = masked_logits(self.actor.unroll(x), avail)  # [n, T, K, A], unavailable actions masked as in acting
        logp = torch.distributions.Categorical(logits=logits).log_prob(actions)  # [n, T, K]
        nll = -masked_mean_per_agent(logp, mask)
        accuracy = masked_mean_per_agent((logits.argmax(-1) == actions).float(), mask)
        return nll, accuracy

    @torch.no_grad()
    def bc_evaluate(self) -> tuple[float, float]:
        """Mean over agents of the per-step NLL and greedy accuracy on the demonstration episodes used."""
        obs, actions, avail, mask = self._bc_data()
        steps = mask.sum((0, 1))  # [K]
        nll_sum, acc_sum = 0.0, 0.0
        for chunk in torch.arange(obs.shape[0]).split(max(self.hp.bc_batch_episodes, 1)):
            nll, acc = self.bc_nll(obs[chunk], actions[chunk], avail[chunk], mask[chunk])
            w = mask[chunk].sum((0, 1)).to(nll.device)  # weight each batch by its real steps, per agent
            nll_sum, acc_sum = nll_sum + nll * w, acc_sum + acc * w
        steps = steps.to(nll_sum.device)
        return (nll_sum / steps).mean().item(), (acc_sum / steps).mean().item()

    def pretrain(self) -> dict:
        hp = self.hp
        obs, actions, avail, mask = self._bc_data()
        nll_before, acc_before = self.bc_evaluate()
        # a separate Adam: the RL phase then starts with the same fresh optimiser state as plain IPPO/DM²
        opt = torch.optim.Adam(self.actor.parameters(), lr=hp.lr, eps=hp.adam_eps)
        for _ in range(hp.bc_epochs):
            for idx in torch.randperm(obs.shape[0], generator=self.generator).split(hp.bc_batch_episodes):
                nll, _ = self.bc_nll(obs[idx], actions[idx], avail[idx], mask[idx])
                opt.zero_grad()
                nll.sum().backward()  # sum over agents: actor k's gradient comes from NLL_k only
                clip_grad_norm_per_stack(self.actor.parameters(), hp.max_grad_norm)
                opt.step()
        nll_after, acc_after = self.bc_evaluate()
        return dict(bc_nll_before=nll_before, bc_nll_after=nll_after, bc_accuracy_before=acc_before,
                    bc_accuracy=acc_after)


class BCIPPO(BCPretrainMixin, IPPO):
    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None):
        super().__init__(spec, hp, device)
        if demo is None:
            raise ValueError("BC pretraining needs a demonstration (demo=...)")
        self.demo = demo
        # own RNG for the batch order, seeded from torch's global RNG (seeded by the trainer)
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))


class BCDM2(BCPretrainMixin, DM2):
    """DM² (state-only discriminator, mixed reward) after BC; DM2 owns demo and generator."""


def BCPretrained(spec: EnvSpec, hp: HP, device="cpu", demo=None, base: str = "ippo"):
    """The registry's constructor (algos/__init__.py: bc_ippo, bc_dm2): a base learner with pretrain()."""
    if base == "ippo":
        return BCIPPO(spec, hp, device, demo=demo)
    if base == "dm2":
        return BCDM2(spec, hp, device, demo=demo, discriminator_input="obs", reward="mixed")
    raise ValueError(f"BCPretrained base must be 'ippo' or 'dm2', got {base!r}")
