"""Per-agent networks computed in one batched kernel.

Every layer holds G stacks of weights (`weight[G, in, out]`): stack g only ever touches
input slot g, so the G stacks are mathematically G separate networks (tests check that outputs
equal separately built torch modules and that agent i's loss leaves agent j's gradient zero).
G = K gives the paper's no-sharing agents; G = 1 with agents folded into the batch gives the
parameter-shared networks of QMIX/RMAPPO.

Layout, for speed on a CPU: inside a network activations are stack-first, `x[G, M, d]` with all
rows of one stack contiguous, so every layer is one `baddbmm` with no permutes; sequences are
`x[G, T, B, d]` (M = T*B). The GRU runs as one autograd Function over the whole sequence: its
input projection is computed for all steps at once, and its backward pass through time is
written out by hand (a handful of kernels per step instead of autograd's ~30). Actor and critic
of IPPO take the same input: `unroll_many` runs several networks of one architecture as one
stack of their concatenated weights, so the time loop is paid once. Given episode lengths, an
unroll computes real steps only (`Packing`, like torch's PackedSequence): every layer runs on the
packed rows and the GRU's step t on the episodes still running, so padding after an episode's end
(1.3-1.6x the real steps of a 16-episode batch, ~4x of a 128-episode one) costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _orthogonal_stack(weight: torch.Tensor, gain: float) -> None:
    for g in range(weight.shape[0]):  # weight[G, in, out]: each stack initialised on its own
        nn.init.orthogonal_(weight.data[g], gain=gain)


def stacked_linear(x, weight, bias):
    """x[G, ..., d_in], weight[G, d_in, d_out], bias[G, d_out] -> [G, ..., d_out] (one baddbmm)."""
    G, d_in = x.shape[0], x.shape[-1]
    out = torch.baddbmm(bias.unsqueeze(1), x.reshape(G, -1, d_in), weight)
    return out.view(*x.shape[:-1], weight.shape[-1])


def stacked_layer_norm(x, weight, bias):
    """LayerNorm over the last dim with a per-stack affine: x[G, ..., d], weight/bias[G, d]."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    return torch.addcmul(bias.view(shape), F.layer_norm(x, x.shape[-1:]), weight.view(shape))


class StackedLinear(nn.Module):
    def __init__(self, n_stacks: int, d_in: int, d_out: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_stacks, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(n_stacks, d_out))
        _orthogonal_stack(self.weight, gain)

    def forward(self, x):  # stack-first: x[G, ..., d_in] -> [G, ..., d_out]
        return stacked_linear(x, self.weight, self.bias)


class StackedLayerNorm(nn.Module):
    def __init__(self, n_stacks: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_stacks, d))
        self.bias = nn.Parameter(torch.zeros(n_stacks, d))

    def forward(self, x):  # stack-first: x[G, ..., d]
        return stacked_layer_norm(x, self.weight, self.bias)


def gru_cell(gi, h, w_hh, b_hh):
    """torch.nn.GRUCell's equations (gate order r, z, n), one weight stack per network.
    gi[G, B, 3H] = x W_ih + b_ih (already projected), h[G, B, H] -> h'[G, B, H]."""
    H = h.shape[-1]
    gh = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh)
    rz = torch.sigmoid(gi[..., : 2 * H] + gh[..., : 2 * H])
    n = torch.tanh(torch.addcmul(gi[..., 2 * H:], rz[..., :H], gh[..., 2 * H:]))
    return torch.lerp(n, h, rz[..., H:])  # (1 - z) n + z h


@dataclass(frozen=True)
class Packing:
    """The steps of B sequences on a [T, B] grid that are computed: sequence b's first lengths[b].
    Packed rows are time-major with the sequences longest first within a step (the order of torch's
    PackedSequence), so step t's rows are the first counts[t] of step t-1's: the GRU runs step t on
    a prefix of its hidden state, and padded steps (after an episode's end) cost nothing."""

    index: torch.Tensor  # [N] long: the grid cell t * B + b of packed row n (empty when full: not needed)
    order: torch.Tensor  # [B] long: the sequences, longest first
    counts: tuple[int, ...]  # [T'] rows of step t, non-increasing (T' = the longest length)
    T: int
    B: int

    @staticmethod
    def full(T: int, B: int, device=None) -> "Packing":
        """Every cell: packed rows are the grid itself (no copies)."""
        order = torch.arange(B, device=device)
        return Packing(torch.empty(0, dtype=torch.long, device=device), order, (B,) * T, T, B)

    @staticmethod
    def of(lengths, T: int) -> "Packing":
        """lengths[B] (clamped to T) -> the packing of each sequence's first lengths[b] steps."""
        B = lengths.shape[0]
        lengths = lengths.long().clamp(0, T)
        if int(lengths.min()) == T:
            return Packing.full(T, B, lengths.device)
        order = torch.argsort(lengths, descending=True, stable=True)
        t = torch.arange(max(int(lengths.max()), 1), device=lengths.device)
        active = lengths[order].unsqueeze(0) > t.unsqueeze(1)  # [T', B]
        index = (t.unsqueeze(1) * B + order.unsqueeze(0))[active]  # row-major: time-major, longest first
        return Packing(index, order, tuple(active.sum(1).tolist()), T, B)

    @staticmethod
    def of_agents(lengths, n_agents: int, T: int) -> "Packing":
        """The packing of `shared_unroll`'s columns (b * K + k: agent k of episode b, every agent with
        its episode's lengths[b] steps)."""
        return Packing.of(lengths.repeat_interleave(n_agents), T)

    @staticmethod
    def to_grid(lengths, T: int, B: int, device=None) -> "Packing":
        """What an unroll computes: lengths[B] (None: every step), or a Packing built once by the
        caller (an update reuses one for all its epochs: building one syncs with the host)."""
        if isinstance(lengths, Packing):
            if (lengths.T, lengths.B) != (T, B):
                raise ValueError(f"packing of a [{lengths.T}, {lengths.B}] grid given for a [{T}, {B}] input")
            return lengths
        return Packing.full(T, B, device) if lengths is None else Packing.of(lengths.to(device), T)

    @property
    def is_full(self) -> bool:
        return len(self.counts) == self.T and all(n == self.B for n in self.counts)

    def pack(self, x):
        """x[G, T, B, d] -> packed rows [G, N, d]."""
        G, d = x.shape[0], x.shape[-1]
        flat = x.reshape(G, self.T * self.B, d)
        return flat if self.is_full else flat.index_select(1, self.index)

    def unpack(self, y):
        """packed y[G, N, d] -> [G, T, B, d], zeros on the cells not computed."""
        G, d = y.shape[0], y.shape[-1]
        if not self.is_full:
            y = y.new_zeros(G, self.T * self.B, d).index_copy(1, self.index, y)
        return y.view(G, self.T, self.B, d)


class GRUSequence(torch.autograd.Function):
    """The GRU over packed sequences with a hand-written backward through time.

    forward(gi[G, N, 3H], h0[G, B, H], w_hh[G, H, 3H], b_hh[G, 3H], counts) -> hs[G, N, H]: step t
    is packed rows off_t .. off_t + counts[t] (Packing) and continues the first counts[t] hidden
    states of step t-1 (of h0 at t = 0, h0's rows in the packing's order), with
        r, z = sigmoid(gi_rz + h W_hh,rz + b_hh,rz),  hn = h W_hh,n + b_hh,n,
        n = tanh(gi_n + r * hn),  h' = (1 - z) n + z h         (torch.nn.GRUCell's equations)
    backward, for the gradient dh of h' (from the output and from step t+1):
        da_z = dh (h - n) z (1 - z),   da_n = dh (1 - z) (1 - n^2),   da_r = da_n hn r (1 - r),
        d gi = [da_r, da_z, da_n],     d gh = [da_r, da_z, da_n r],    dh_prev = dh z + d gh W_hh^T,
        dW_hh = sum_t h_{t-1}^T d gh_t,  db_hh = sum_t d gh_t;
    a sequence that ended at step t-1 gets no gradient from step t. Each step keeps its small tensors
    (r, z, n, hn, h: [G, n_t, .]) in lists, so the backward loop works on cache-resident per-step
    tensors (on the CPUs we measured, a few small kernels per step beat full passes over big buffers).
    A test checks values and gradients against autograd through `gru_cell`, packed and full."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, counts):
        H = h0.shape[-1]
        bias = b_hh.unsqueeze(1)
        h, hs, rzs, ns, ghs = h0, [], [], [], []
        offsets = [0]
        for n in counts:
            gi_s = gi[:, offsets[-1]: offsets[-1] + n]  # [G, n, 3H]
            offsets.append(offsets[-1] + n)
            h_in = h[:, :n]
            gh = torch.baddbmm(bias, h_in, w_hh)  # [G, n, 3H]
            rz = torch.sigmoid(gi_s[..., : 2 * H] + gh[..., : 2 * H])
            n_gate = torch.tanh(torch.addcmul(gi_s[..., 2 * H:], rz[..., :H], gh[..., 2 * H:]))
            h = torch.lerp(n_gate, h_in, rz[..., H:])
            hs.append(h), rzs.append(rz), ns.append(n_gate), ghs.append(gh)
        if any(ctx.needs_input_grad):
            ctx.steps = (rzs, ns, ghs, hs, counts, offsets)
            ctx.save_for_backward(h0, w_hh)
        return torch.cat(hs, 1)  # [G, N, H]

    @staticmethod
    def backward(ctx, d_hs):
        h0, w_hh = ctx.saved_tensors
        rzs, ns, ghs, hs, counts, offsets = ctx.steps
        del ctx.steps
        H = h0.shape[-1]
        d_hs = [d_hs[:, a:b] for a, b in zip(offsets[:-1], offsets[1:])]  # T' x [G, n_t, H]
        w_hh_t = w_hh.transpose(1, 2)  # [G, 3H, H]
        d_gh, d_an = [], []  # per step: [da_r, da_z, da_n r] [G, n_t, 3H], da_n [G, n_t, H]
        T = len(counts)
        dh = d_hs[T - 1]
        for t in reversed(range(T)):
            rz, n_gate, hn = rzs[t], ns[t], ghs[t][..., 2 * H:]
            h_prev = hs[t - 1][:, : counts[t]] if t > 0 else h0[:, : counts[t]]
            dhz = dh * rz[..., H:]
            da_n = (dh - dhz) * torch.addcmul(torch.ones_like(n_gate), n_gate, n_gate, value=-1.0)
            d_rz = torch.cat([da_n * hn, dh * (h_prev - n_gate)], -1)  # dL/dr, dL/dz
            g = torch.cat([d_rz * torch.addcmul(rz, rz, rz, value=-1.0), da_n * rz[..., :H]], -1)  # sigmoid'
            d_gh.append(g), d_an.append(da_n)
            carried = dhz + d_hs[t - 1][:, : counts[t]] if t > 0 else dhz
            dh = torch.baddbmm(carried, g, w_hh_t)  # gradient of h_{t-1}'s first counts[t] rows
            rows_before = counts[t - 1] if t > 0 else h0.shape[1]
            if rows_before > counts[t]:  # sequences that ended at t-1 (or never started): no gradient from t
                rest = d_hs[t - 1][:, counts[t]:] if t > 0 else dh.new_zeros(dh.shape[0], rows_before - counts[t], H)
                dh = torch.cat([dh, rest], 1)
        d_gh, d_an = torch.cat(d_gh[::-1], 1), torch.cat(d_an[::-1], 1)  # [G, N, 3H], [G, N, H]
        h_prev = torch.cat([h0[:, : counts[0]]] + [h[:, :n] for h, n in zip(hs[:-1], counts[1:])], 1)  # [G, N, H]
        d_w_hh = torch.bmm(h_prev.transpose(1, 2), d_gh)
        d_gi = torch.cat([d_gh[..., : 2 * H], d_an], -1)  # [da_r, da_z, da_n]
        return d_gi, dh, d_w_hh, d_gh.sum(1), None


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

    def forward(self, x, h):  # stack-first: x[G, B, d_in], h[G, B, H]
        return gru_cell(stacked_linear(x, self.w_ih, self.b_ih), h, self.w_hh, self.b_hh)


class RecurrentAgentNet(nn.Module):
    """The paper's IPPO actor/critic (Appendix C, original code):
    LN -> fc64 ReLU LN -> fc64 ReLU LN -> GRU64 -> LN -> head, orthogonal init.

    n_fc=1 without LayerNorms gives PyMARL's QMIX agent (fc-GRU-fc).

    Hidden states are stack-first, h[G, N, H]. Public shapes: `step` x[N, G, d_in]; `unroll`
    x[B, T, G, d_in]; `unroll_stacked` x[G, T, B, d_in] (the internal layout, no permutes)."""

    def __init__(self, n_stacks: int, d_in: int, d_out: int, hidden: int = 64, n_fc: int = 2,
                 layer_norm: bool = True, head_gain: float = 1.0):
        super().__init__()
        self.n_stacks, self.hidden, self.layer_norm, self.n_fc = n_stacks, hidden, layer_norm, n_fc
        norm = (lambda d: StackedLayerNorm(n_stacks, d)) if layer_norm else (lambda d: nn.Identity())
        self.in_norm = norm(d_in)
        fcs, dims = [], [d_in] + [hidden] * n_fc
        for a, b in zip(dims[:-1], dims[1:]):
            fcs += [StackedLinear(n_stacks, a, b), nn.ReLU(), norm(b)]
        self.fc = nn.Sequential(*fcs)
        self.gru = StackedGRUCell(n_stacks, hidden, hidden)
        self.out_norm = norm(hidden)
        self.head = StackedLinear(n_stacks, hidden, d_out, gain=head_gain)

    def init_hidden(self, n: int, device=None):
        return torch.zeros(self.n_stacks, n, self.hidden, device=device)  # [G, N, H]

    def trunk_params(self) -> list[torch.Tensor]:
        """Every weight up to the head, in the order `_trunk` reads them."""
        norms = [self.in_norm] + [self.fc[3 * i + 2] for i in range(self.n_fc)] + [self.out_norm]
        ps = [p for m in norms if self.layer_norm for p in (m.weight, m.bias)]
        ps += [p for i in range(self.n_fc) for p in (self.fc[3 * i].weight, self.fc[3 * i].bias)]
        return ps + [self.gru.w_ih, self.gru.b_ih, self.gru.w_hh, self.gru.b_hh]

    def _trunk(self, params, x, h0, counts: tuple[int, ...] | None = None):
        """One step, x[G, B, d], or packed sequences, x[G, N, d] with counts[t] rows at step t (Packing)
        -> GRU outputs after out_norm, and the last hidden state of a step. params: trunk_params() of
        this net (possibly stacks of several)."""
        it = iter(params)
        norms = [(next(it), next(it)) for _ in range(self.n_fc + 2)] if self.layer_norm else None
        if norms:
            x = stacked_layer_norm(x, *norms[0])
        for i in range(self.n_fc):
            x = torch.relu(stacked_linear(x, next(it), next(it)))
            if norms:
                x = stacked_layer_norm(x, *norms[i + 1])
        w_ih, b_ih, w_hh, b_hh = next(it), next(it), next(it), next(it)
        gi = stacked_linear(x, w_ih, b_ih)
        h = gru_cell(gi, h0, w_hh, b_hh) if counts is None else GRUSequence.apply(gi, h0, w_hh, b_hh, counts)
        return (stacked_layer_norm(h, *norms[-1]) if norms else h), h

    def step(self, x, h):
        """One time step. x[N, G, d_in], h[G, N, H] -> out[N, G, d_out], h[G, N, H]."""
        y, h = self._trunk(self.trunk_params(), x.transpose(0, 1), h)
        return self.head(y).transpose(0, 1), h

    def unroll_stacked(self, x, h0=None, lengths=None):
        """A whole sequence in the internal layout: x[G, T, B, d_in] -> out[G, T, B, d_out]."""
        return unroll_many([self], x, h0, lengths)[0]

    def unroll(self, x, h0=None, lengths=None):
        """A whole sequence. x[B, T, G, d_in] -> out[B, T, G, d_out]."""
        return self.unroll_stacked(x.permute(2, 1, 0, 3), h0, lengths).permute(2, 1, 0, 3)


def unroll_many(nets: list[RecurrentAgentNet], x, h0=None, lengths=None) -> list[torch.Tensor]:
    """Several networks of one architecture on the same input x[G, T, B, d_in], computed as one
    stack of len(nets) * G networks (their weights concatenated; each keeps its own gradient).
    Returns each net's output [G, T, B, d_out_i]. h0: [G, B, H] shared by all, zeros if None.
    lengths[B] (or their Packing): only sequence b's first lengths[b] steps are computed (its outputs
    after them are 0): the same values there as the whole grid, since a step depends on earlier steps only."""
    net0 = nets[0]
    G, T, B = x.shape[:3]
    n = len(nets)
    packing = Packing.to_grid(lengths, T, B, x.device)
    params = [p for p in net0.trunk_params()] if n == 1 else \
        [torch.cat(ps, 0) for ps in zip(*(m.trunk_params() for m in nets))]
    h0 = net0.init_hidden(B, device=x.device) if h0 is None else h0
    x = packing.pack(x)  # [G, N, d_in]
    if not packing.is_full:
        h0 = h0.index_select(1, packing.order)
    if n > 1:
        x, h0 = x.repeat(n, 1, 1), h0.repeat(n, 1, 1)
    y, _ = net0._trunk(params, x, h0, packing.counts)  # [n*G, N, H]
    return [packing.unpack(m.head(y[i * G:(i + 1) * G])) for i, m in enumerate(nets)]


def shared_unroll(nets: list[RecurrentAgentNet], x, lengths=None) -> list[torch.Tensor]:
    """Parameter-shared (G = 1) networks over every agent, agents folded into the batch:
    x[B, T, K, d] -> each net's output [B, T, K, d_out]. Several nets on one input run as one stack.
    lengths[B]: steps computed per episode (unroll_many), the same for each of its agents; or
    Packing.of_agents(lengths, K, T), built once."""
    B, T, K, d = x.shape
    xs = x.permute(1, 0, 2, 3).reshape(1, T, B * K, d)  # [1, T, B*K, d]
    if lengths is not None and not isinstance(lengths, Packing):
        lengths = Packing.of_agents(lengths, K, T)  # column b*K + k is agent k of episode b
    return [y.view(T, B, K, -1).permute(1, 0, 2, 3) for y in unroll_many(nets, xs, lengths=lengths)]


def shared_step(net: RecurrentAgentNet, x, h):
    """One step of a parameter-shared (G = 1) net: x[N, K, d], h[1, N*K, H] -> (out[N, K, d_out], h)."""
    N, K, d = x.shape
    out, h = net.step(x.reshape(N * K, 1, d), h)
    return out.view(N, K, -1), h


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
    sq = torch.stack([torch.linalg.vector_norm(p.grad.reshape(p.shape[0], -1), dim=1) for p in params]).pow(2).sum(0)
    norms = sq.sqrt()  # [G]
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
    return norms
