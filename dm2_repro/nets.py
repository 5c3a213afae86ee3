"""Per-agent networks computed in one batched kernel.

Every layer holds G stacks of weights (`weight[G, in, out]`): stack g only ever touches
input slot g, so the G stacks are mathematically G separate networks (tests check that outputs
equal separately built torch modules and that agent i's loss leaves agent j's gradient zero).
G = K gives the paper's no-sharing agents; G = 1 with agents folded into the batch gives the
parameter-shared networks of QMIX/RMAPPO.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _orthogonal_stack(weight: torch.Tensor, gain: float) -> None:
    for g in range(weight.shape[0]):  # weight[G, in, out]: each stack initialised on its own
        nn.init.orthogonal_(weight.data[g], gain=gain)


class StackedLinear(nn.Module):
    def __init__(self, n_stacks: int, d_in: int, d_out: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_stacks, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(n_stacks, d_out))
        _orthogonal_stack(self.weight, gain)

    def forward(self, x):  # x[..., G, d_in] -> [..., G, d_out]
        return torch.einsum("...gi,gio->...go", x, self.weight) + self.bias


class StackedLayerNorm(nn.Module):
    def __init__(self, n_stacks: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_stacks, d))
        self.bias = nn.Parameter(torch.zeros(n_stacks, d))

    def forward(self, x):  # x[..., G, d]
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class StackedGRUCell(nn.Module):
    """torch.nn.GRUCell's equations, one weight stack per network (gate order r, z, n as in torch)."""

    def __init__(self, n_stacks: int, d_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.w_ih = nn.Parameter(torch.empty(n_stacks, d_in, 3 * hidden))
        self.w_hh = nn.Parameter(torch.empty(n_stacks, hidden, 3 * hidden))
        self.b_ih = nn.Parameter(torch.zeros(n_stacks, 3 * hidden))
        self.b_hh = nn.Parameter(torch.zeros(n_stacks, 3 * hidden))
        _orthogonal_stack(self.w_ih, 1.0)
        _orthogonal_stack(self.w_hh, 1.0)

    def forward(self, x, h):  # x[..., G, d_in], h[..., G, H]
        gi = torch.einsum("...gi,gio->...go", x, self.w_ih) + self.b_ih
        gh = torch.einsum("...gi,gio->...go", h, self.w_hh) + self.b_hh
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class RecurrentAgentNet(nn.Module):
    """The paper's IPPO actor/critic (Appendix C, original code):
    LN -> fc64 ReLU LN -> fc64 ReLU LN -> GRU64 -> LN -> head, orthogonal init.

    n_fc=1 without LayerNorms gives PyMARL's QMIX agent (fc-GRU-fc)."""

    def __init__(self, n_stacks: int, d_in: int, d_out: int, hidden: int = 64, n_fc: int = 2,
                 layer_norm: bool = True, head_gain: float = 1.0):
        super().__init__()
        self.n_stacks, self.hidden, self.layer_norm = n_stacks, hidden, layer_norm
        norm = (lambda d: StackedLayerNorm(n_stacks, d)) if layer_norm else (lambda d: nn.Identity())
        self.in_norm = norm(d_in)
        fcs, dims = [], [d_in] + [hidden] * n_fc
        for a, b in zip(dims[:-1], dims[1:]):
            fcs += [StackedLinear(n_stacks, a, b), nn.ReLU(), norm(b)]
        self.fc = nn.Sequential(*fcs)
        self.gru = StackedGRUCell(n_stacks, hidden, hidden)
        self.out_norm = norm(hidden)
        self.head = StackedLinear(n_stacks, hidden, d_out, gain=head_gain)

    def init_hidden(self, *batch: int, device=None):
        return torch.zeros(*batch, self.n_stacks, self.hidden, device=device)

    def step(self, x, h):
        """One time step. x[B, G, d_in], h[B, G, H] -> out[B, G, d_out], h[B, G, H]."""
        h = self.gru(self.fc(self.in_norm(x)), h)
        return self.head(self.out_norm(h)), h

    def unroll(self, x, h0=None):
        """A whole sequence. x[B, T, G, d_in] -> out[B, T, G, d_out]. The feed-forward part runs
        on all steps at once; only the GRU loops over time."""
        B, T = x.shape[:2]
        z = self.fc(self.in_norm(x))
        h = self.init_hidden(B, device=x.device) if h0 is None else h0
        hs = []
        for t in range(T):
            h = self.gru(z[:, t], h)
            hs.append(h)
        return self.head(self.out_norm(torch.stack(hs, 1)))


def agent_inputs(obs, last_action, n_actions: int, n_agents: int):
    """Actor/critic input: own observation + last action (one-hot, zeros before the first step)
    + agent id (one-hot). obs[..., K, obs_dim], last_action[..., K] long with -1 for 'none'."""
    onehot_a = F.one_hot(last_action.clamp(min=0), n_actions).to(obs.dtype) * (last_action >= 0).unsqueeze(-1)
    agent_id = torch.eye(n_agents, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-1], n_agents)
    return torch.cat([obs, onehot_a, agent_id], -1)


def previous_actions(actions):
    """actions[B, T, K] -> the last action seen at each step [B, T+1, K] (-1 at t=0), the same
    convention as during rollouts (the original code fed a_t itself at t=0 in training)."""
    pad = torch.full_like(actions[:, :1], -1)
    return torch.cat([pad, actions], 1)


def clip_grad_norm_per_stack(params, max_norm: float):
    """Gradient-norm clipping done separately for each of the G networks, as K separate
    optimisers with their own clipping would do. Every param has the stack dim first."""
    params = [p for p in params if p.grad is not None]
    sq = sum(p.grad.pow(2).reshape(p.shape[0], -1).sum(1) for p in params)  # [G]
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
    return norms
