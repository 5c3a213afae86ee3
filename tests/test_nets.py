
import pytest
import torch
from torch import nn

from dm2_repro.networks import RecurrentAgentNet, agent_inputs, clip_grad_norm_per_stack, previous_actions


class Reference(nn.Module):
    """One agent's network built from plain torch modules (the paper's architecture)."""

    def __init__(self, net: RecurrentAgentNet, g: int):
        super().__init__()
        d_in = net.in_norm.weight.shape[1]
        H, A = net.hidden, net.head.weight.shape[2]
        self.ln_in = nn.LayerNorm(d_in)
        self.fc1, self.ln1 = nn.Linear(d_in, H), nn.LayerNorm(H)
        self.fc2, self.ln2 = nn.Linear(H, H), nn.LayerNorm(H)
        self.gru, self.ln_out, self.head = nn.GRUCell(H, H), nn.LayerNorm(H), nn.Linear(H, A)
        with torch.no_grad():
            for ln, src in [(self.ln_in, net.in_norm), (self.ln1, net.fc[2]), (self.ln2, net.fc[5]),
                            (self.ln_out, net.out_norm)]:
                ln.weight.copy_(src.weight[g]), ln.bias.copy_(src.bias[g])
            for lin, src in [(self.fc1, net.fc[0]), (self.fc2, net.fc[3]), (self.head, net.head)]:
                lin.weight.copy_(src.weight[g].T), lin.bias.copy_(src.bias[g])
            self.gru.weight_ih.copy_(net.gru.w_ih[g].T), self.gru.weight_hh.copy_(net.gru.w_hh[g].T)
            self.gru.bias_ih.copy_(net.gru.b_ih[g]), self.gru.bias_hh.copy_(net.gru.b_hh[g])

    def forward(self, x):  # x[B, T, d_in]
        h = torch.zeros(x.shape[0], self.gru.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            z = self.ln2(torch.relu(self.fc2(self.ln1(torch.relu(self.fc1(self.ln_in(x[:, t])))))))
            h = self.gru(z, h)
            outs.append(self.head(self.ln_out(h)))
        return torch.stack(outs, 1)


def _perturbed_net(K=3, d_in=10, A=5):
    torch.manual_seed(0)
    net = RecurrentAgentNet(K, d_in, A, hidden=16)
    with torch.no_grad():  # make LayerNorm affine and biases non-trivial so the comparison means something
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_stacked_net_equals_k_separate_modules():
    net = _perturbed_net()
    x = torch.randn(4, 6, 3, 10)
    out = net.unroll(x)
    for g in range(3):
        torch.testing.assert_close(out[:, :, g], Reference(net, g)(x[:, :, g]), rtol=1e-4, atol=1e-5)


def test_agent_loss_gives_zero_gradient_to_other_agents():
    net = _perturbed_net()
    x = torch.randn(4, 6, 3, 10)
    net.unroll(x)[:, :, 1].pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad[1].abs().sum() > 0, name
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0, name


def test_outputs_of_agent_do_not_depend_on_other_agents_inputs():
    net = _perturbed_net()
    x = torch.randn(2, 5, 3, 10)
    y = x.clone()
    y[:, :, 0] += torch.randn_like(y[:, :, 0])  # not a constant: the input LayerNorm would remove it
    a, b = net.unroll(x), net.unroll(y)
    torch.testing.assert_close(a[:, :, 1:], b[:, :, 1:])
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])


def test_per_stack_clipping_and_adam_equal_separate_optimisers():
    torch.manual_seed(1)
    net = _perturbed_net()
    refs = [Reference(net, g) for g in range(3)]
    x = torch.randn(4, 6, 3, 10) * 5
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    ref_opts = [torch.optim.Adam(r.parameters(), lr=1e-2) for r in refs]
    for _ in range(3):
        opt.zero_grad()
        (net.unroll(x) ** 2).sum().backward()
        clip_grad_norm_per_stack(net.parameters(), 0.5)
        opt.step()
        for g, (r, o) in enumerate(zip(refs, ref_opts)):
            o.zero_grad()
            (r(x[:, :, g]) ** 2).sum().backward()
            nn.utils.clip_grad_norm_(r.parameters(), 0.5)
            o.step()
    for g in range(3):
        torch.testing.assert_close(Reference(net, g)(x[:, :, g]), refs[g](x[:, :, g]), rtol=1e-3, atol=1e-4)


def test_inputs_last_action_and_agent_id():
    obs = torch.zeros(2, 3, 4)
    last = torch.tensor([[-1, 0, 2], [1, 1, -1]])
    x = agent_inputs(obs, last, n_actions=3, n_agents=3)
    assert x.shape == (2, 3, 4 + 3 + 3)
    assert x[0, 0, 4:7].sum() == 0  # no last action before the first step
    assert x[0, 2, 4:7].tolist() == [0, 0, 1]
    assert x[1, 2, 7:].tolist() == [0, 0, 1]  # agent id one-hot
    acts = torch.tensor([[[1, 2]], [[0, 0]]]).transpose(0, 1)  # [B=1, T=2, K=2]
    prev = previous_actions(acts)
    assert prev.shape == (1, 3, 2) and prev[0, 0].tolist() == [-1, -1] and prev[0, 1].tolist() == acts[0, 0].tolist()


@pytest.mark.parametrize("lengths", [None, [5, 2, 4], [1, 5, 0]])
def test_gru_sequence_backward_equals_autograd_through_the_cell(lengths):
    """GRUSequence's hand-written backward through time gives autograd's gradients (float64), on the
    whole grid and packed (sequences of different lengths, one of length 0): on every computed step
    the values of the cell run step by step, and the gradients of a loss over those steps."""
    from dm2_repro.networks import GRUSequence, Packing, gru_cell

    g = torch.Generator().manual_seed(0)
    G, T, B, H = 2, 5, 3, 4
    gi = torch.randn(G, T, B, 3 * H, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(G, B, H, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(G, H, 3 * H, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(G, 3 * H, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(G, T, B, H, generator=g, dtype=torch.float64)  # a loss that weights every output
    packing = Packing.full(T, B) if lengths is None else Packing.of(torch.tensor(lengths), T)
    real = (torch.arange(T).unsqueeze(1) < torch.tensor(lengths or [T] * B)).double()  # [T, B]

    h0_sorted = h0.index_select(1, packing.order)
    hs = packing.unpack(GRUSequence.apply(packing.pack(gi), h0_sorted, w, b, packing.counts))
    grads = torch.autograd.grad((hs * weight).sum(), (gi, h0, w, b))
    h, ref = h0, []
    for t in range(T):
        h = gru_cell(gi[:, t], h, w, b)
        ref.append(h)
    ref = torch.stack(ref, 1) * real.unsqueeze(-1)  # the steps not computed are 0
    ref_grads = torch.autograd.grad((ref * weight).sum(), (gi, h0, w, b))
    torch.testing.assert_close(hs, ref)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)
    with torch.no_grad():  # the no-grad path (rollout-free evaluation of old log-probs) gives the same values
        out = GRUSequence.apply(packing.pack(gi), h0_sorted, w, b, packing.counts)
        torch.testing.assert_close(packing.unpack(out), ref)


def test_packing_orders_rows_time_major_longest_first():
    from dm2_repro.networks import Packing

    p = Packing.of(torch.tensor([2, 3, 1]), T=4)  # [T, B] grid cell t * 3 + b
    assert p.order.tolist() == [1, 0, 2] and p.counts == (3, 2, 1)
    assert p.index.tolist() == [1, 0, 2, 4, 3, 7]
    assert not p.is_full and Packing.of(torch.tensor([4, 4]), T=4).is_full
    x = torch.arange(12.0).view(1, 4, 3, 1)
    torch.testing.assert_close(p.pack(x).flatten(), torch.tensor([1.0, 0, 2, 4, 3, 7]))
    back = p.unpack(p.pack(x))
    assert back[0, :, :, 0].tolist() == [[0, 1, 2], [3, 4, 0], [0, 7, 0], [0, 0, 0]]


def test_unroll_with_lengths_equals_the_whole_grid_on_the_steps_it_computes():
    """Packed unrolls give the grid's outputs on each sequence's first lengths[b] steps, and the same
    parameter gradients for a loss over those steps (the update's case: padded steps are masked)."""
    from dm2_repro.networks import unroll_many

    a, c = _perturbed_net(), _perturbed_net()
    x = torch.randn(3, 6, 4, 10)  # [G, T, B, d]
    lengths = torch.tensor([6, 2, 5, 1])
    mask = (torch.arange(6).unsqueeze(1) < lengths).float().view(1, 6, 4, 1)
    full = unroll_many([a, c], x)
    packed = unroll_many([a, c], x, lengths=lengths)
    for f, p in zip(full, packed):
        torch.testing.assert_close(p, f * mask)
    grads = []
    for outs in (full, packed):
        for net in (a, c):
            net.zero_grad()
        sum(((o * mask) ** 2).sum() for o in outs).backward(retain_graph=True)
        grads.append([q.grad.clone() for net in (a, c) for q in net.parameters()])
    for gf, gp in zip(*grads):
        torch.testing.assert_close(gp, gf, rtol=1e-4, atol=1e-6)


def test_a_packing_built_once_gives_what_its_lengths_give():
    """Updates build the Packing once and pass it to every epoch's unroll (shared nets: per agent)."""
    from dm2_repro.networks import Packing, shared_unroll, unroll_many

    a = _perturbed_net()
    x = torch.randn(3, 6, 4, 10)  # [G, T, B, d]
    lengths = torch.tensor([6, 2, 5, 1])
    torch.testing.assert_close(unroll_many([a], x, lengths=Packing.of(lengths, 6))[0],
                               unroll_many([a], x, lengths=lengths)[0])
    shared = _perturbed_net(K=1)
    xs = torch.randn(4, 6, 3, 10)  # [B, T, K, d]
    torch.testing.assert_close(shared_unroll([shared], xs, Packing.of_agents(lengths, 3, 6))[0],
                               shared_unroll([shared], xs, lengths)[0])
    with pytest.raises(ValueError, match=r"packing of a \[6, 4\] grid given for a \[6, 12\] input"):
        shared_unroll([shared], xs, Packing.of(lengths, 6))  # per episode, not per agent column


def test_unroll_many_equals_each_net_alone_and_keeps_gradients_apart():
    from dm2_repro.networks import unroll_many

    a, c = _perturbed_net(), _perturbed_net()
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(1.5)
    x = torch.randn(3, 6, 4, 10)  # [G, T, B, d]
    ya, yc = unroll_many([a, c], x)
    torch.testing.assert_close(ya, a.unroll_stacked(x))
    torch.testing.assert_close(yc, c.unroll_stacked(x))
    ya.sum().backward()
    assert all(p.grad is None or (p.grad == 0).all() for p in c.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in a.parameters())


def test_bench_unroll_worker_times_a_whole_grid_unroll():
    """`bench --unroll`'s worker (it runs on older trees too: only RecurrentAgentNet.unroll)."""
    from dm2_repro.bench_worker import unroll_full_grid

    out = unroll_full_grid(dict(threads=1, K=2, d_in=6, n_actions=3, T=4, B=3))
    assert set(out) == {"ms"} and out["ms"] > 0


def test_bench_profile_worker_counts_the_updates_matmuls_and_splits_its_time():
    """`bench --profile`'s worker on the smoke preset: one IPPO update's matmul FLOPs (> 0: the profiler
    saw the GRU's and the heads' matmuls), kernel-group shares that add up to 1, top ops by self time."""
    from dm2_repro.bench_worker import MATMUL_OPS, profile_update

    out = profile_update(dict(threads=1, algo="ippo", map="3s_vs_3z", scale="smoke", top=5))
    assert out["update_ms"] > 0 and out["env_steps"] > 0 and out["episodes"] >= 1
    assert out["matmul_gflop"] > 0 and out["groups"]["matmul"] > 0
    assert sum(out["groups"].values()) == pytest.approx(1.0)
    shares = [t["share"] for t in out["top"]]
    assert len(shares) == 5 and shares == sorted(shares, reverse=True) and all(t["calls"] >= 1 for t in out["top"])
    by_shape = out["matmul_shapes"]  # the matmuls' own rate per input shape, most time first
    assert by_shape and all(m["op"] in MATMUL_OPS for m in by_shape)
    assert all(m["gflop_per_s"] > 0 and m["calls"] >= 1 for m in by_shape)
    assert [m["share"] for m in by_shape] == sorted((m["share"] for m in by_shape), reverse=True)


def test_bench_repeat_reports_the_median_run_and_the_range():
    """`bench --repeat N`: a row shows the run with the median env steps/s (the lower middle of an even
    count, so every figure of the row is from one real run) and the min-max range."""
    from dm2_repro.bench import median_run, spread

    runs = [dict(env_steps_per_s=v, update_fraction=f) for v, f in [(900.0, 0.1), (300.0, 0.2), (600.0, 0.3)]]
    assert median_run(runs) == runs[2] and spread(runs) == "300-900"
    assert median_run(runs + [dict(env_steps_per_s=1200.0, update_fraction=0.4)]) == runs[2]
    assert median_run(runs[:1]) == runs[0]
