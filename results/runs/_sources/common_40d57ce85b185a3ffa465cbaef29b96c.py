"""What several learners use: masking helpers and a running standardiser of the global state."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dm2_repro.training.rollout import EpisodeBatch

NEG_INF = -1e10   # the logit / Q-value of an unavailable action (finite: no NaN in softmax or argmax)


@dataclass(frozen=True)
class ActingNet:
    """What a learner acts with (read by the jitted rollout, jax_rollout.py): its recurrent agent net
    (nets.RecurrentAgentNet), whether that is one parameter-shared net over all agents (G = 1, agents
    folded into the batch) or K stacks, and the exploration epsilon of an epsilon-greedy learner
    (None: it samples its softmax policy)."""

    net: object
    shared: bool
    epsilon: float | None = None


def adam(params, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """torch.optim.Adam with its fused kernel: the same update rule, one kernel per parameter where the
    default for-loop implementation runs ~8 small ones (at these network sizes most of an Adam step's
    time; DM²'s discriminator takes 40-120 Adam steps per update). Elementwise, so one Adam over stacked
    weights is still one Adam per agent network. Float rounding may differ from the for-loop Adam in
    the last digits (tests/test_update_oracle.py compares within float tolerance)."""
    return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)


def masked_logits(logits, avail):
    """Unavailable actions (avail False) get NEG_INF: never sampled, never the argmax."""
    return logits.masked_fill(~avail, NEG_INF)


def masked_mean(x, mask, dims):
    """Mean of x over `dims` counting only real entries (mask 1; mask broadcasts against x); an
    all-padding slice gives 0."""
    return (x * mask).sum(dims) / mask.sum(dims).clamp(min=1.0)


def masked_mean_per_agent(x, mask):
    """Batch-first x[B, T, K], mask[B, T] (team steps) or [B, T, K] (each agent's own) -> [K]: each
    agent's mean over its real steps."""
    return masked_mean(x, mask.unsqueeze(-1) if mask.dim() < x.dim() else mask, (0, 1))


class RunningMeanStd:
    """Running mean/variance of feature vectors over everything seen (exact, Chan et al. merge).

    Used to standardise SMAX's global state: its raw features reach ~30 (positions, health, unit
    type ids), where SMAC's state (what PyMARL/MAPPO were tuned on) lies in [-1, 1]; raw inputs of
    that size into the hypernetworks give huge mixing weights and an unstable TD loss."""

    STD_MIN, CLIP = 1e-2, 10.0

    def __init__(self, dim: int, device=None):
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.mean = torch.zeros(dim, dtype=torch.float64, device=device)
        self.var = torch.ones(dim, dtype=torch.float64, device=device)

    def update(self, x):  # x[n, dim]
        x = x.to(torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        mean_b, var_b = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = mean_b - self.mean
        m2 = self.var * self.count + var_b * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    def __call__(self, x):  # x[..., dim] -> standardised float32, clipped (a feature constant so far has std ~0)
        std = self.var.sqrt().clamp(min=self.STD_MIN)
        return ((x - self.mean) / std).clamp(-self.CLIP, self.CLIP).to(x.dtype)

    def state_dict(self) -> dict:
        return dict(count=self.count, mean=self.mean, var=self.var)

    def load_state_dict(self, sd: dict) -> None:
        self.count, self.mean, self.var = (sd[k].to(self.mean.device, torch.float64) for k in ("count", "mean", "var"))


def real_states(batch: EpisodeBatch):
    """The states of real steps plus each episode's final state: [n, S] (t <= ep_length)."""
    T1 = batch.state.shape[1]
    keep = torch.arange(T1, device=batch.state.device).unsqueeze(0) <= batch.ep_length.unsqueeze(1)
    return batch.state[keep]
