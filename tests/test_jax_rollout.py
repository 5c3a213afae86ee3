"""The jitted rollout (jax_rollout.py) against the host loop (rollout.collect): the same episodes when
the policy is greedy, the policy's own action distribution when it samples, and the same numbers
from the same generator (a resumed run)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dm2_repro.training import jax_rollout
from dm2_repro.algos import make_learner
from dm2_repro.config import make_hp
from dm2_repro.networks import agent_inputs, shared_step
from dm2_repro.training.rollout import EpisodeBatch, collect

from .conftest import TEST_MAP

ALGOS = ("ippo", "rmappo", "qmix")


def learner(algo, spec, seed=0, head_scale=30.0):
    """A smoke-preset learner whose acting head is scaled up, so its action preferences are far from
    uniform (an untrained head is nearly uniform: sampling bugs would hide) and its argmax has no
    near-ties that float rounding could flip."""
    torch.manual_seed(seed)
    L = make_learner(algo, spec, make_hp(algo, TEST_MAP, "smoke", {}))
    with torch.no_grad():
        L.acting_net().net.head.weight.mul_(head_scale)
    return L


def assert_same_batch(a: EpisodeBatch, b: EpisodeBatch):
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and x.dtype == y.dtype, name
        assert torch.allclose(x.float(), y.float(), atol=1e-5), name


@pytest.mark.parametrize("algo", ALGOS)
def test_greedy_episodes_equal_the_host_loops(smax_env, algo):
    L = learner(algo, smax_env.spec)
    # 6 episodes from 4 envs: two rounds, the second cut, padded and trimmed as on the host path
    host = collect(smax_env, L, 6, (3, 5), greedy=True, generator=torch.Generator().manual_seed(0))
    fast = jax_rollout.collect(smax_env, L, 6, (3, 5), greedy=True, generator=torch.Generator().manual_seed(0))
    assert host.n_episodes == 6 and host.mask.sum(1).min() > 0
    assert_same_batch(host, fast)


@pytest.mark.parametrize("algo", ["ippo", "qmix"])
def test_forward_equals_the_torch_step(spec, algo):
    """Logits / Q-values of the JAX forward equal the torch net's over three steps with the hidden
    state carried (stacked K networks for IPPO, one shared net for QMIX)."""
    import jax.numpy as jnp

    L = learner(algo, spec, head_scale=1.0)
    acting = L.acting_net()
    net, N, K = acting.net, 5, spec.n_agents
    params = [jnp.asarray(p) for p in jax_rollout.net_params(acting)]
    h_t = net.init_hidden(N * K if acting.shared else N)
    h_j = jnp.zeros(h_t.shape)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(N, K, net.fc[0].weight.shape[1], generator=g)  # weight[G, d_in, d_out]
        with torch.no_grad():
            out_t, h_t = shared_step(net, x, h_t) if acting.shared else net.step(x, h_t)
        xj = jnp.asarray(x.numpy())
        xj = xj.reshape(1, N * K, -1) if acting.shared else xj.transpose(1, 0, 2)
        out_j, h_j = jax_rollout.forward(params, xj, h_j, net.layer_norm, net.n_fc)
        out_j = np.asarray(out_j).reshape(N, K, -1) if acting.shared else np.asarray(out_j).transpose(1, 0, 2)
        np.testing.assert_allclose(out_j, out_t.numpy(), atol=1e-5)
        np.testing.assert_allclose(np.asarray(h_j), h_t.numpy(), atol=1e-5)


def first_step_probs(L, batch: EpisodeBatch):
    """pi(. | first observation) of every episode and agent from the torch actor: [B, K, A]."""
    with torch.no_grad():
        B = batch.n_episodes
        last = torch.full((B, batch.actions.shape[2]), -1, dtype=torch.long)
        x = agent_inputs(batch.obs[:, 0], last, L.spec.n_actions, L.spec.n_agents)
        logits, _ = L.actor.step(x, L.init_hidden(B))
        return torch.softmax(logits.masked_fill(~batch.avail[:, 0], -1e10), -1)


def test_sampled_actions_follow_the_policy_and_are_available(smax_env):
    L = learner("ippo", smax_env.spec, head_scale=300.0)
    batch = jax_rollout.collect(smax_env, L, 240, (11, 0), greedy=False, generator=torch.Generator().manual_seed(2))
    real = batch.mask.bool()
    chosen_avail = batch.avail[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)  # [B, T, K]
    assert chosen_avail[real].all()
    probs = first_step_probs(L, batch)  # [B, K, A]
    counts = torch.nn.functional.one_hot(batch.actions[:, 0], probs.shape[-1]).float().sum(0)  # [K, A]
    expected = probs.sum(0)
    # Poisson-binomial counts: |count - expected| within 5 standard deviations for every (agent, action)
    sd = (probs * (1 - probs)).sum(0).sqrt()
    bound = 5 * sd + 1.0
    assert ((counts - expected).abs() <= bound).all(), (counts, expected)
    # the test can tell: sampling uniformly over the available actions would break the bound
    avail0 = batch.avail[:, 0].float()
    uniform = (avail0 / avail0.sum(-1, keepdim=True)).sum(0)
    assert ((uniform - expected).abs() > 2 * bound).any()


def test_epsilon_greedy_explores_uniformly_over_available_actions(smax_env):
    L = learner("qmix", smax_env.spec)
    L.set_fixed_epsilon(1.0)  # every action random
    batch = jax_rollout.collect(smax_env, L, 200, (12, 0), greedy=False, generator=torch.Generator().manual_seed(3))
    avail0 = batch.avail[:, 0].float()  # [B, K, A]
    expected = (avail0 / avail0.sum(-1, keepdim=True)).sum(0)
    counts = torch.nn.functional.one_hot(batch.actions[:, 0], avail0.shape[-1]).float().sum(0)
    assert ((counts - expected).abs() <= 5 * expected.sqrt() + 1.0).all(), (counts, expected)
    L.set_fixed_epsilon(0.0)  # epsilon 0 acts greedily: the host loop's episodes
    host = collect(smax_env, L, 4, (12, 0), greedy=False, generator=torch.Generator().manual_seed(3))
    fast = jax_rollout.collect(smax_env, L, 4, (12, 0), greedy=False, generator=torch.Generator().manual_seed(3))
    assert_same_batch(host, fast)


def test_the_same_generator_draws_the_same_episodes(smax_env):
    L = learner("ippo", smax_env.spec)
    a, b, c = (jax_rollout.collect(smax_env, L, 4, (7, 0), greedy=False, generator=torch.Generator().manual_seed(s))
               for s in (4, 4, 5))
    assert_same_batch(a, b)
    assert not torch.equal(a.actions[:, :3], c.actions[:, :3])


def test_unknown_rollout_and_host_envs_are_refused():
    from dm2_repro.envs import make_env

    with pytest.raises(ValueError, match="valid: python, jax"):
        jax_rollout.collector("gpu")
    toy = make_env("toy", "climbing4", 2)
    with pytest.raises(ValueError, match="rollout=jax needs a JAX env"):
        jax_rollout.check_rollout("jax", toy)


def test_a_train_run_with_the_jitted_rollout_records_it_and_resume_keeps_it(tmp_path):
    from dm2_repro import train, validate

    r = train.run(dict(algo="ippo", map=TEST_MAP, seed=3, scale="smoke", rollout="jax"), results_dir=str(tmp_path))
    assert r.status == "COMPLETED"
    assert r.config["rollout"] == "jax"
    run_dir = tmp_path / "runs" / str(r._id)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["test_battle_won_mean"]["steps"][0] == 0 and m["test_battle_won_mean"]["steps"][-1] >= 800
    assert all(np.isfinite(m["policy_loss"]["values"]))
    with pytest.raises(validate.InputError, match="rollout='python' differs"):
        validate.resolve_resume(dict(resume=str(run_dir), rollout="python"))
    assert validate.resolve_resume(dict(resume=str(run_dir)))["rollout"] == "jax"
