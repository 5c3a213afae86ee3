"""DM² learner, its variants (gail_only, state-action, SIL) and BC pretraining."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dm2_repro.algos import bc, make_learner
from dm2_repro.algos.dm2 import (DM2, SIL, Discriminators, EpisodeRows, discounted_return, discriminator_loss,
                                 gail_reward, gather_rows, gradient_penalty, real_steps, sample_real_steps)
from dm2_repro.config import HP
from dm2_repro.demos import Demo
from dm2_repro.envs.base import EnvSpec
from dm2_repro.training.rollout import EpisodeBatch

from tests.fixtures import SMALL_SPEC as SPEC, fake_demo, padded_batch as fake_batch, small_hp

# ---------------------------------------------------------------------------------------------
# The discriminator objective
# ---------------------------------------------------------------------------------------------

def test_gail_reward_is_the_logit():
    torch.manual_seed(0)
    D = Discriminators(2, 3, 8)
    x = torch.randn(2, 4, 5, 3)  # stack-first [K, B, T, d]
    mask = torch.ones(2, 4, 5)
    p = torch.sigmoid(D(x)).double()  # D_k(x) = P(expert)
    torch.testing.assert_close(gail_reward(D, x, mask).double(), torch.log(p) - torch.log(1 - p), rtol=1e-5, atol=1e-5)
    mask[:, :, 3:] = 0
    assert (gail_reward(D, x, mask)[:, :, 3:] == 0).all()


def _set_weights(D: Discriminators, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in D.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def test_gradient_penalty_by_hand():
    K, d, H = 2, 3, 4
    D = Discriminators(K, d, H)
    # constant discriminators (all weights zero): gradient 0, penalty (0 - 1)^2 = 1
    with torch.no_grad():
        for p in D.parameters():
            p.zero_()
    torch.testing.assert_close(gradient_penalty(D, torch.randn(K, 5, d)), torch.ones(K))
    # random weights: z = w3 . tanh(W2^T tanh(W1^T x + b1) + b2) + b3, so
    # dz/dx = W1 diag(1 - h1^2) W2 diag(1 - h2^2) w3
    _set_weights(D, 7)
    W1, W2, W3 = (D.net[i].weight.detach().double().numpy() for i in (0, 2, 4))  # [K, in, out]
    b1, b2 = (D.net[i].bias.detach().double().numpy() for i in (0, 2))
    x = np.random.default_rng(0).normal(size=(5, K, d))
    expected = np.zeros(K)
    for k in range(K):
        for m in range(5):
            h1 = np.tanh(x[m, k] @ W1[k] + b1[k])
            h2 = np.tanh(h1 @ W2[k] + b2[k])
            grad = W1[k] @ np.diag(1 - h1**2) @ W2[k] @ np.diag(1 - h2**2) @ W3[k][:, 0]
            expected[k] += (np.linalg.norm(grad) - 1) ** 2 / 5
    got = gradient_penalty(D, torch.tensor(x, dtype=torch.float32).transpose(0, 1))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-4)


def test_discriminator_loss_bce_by_hand_over_real_steps_only():
    torch.manual_seed(0)
    D = Discriminators(2, 3, 8)
    x_E, x_A = torch.randn(2, 3, 4, 3), torch.randn(2, 2, 5, 3)  # stack-first [K, n, T, d]
    m_E = (torch.rand(2, 3, 4) > 0.3).float()
    m_E[:, 0, 0] = 1
    m_A = (torch.rand(2, 2, 5) > 0.3).float()
    m_A[:, 0, 0] = 1
    loss, _ = discriminator_loss(D, real_steps(x_E, m_E), real_steps(x_A, m_A), 0.0, torch.Generator().manual_seed(0))
    for k in range(2):
        zE = [D(x_E[:, i, t])[k] for i in range(3) for t in range(4) if m_E[k, i, t]]
        zA = [D(x_A[:, i, t])[k] for i in range(2) for t in range(5) if m_A[k, i, t]]
        want = -sum(torch.log(torch.sigmoid(z)) for z in zE) / len(zE) - sum(
            torch.log(1 - torch.sigmoid(z)) for z in zA) / len(zA)
        torch.testing.assert_close(loss[k], want, rtol=1e-5, atol=1e-5)


def test_discriminators_of_different_agents_share_nothing():
    torch.manual_seed(0)
    K, d, H = 3, 4, 8
    D = Discriminators(K, d, H)
    x = torch.randn(K, 10, d)
    # outputs equal K separately built torch MLPs with the same weights
    for k in range(K):
        mlp = nn.Sequential(nn.Linear(d, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, 1))
        with torch.no_grad():
            for i in (0, 2, 4):
                mlp[i].weight.copy_(D.net[i].weight[k].T)
                mlp[i].bias.copy_(D.net[i].bias[k])
        torch.testing.assert_close(D(x)[k], mlp(x[k]).squeeze(-1))
    # agent 0's full loss (BCE + gradient penalty) gives zero gradient to the other discriminators
    x_E, x_A = torch.randn(K, 2, 5, d), torch.randn(K, 2, 5, d)
    m = torch.ones(K, 2, 5)
    loss, _ = discriminator_loss(D, real_steps(x_E, m), real_steps(x_A, m), 10.0, torch.Generator().manual_seed(0))
    loss[0].backward()
    for p in D.parameters():
        assert p.grad[0].abs().sum() > 0
        assert (p.grad[1:] == 0).all()


def test_padded_steps_never_enter_the_discriminator_batch():
    """Interpolation points come from real steps only, and the loss ignores padding entirely."""
    torch.manual_seed(0)
    D = Discriminators(2, 3, 8)
    x_E, x_A = torch.rand(2, 3, 6, 3), torch.rand(2, 3, 6, 3)  # stack-first [K, n, T, d]
    m_E = torch.zeros(2, 3, 6)
    m_E[:, :, :2] = 1
    m_A = torch.zeros(2, 3, 6)
    m_A[0, :, :4], m_A[1, :, :1] = 1, 1
    picked = sample_real_steps(real_steps(torch.where(m_A.bool()[..., None], x_A, torch.tensor(1e6)), m_A), 500,
                               torch.Generator().manual_seed(0))
    assert picked.abs().max() < 2  # never the 1e6 sentinel of padded steps

    def loss_with_padding(value, packed):
        xe = torch.where(m_E.bool()[..., None], x_E, torch.tensor(value))
        xa = torch.where(m_A.bool()[..., None], x_A, torch.tensor(value))
        if packed:  # the packed real steps the learner uses give the same loss and the same draws
            E, A = EpisodeRows(xe, m_E).sample(torch.arange(3).expand(2, 3)), EpisodeRows(xa, m_A).sample(
                torch.arange(3).expand(2, 3))
        else:
            E, A = real_steps(xe, m_E), real_steps(xa, m_A)
        return discriminator_loss(D, E, A, 10.0, torch.Generator().manual_seed(1))[0]

    torch.testing.assert_close(loss_with_padding(0.0, False), loss_with_padding(-1e3, False))
    torch.testing.assert_close(loss_with_padding(0.0, False), loss_with_padding(5.0, True))


def test_gather_rows_takes_each_agents_rows_from_its_own_stack():
    rows = torch.tensor([[[0., 1.], [2., 3.], [4., 5.]],
                         [[10., 11.], [12., 13.], [14., 15.]]])  # [K=2, R=3, d=2]
    index = torch.tensor([[2, 0, 2], [1, 1, 0]])  # [K, n=3]
    expected = torch.tensor([[[4., 5.], [0., 1.], [4., 5.]],
                             [[12., 13.], [12., 13.], [10., 11.]]])
    assert torch.equal(gather_rows(rows, index), expected)
    assert torch.equal(gather_rows(rows, index), rows.gather(1, index.unsqueeze(-1).expand(-1, -1, 2)))


def test_learner_ignores_padding_and_pads_get_no_gail_reward():
    """Two identical DM² learners on batches equal on real steps but with different garbage on the
    padded ones: same discriminators after training, same rewards, zero GAIL reward on padding."""
    lengths = [6, 2, 4, 1]
    rewards, params = [], []
    for pad in (0.0, 55.0):
        torch.manual_seed(3)
        learner = DM2(SPEC, small_hp(), demo=fake_demo(), reward="gail")
        batch = fake_batch(lengths, seed=0, pad=pad)
        x_A, m_A = learner.agent_observations(batch)
        stats = learner.update_discriminators(x_A, m_A)
        r = gail_reward(learner.D, x_A, m_A)
        rewards.append(r)
        params.append(torch.cat([p.detach().flatten() for p in learner.D.parameters()]))
        assert (r[m_A == 0] == 0).all()
        assert {"disc_loss", "disc_expert_acc", "disc_agent_acc", "disc_expert_acc/0", "disc_agent_acc/1"} <= set(stats)
    torch.testing.assert_close(rewards[0], rewards[1])
    torch.testing.assert_close(params[0], params[1])


def test_discriminators_learn_to_separate_expert_from_agent():
    torch.manual_seed(0)
    demo = fake_demo()
    demo.obs = (demo.obs.float() + 2.0).half()  # expert observations around +2, the agent's around 0
    learner = DM2(SPEC, small_hp(gail_epochs=150, gail_lr=3e-3), demo=demo, reward="gail", gail_reward="logit")
    batch = fake_batch([6, 5, 6, 4])
    x_A, m_A = learner.agent_observations(batch)
    learner.update_discriminators(x_A, m_A)
    r_A = gail_reward(learner.D, x_A, m_A)
    r_E = gail_reward(learner.D, demo.obs[:, :6].float().permute(2, 0, 1, 3), demo.mask.permute(2, 0, 1))
    demo_mask = demo.mask.permute(2, 0, 1)
    assert ((r_E > 0).float() * demo_mask).sum() / demo_mask.sum() > 0.8  # expert steps look expert
    assert ((r_A < 0).float() * m_A).sum() / m_A.sum() > 0.8  # the agent's own steps do not


def test_mixed_reward_and_state_action_input():
    torch.manual_seed(0)
    learner = DM2(SPEC, small_hp(gail_coef=0.3), demo=fake_demo(), discriminator_input="obs_action",
                  gail_reward="logit")  # the per-step reward alone (the absorbing term: test_gail_reward.py)
    assert learner.D.net[0].weight.shape == (2, SPEC.obs_dim + SPEC.n_actions, 16)
    batch = fake_batch([5, 3])
    seen = {}
    learner.ppo_update = lambda b, r: seen.update(r=r) or {}  # capture the reward PPO is given
    learner.update(batch)
    x = torch.cat([batch.obs[:, :5], torch.nn.functional.one_hot(batch.actions, 4).float()], -1)  # [B, T, K, d]
    r_gail = learner.D(x.permute(2, 0, 1, 3)).detach().permute(1, 2, 0) * batch.mask[..., None]
    torch.testing.assert_close(seen["r"], batch.reward[..., None] + 0.3 * r_gail)


def test_reward_ratio_by_hand_and_undefined_without_env_reward():
    learner = DM2(SPEC, small_hp(gail_coef=0.5), demo=fake_demo())
    mask = torch.tensor([[1.0, 1.0, 0.0]])                       # [B=1, T=3]: the last step is padding
    r_env = torch.tensor([[[2.0, 0.0], [-2.0, 0.0], [9.0, 9.0]]])  # [B, T, K=2]: agent 1 gets no env reward
    r_gail = torch.tensor([[[1.0, 3.0], [-3.0, 1.0], [9.0, 9.0]]])
    stats = learner.reward_stats(r_env, r_gail, mask)
    assert stats["gail_env_ratio/0"] == pytest.approx(0.5 * 2.0 / 2.0)  # mean |c r_gail| / mean |r_env|
    assert stats["gail_env_ratio/1"] == float("inf")                  # not 1e12: nothing to compare with
    assert stats["r_env_mean"] == pytest.approx(0.0) and stats["r_gail_mean"] == pytest.approx(0.5)


def test_expert_data_is_the_first_demo_episodes_of_each_agent():
    demo = fake_demo(E=9)
    learner = DM2(SPEC, small_hp(demo_episodes=5), demo=demo)
    assert learner.target.n_episodes == 5
    for k in range(SPEC.n_agents):  # agent k's packed target rows are its own real demo steps, in order
        want = demo.obs[:5, : demo.actions.shape[1], k][demo.mask[:5, :, k].bool()].float()
        torch.testing.assert_close(learner.target.rows[k, : want.shape[0]], want)
    with pytest.raises(ValueError, match="hp.demo_episodes=20"):
        DM2(SPEC, small_hp(demo_episodes=20), demo=demo)


def test_resume_is_exact():
    torch.manual_seed(0)
    a = DM2(SPEC, small_hp(), demo=fake_demo())
    a.update(fake_batch([3, 6, 2], seed=1))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    s_a = a.update(fake_batch([4, 5, 6], seed=2))
    torch.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    b = DM2(SPEC, small_hp(), demo=fake_demo())
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    s_b = b.update(fake_batch([4, 5, 6], seed=2))
    assert s_a == s_b
    for p, q in zip(a.D.parameters(), b.D.parameters()):
        torch.testing.assert_close(p, q)


# ---------------------------------------------------------------------------------------------
# SIL and BC
# ---------------------------------------------------------------------------------------------

def sil_batch(returns_at_t1, first_id):
    """Episodes of length 3 with reward only at t=1 (discounted return gamma * r); obs[b, 0, k, 0] = id."""
    B = len(returns_at_t1)
    batch = fake_batch([3] * B, seed=first_id)
    batch.reward.zero_()
    batch.reward[:, 1] = torch.tensor(returns_at_t1) / 0.5
    batch.obs[:, 0, :, 0] = torch.arange(first_id, first_id + B, dtype=torch.float32)[:, None]
    return batch


def test_sil_store_keeps_the_top_episodes():
    learner = SIL(SPEC, small_hp(sil_store_episodes=3, gamma=0.5))
    torch.testing.assert_close(discounted_return(torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[1.0, 1.0, 0.0]]), 0.5),
                               torch.tensor([2.0]))
    learner.after_rollout(sil_batch([1.0, 5.0, 3.0, 2.0], first_id=0))  # ids 0..3
    torch.testing.assert_close(learner.store_priority, torch.tensor([5.0, 3.0, 2.0]))
    learner.after_rollout(sil_batch([4.0, 0.5, 5.0, 6.0], first_id=10))  # ids 10..13
    torch.testing.assert_close(learner.store_priority, torch.tensor([6.0, 5.0, 5.0]))  # the older 5 first
    ids = learner.target_obs[:, :, 0, 0].float()  # [K, S]
    torch.testing.assert_close(ids, torch.tensor([[13.0, 1.0, 12.0], [13.0, 1.0, 12.0]]))
    assert learner.target_obs.dtype == torch.float16 and learner.target_obs.shape[2] == 3
    assert learner.target.n_episodes == 3  # the discriminators' target follows the store
    stats = learner.update(sil_batch([1.0, 1.0], first_id=20))
    assert stats["sil_store_episodes"] == 3.0 and "disc_loss" in stats
    # the store survives a checkpoint
    buf = io.BytesIO()
    torch.save(learner.state_dict(), buf)
    buf.seek(0)
    other = SIL(SPEC, small_hp(sil_store_episodes=3, gamma=0.5))
    other.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(other.target_obs, learner.target_obs)
    torch.testing.assert_close(other.store_priority, learner.store_priority)


@pytest.mark.parametrize("base", ["ippo", "dm2"])
def test_bc_pretraining_raises_the_likelihood_of_demo_actions(base):
    torch.manual_seed(0)
    demo = fake_demo(E=16, action_of_obs=True)
    learner = make_learner(f"bc_{base}", SPEC, small_hp(demo_episodes=16, bc_epochs=40, bc_batch_episodes=8, lr=3e-3),
                           demo=demo)
    assert isinstance(learner, DM2) == (base == "dm2")
    before = [p.detach().clone() for p in learner.critic.parameters()]
    stats = bc.pretrain(learner, demo, torch.Generator().manual_seed(0))
    assert stats["bc_nll_after"] < stats["bc_nll_before"] - 0.5
    assert stats["bc_accuracy"] > stats["bc_accuracy_before"] + 0.2 and stats["bc_accuracy"] > 0.7
    for p, q in zip(before, learner.critic.parameters()):  # BC fits the actors only
        assert torch.equal(p, q)


# ---------------------------------------------------------------------------------------------
# End to end through the trainer
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_demo(smoke_ippo_run, tmp_path_factory):
    from dm2_repro.demos import collect_demo

    out = tmp_path_factory.mktemp("demos") / "smoke.npz"
    # 8 episodes per agent = the smoke preset's hp.demo_episodes
    return collect_demo([smoke_ippo_run], 400, "co_concurrent", 8, out, quality_episodes=4, seed=0, n_envs=4,
                        progress=False)


def test_learner_shares_no_stream_with_the_expert_it_imitates(smoke_demo, smoke_ippo_run, tmp_path):
    """DM² seed 1 imitating the IPPO team of seed 1 starts from other networks and other episodes."""
    from dm2_repro import train
    from dm2_repro.algos import make_learner
    from dm2_repro.demos import load_demo

    r = train.run(dict(algo="dm2", map="3s_vs_3z", seed=1, scale="smoke", demo=str(smoke_demo)),
                  results_dir=str(tmp_path))
    run_dir = tmp_path / "runs" / str(r._id)
    info = {d: json.loads((d / "info.json").read_text()) for d in (run_dir, smoke_ippo_run)}
    s_dm2, s_ippo = info[run_dir]["streams"], info[smoke_ippo_run]["streams"]
    assert all(s_dm2[k] != s_ippo[k] for k in ("init", "rollout", "sampling"))
    assert s_dm2["eval"] == s_ippo["eval"]  # the same test episodes: paired on purpose
    first = {d: json.loads((d / "metrics.json").read_text())["train_return_mean"]["values"][0]
             for d in (run_dir, smoke_ippo_run)}
    assert first[run_dir] != first[smoke_ippo_run]  # the first rollout is not the expert's first rollout
    from dm2_repro.envs.base import EnvSpec
    spec = EnvSpec("3s_vs_3z", 3, 8, 75, 72, 150)
    hp = small_hp(demo_episodes=8)
    actors = []
    for streams, algo in ((s_dm2, "dm2"), (s_ippo, "ippo")):  # the networks each run started from
        torch.manual_seed(streams["init"])
        learner = make_learner(algo, spec, hp, demo=load_demo(smoke_demo) if algo == "dm2" else None)
        actors.append(torch.cat([p.flatten() for p in learner.actor.parameters()]))
    assert not torch.allclose(actors[0], actors[1])


@pytest.mark.parametrize("algo", ["dm2", "dm2_state_action", "gail_only", "sil", "bc_ippo", "bc_dm2"])
def test_variant_runs_end_to_end(algo, smoke_demo, tmp_path):
    from dm2_repro import train

    demo = "" if algo == "sil" else str(smoke_demo)
    r = train.run(dict(algo=algo, map="3s_vs_3z", seed=2, scale="smoke", demo=demo),  # conftest.TEST_MAP
                  results_dir=str(tmp_path))
    assert r.status == "COMPLETED"
    run_dir = tmp_path / "runs" / str(r._id)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    info = json.loads((run_dir / "info.json").read_text())  # Sacred's run info, as saved
    assert info.get("demo") == r.info.get("demo")
    if algo == "sil":
        assert "demo" not in info and "sil_store_episodes" in metrics
    else:
        sha = json.loads(smoke_demo.with_suffix(".json").read_text())["sha256"]
        assert info["demo"]["path"] == str(smoke_demo) and info["demo"]["sha256"] == sha
        assert 0.0 <= info["demo"]["quality"] <= 1.0
    if algo != "bc_ippo":
        assert {"disc_loss", "r_gail_mean"} <= set(metrics)
    if algo.startswith("bc_"):
        assert {"bc_nll_before", "bc_nll_after", "pretrain_test_battle_won_mean"} <= set(metrics)
        assert metrics["bc_nll_before"]["steps"] == [0]
