"""Behavioural-cloning pretraining (paper Appendix B, Figure 5; not in the original code).

Before any environment step, each agent's actor is fitted by maximum likelihood to its own
demonstration episodes, then training continues as the learner itself: IPPO (bc_ippo) or DM² with the mixed reward
(bc_dm2, the paper's "BC pretraining + DM²"). Pretraining is a capability of those algorithms
(algos/__init__.py: `pretrains`); the trainer calls `pretrain` once, before the first rollout.

The actor is recurrent and, as when acting, sees (o_t, a_{t-1} one-hot with none at t=0, agent id);
the demonstrations supply a_{t-1}, so the inputs in cloning are those the actor sees in the game.

Reference: docs/dm2.md.
"""
from __future__ import annotations

import torch

from dm2_repro.networks import agent_inputs, clip_grad_norm_per_stack, previous_actions
from .common import adam, masked_logits, masked_mean_per_agent


def bc_data(demo, n_episodes: int):
    """The first n_episodes demonstration episodes of every agent: obs[E, T+1, K, D], actions[E, T, K],
    avail[E, T, K, A], mask[E, T, K]."""
    if demo.n_episodes < n_episodes:
        raise ValueError(f"{demo.path} has {demo.n_episodes} episodes per agent, hp.demo_episodes={n_episodes} "
                         "asks for more")
    E = n_episodes
    return demo.obs[:E], demo.actions[:E], demo.avail[:E], demo.mask[:E]


def bc_nll(learner, obs, actions, avail, mask):
    """obs[n, T+1, K, D], actions/mask[n, T, K], avail[n, T, K, A] -> (NLL [K], accuracy [K]) of the
    learner's actors, every agent k on its own real demonstration steps:

        NLL_k = - E_{(o, a) ~ demo_k} [ log π_k(a_t | o_0..o_t, a_0..a_{t-1}) ]
    """
    dev, spec = learner.device, learner.spec
    obs, actions, avail, mask = obs.to(dev).float(), actions.to(dev), avail.to(dev), mask.to(dev)
    T = max(int(mask.sum(1).max().item()), 1)  # trim to the longest episode of the batch
    obs, actions, avail, mask = obs[:, :T], actions[:, :T], avail[:, :T], mask[:, :T]
    x = agent_inputs(obs, previous_actions(actions)[:, :T], spec.n_actions, spec.n_agents)
    logits = masked_logits(learner.actor.unroll(x), avail)  # [n, T, K, A], unavailable actions masked as in acting
    logp = torch.distributions.Categorical(logits=logits).log_prob(actions)  # [n, T, K]
    nll = -masked_mean_per_agent(logp, mask)
    accuracy = masked_mean_per_agent((logits.argmax(-1) == actions).float(), mask)
    return nll, accuracy


@torch.no_grad()
def bc_evaluate(learner, data) -> tuple[float, float]:
    """Mean over agents of the per-step NLL and greedy accuracy on the demonstration episodes `data`."""
    obs, actions, avail, mask = data
    nll_sum, acc_sum = 0.0, 0.0
    for chunk in torch.arange(obs.shape[0]).split(max(learner.hp.bc_batch_episodes, 1)):
        nll, acc = bc_nll(learner, obs[chunk], actions[chunk], avail[chunk], mask[chunk])
        w = mask[chunk].sum((0, 1)).to(nll.device)  # weight each batch by its real steps, per agent
        nll_sum, acc_sum = nll_sum + nll * w, acc_sum + acc * w
    steps = mask.sum((0, 1)).to(nll_sum.device)  # [K]
    return (nll_sum / steps).mean().item(), (acc_sum / steps).mean().item()


def pretrain(learner, demo, generator: torch.Generator) -> dict:
    """hp.bc_epochs passes over each agent's first hp.demo_episodes demonstration episodes in batches
    of hp.bc_batch_episodes (order drawn from `generator`), minimising sum_k NLL_k with a fresh Adam
    over the actors only; term k depends on actor k only. Returns NLL and accuracy before and after."""
    hp = learner.hp
    data = bc_data(demo, hp.demo_episodes)
    obs, actions, avail, mask = data
    nll_before, acc_before = bc_evaluate(learner, data)
    # a separate Adam: the RL phase then starts with the same fresh optimiser state as plain IPPO/DM²
    opt = adam(learner.actor.parameters(), hp.lr, hp.adam_eps)
    for _ in range(hp.bc_epochs):
        for idx in torch.randperm(obs.shape[0], generator=generator).split(hp.bc_batch_episodes):
            nll, _ = bc_nll(learner, obs[idx], actions[idx], avail[idx], mask[idx])
            opt.zero_grad()
            nll.sum().backward()  # sum over agents: actor k's gradient comes from NLL_k only
            clip_grad_norm_per_stack(learner.actor.parameters(), hp.max_grad_norm)
            opt.step()
    nll_after, acc_after = bc_evaluate(learner, data)
    return dict(bc_nll_before=nll_before, bc_nll_after=nll_after, bc_accuracy_before=acc_before,
                bc_accuracy=acc_after)
