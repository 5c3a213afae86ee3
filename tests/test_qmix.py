"""QMIX: monotonic mixer, TD target (target net, double Q, masks, time limits), epsilon schedule,
available actions, replay buffer, checkpoint round trip, end-to-end smoke runs."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
import torch

from dm2_repro.algos.qmix import QMIX, EpisodeReplayBuffer, QMixer, epsilon_schedule
from dm2_repro.config import make_hp
from dm2_repro.envs.base import EnvSpec
from dm2_repro.training.rollout import EpisodeBatch

from tests.fixtures import SPEC, random_batch as fake_batch


def make_qmix(arch="pymarl", **hp_over):
    hp = make_hp("qmix", "3s_vs_3z", "smoke", {**dict(hidden=16, qmix_batch_episodes=4, qmix_buffer_episodes=16),
                                               **hp_over})
    torch.manual_seed(0)
    return QMIX(SPEC, hp, agent_arch=arch)


# ---- mixer -------------------------------------------------------------------------------------
def test_mixer_monotonic_in_every_agent_q():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=5, state_dim=12, embed=8, hypernet_embed=16)
    s = torch.randn(256, 12) * 5
    q = (torch.randn(256, 5) * 3).requires_grad_(True)
    # the hypernetworks' raw outputs take both signs: the abs() is what makes the weights non-negative
    assert (mixer.hyper_w1(s) < 0).any() and (mixer.hyper_w2(s) < 0).any()
    q_tot = mixer(q, s)
    assert q_tot.shape == (256,)
    (grad,) = torch.autograd.grad(q_tot.sum(), q)  # samples are independent: row b is dQ_tot[b]/dq[b]
    assert (grad >= 0).all() and (grad > 0).any()
    # and numerically: raising one agent's Q never lowers Q_tot
    with torch.no_grad():
        for i in range(5):
            q_up = q.clone()
            q_up[:, i] += torch.rand(256) * 2
            assert (mixer(q_up, s) >= mixer(q, s) - 1e-5).all()


# ---- TD target and loss ------------------------------------------------------------------------
def test_td_target_uses_target_network_and_online_argmax():
    learner = make_qmix()
    batch = fake_batch(SPEC, [7, 5, 9, 3], terminated=[True, False, True, False])
    with torch.no_grad():  # the target net starts as a copy; make it a different net (as after some training)
        for p in learner.target_agent.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    Q = learner.q_values(learner.agent, batch).detach()
    y, u_star = learner.td_target(batch, Q)

    # the formula, computed here from its parts
    T = batch.actions.shape[1]
    Q_online_next = Q[:, 1:].masked_fill(~batch.avail[:, 1:], -1e10)
    assert torch.equal(u_star, Q_online_next.argmax(-1))
    assert batch.avail[:, 1:].gather(-1, u_star.unsqueeze(-1)).all()  # the argmax never picks an unavailable action
    Q_tgt = learner.q_values(learner.target_agent, batch)[:, 1:]
    q_next = Q_tgt.gather(-1, u_star.unsqueeze(-1)).squeeze(-1)
    expected = batch.reward + 0.99 * (1 - batch.terminated) * learner.target_mixer(
        q_next, learner.mixer_state(batch.state[:, 1:T + 1]))
    torch.testing.assert_close(y, expected)

    # changing the online MIXER, or shifting every online Q by a constant (argmax unchanged), leaves y alone
    with torch.no_grad():
        for p in learner.mixer.parameters():
            p.add_(torch.randn_like(p))
        learner.agent.head.bias.add_(3.0)
    y2, u2 = learner.td_target(batch, learner.q_values(learner.agent, batch).detach())
    assert torch.equal(u2, u_star)
    torch.testing.assert_close(y2, y)

    # changing the target network changes y
    with torch.no_grad():
        for p in learner.target_mixer.parameters():
            p.add_(torch.randn_like(p))
    y3, _ = learner.td_target(batch, Q)
    real = batch.mask.bool() & (batch.terminated == 0)
    assert not torch.allclose(y3[real], y[real])

    # double Q: the action is the online net's choice, even where the target net prefers another one
    Q_tgt_masked = Q_tgt.masked_fill(~batch.avail[:, 1:], -1e10)
    differs = Q_tgt_masked.argmax(-1) != u_star
    assert differs.any()  # the two nets disagree somewhere, so the test has teeth
    q_next_own = Q_tgt_masked.max(-1).values  # what plain (non-double) Q-learning would use
    assert (q_next_own >= q_next - 1e-6).all() and (q_next_own[differs] > q_next[differs]).all()


def test_time_limit_bootstraps_and_game_end_does_not():
    learner = make_qmix()
    batch = fake_batch(SPEC, [6, 6], terminated=[True, False])
    y, _ = learner.td_target(batch, learner.q_values(learner.agent, batch).detach())
    last = 5
    assert y[0, last] == pytest.approx(batch.reward[0, last].item())  # game over: y = r
    assert y[1, last] != pytest.approx(batch.reward[1, last].item())  # time limit: r + gamma Q_tot(final obs)
    # the bootstrap comes from the final observation (index ep_length): changing it changes y
    batch2 = copy.deepcopy(batch)
    batch2.obs[1, 6] += 1.0
    y2, _ = learner.td_target(batch2, learner.q_values(learner.agent, batch2).detach())
    assert y2[1, last] != pytest.approx(y[1, last].item())


def test_padded_steps_contribute_no_loss_or_gradient():
    learner = make_qmix()
    lengths = [4, 9, 2]
    batch = fake_batch(SPEC, lengths, terminated=[True, False, True])

    def loss_and_grads(b):
        learner.opt.zero_grad()
        loss, _ = learner.td_loss(b)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in learner.params]

    loss, grads = loss_and_grads(batch)
    garbage = copy.deepcopy(batch)
    for b, L in enumerate(lengths):  # scribble over everything after each episode's final observation
        garbage.obs[b, L + 1:] = 1e3
        garbage.state[b, L + 1:] = -1e3
        garbage.reward[b, L:] = 1e4
        garbage.terminated[b, L:] = torch.rand_like(garbage.terminated[b, L:]).round()
        garbage.actions[b, L:] = 0
    loss2, grads2 = loss_and_grads(garbage)
    torch.testing.assert_close(loss2, loss)
    for g1, g2 in zip(grads, grads2):
        torch.testing.assert_close(g2, g1)
    # and the loss is a mean over real steps only
    learner.opt.zero_grad()
    with torch.no_grad():
        Q = learner.q_values(learner.agent, batch)
        T = batch.actions.shape[1]
        q_tot = learner.mixer(Q[:, :T].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1),
                              learner.mixer_state(batch.state[:, :T]))
        y, _ = learner.td_target(batch, Q)
    manual = torch.cat([(q_tot[b, :L] - y[b, :L]) ** 2 for b, L in enumerate(lengths)]).mean()
    torch.testing.assert_close(loss, manual)


# ---- exploration -------------------------------------------------------------------------------
def test_epsilon_schedule():
    learner = make_qmix(epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_steps=1000)
    for t, want in [(0, 1.0), (500, 0.525), (1000, 0.05), (10**6, 0.05)]:
        learner.start_rollout(t)
        assert learner.epsilon() == pytest.approx(want)
    assert epsilon_schedule(250, 1.0, 0.0, 1000) == pytest.approx(0.75)
    learner.set_fixed_epsilon(0.1)
    assert learner.epsilon() == pytest.approx(0.1)
    learner.set_fixed_epsilon(None)
    assert learner.epsilon() == pytest.approx(0.05)


@pytest.mark.parametrize("arch", ["pymarl", "ippo"])
def test_epsilon_greedy_explores_available_actions_only(arch):
    learner = make_qmix(arch)
    N, K, A = 256, SPEC.n_agents, SPEC.n_actions
    g = torch.Generator().manual_seed(1)
    for eps, greedy in [(1.0, False), (0.5, False), (0.0, True)]:
        learner.set_fixed_epsilon(eps)
        h = learner.init_hidden(N)
        chosen = torch.zeros(A, dtype=torch.long)
        for _ in range(10):
            avail = torch.rand(N, K, A, generator=g) < 0.3
            avail[..., 0] |= ~avail.any(-1)
            obs = torch.randn(N, K, SPEC.obs_dim, generator=g)
            last = torch.randint(-1, A, (N, K), generator=g)
            a, h = learner.act(obs, torch.randn(N, SPEC.state_dim), avail, last, h, greedy, g)
            assert a.shape == (N, K) and a.dtype == torch.long
            assert avail.gather(-1, a.unsqueeze(-1)).all()
            chosen += torch.bincount(a.flatten(), minlength=A)
        if eps == 1.0:
            assert (chosen > 0).all()  # uniform over available actions reaches every action
    # greedy = argmax of the masked Q, whatever the fixed epsilon
    learner.set_fixed_epsilon(1.0)
    avail = torch.rand(N, K, A, generator=g) < 0.5
    avail[..., 0] |= ~avail.any(-1)
    obs, last = torch.randn(N, K, SPEC.obs_dim, generator=g), torch.full((N, K), -1)
    a1, _ = learner.act(obs, None, avail, last, learner.init_hidden(N), True, g)
    a2, _ = learner.act(obs, None, avail, last, learner.init_hidden(N), True, g)
    assert torch.equal(a1, a2)


# ---- replay buffer -----------------------------------------------------------------------------
def test_replay_buffer_keeps_capacity_and_newest():
    buf = EpisodeReplayBuffer(10, SPEC, "cpu")
    assert not buf.data  # nothing allocated until the first episode (acting-only learners need no buffer)
    inserted = []
    for r in range(7):  # 7 batches of 3 episodes, with ids in ep_return
        lengths = [(r * 3 + i) % SPEC.episode_limit + 1 for i in range(3)]
        b = fake_batch(SPEC, lengths, seed=r)
        b.ep_return = torch.tensor([r * 3 + i for i in range(3)], dtype=torch.float32)
        buf.insert(b)
        inserted += b.ep_return.tolist()
        assert len(buf) == min(len(inserted), 10)
    assert sorted(buf.data["ep_return"].tolist()) == inserted[-10:]
    # a stored episode keeps its contents (and zero padding past its end)
    s = buf.sample(10, torch.Generator().manual_seed(0))
    assert sorted(s.ep_return.tolist()) == inserted[-10:]
    assert s.obs.shape[1] == int(s.ep_length.max()) + 1
    assert (s.mask.sum(1) == s.ep_length).all()
    # a batch larger than the buffer keeps its newest episodes
    big = fake_batch(SPEC, [3] * 12, seed=9)
    big.ep_return = torch.arange(100, 112, dtype=torch.float32)
    buf.insert(big)
    assert len(buf) == 10 and sorted(buf.data["ep_return"].tolist()) == list(range(102, 112))


def test_update_waits_for_batch_then_one_step_per_episode_and_target_period():
    learner = make_qmix(target_update_episodes=6, qmix_batch_episodes=4)
    b = fake_batch(SPEC, [5, 3], seed=1)
    learner.after_rollout(b)
    stats = learner.update(b)
    assert learner.train_steps == 0 and "loss" not in stats  # 2 < 4 episodes: no training yet
    before = copy.deepcopy(learner.target_agent.state_dict())
    b2 = fake_batch(SPEC, [4, 6, 2, 7], seed=2)
    learner.after_rollout(b2)
    stats = learner.update(b2)  # episodes 3..6: 4 steps; the target is copied after episode 6
    assert learner.train_steps == 4 and stats["loss"] > 0
    assert learner.last_target_update == 6
    after = learner.target_agent.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    for k, v in learner.agent.state_dict().items():  # the copy came after the last gradient step of episode 6
        assert torch.equal(after[k], v)


# ---- persistence -------------------------------------------------------------------------------
def test_checkpoint_keeps_replay_buffer_and_env_step_counter():
    """(The generic checkpoint / snapshot round trips of every learner: tests/test_learners.py.)"""
    learner = make_qmix()
    b = fake_batch(SPEC, [5, 8, 3, 6])
    learner.after_rollout(b)
    learner.start_rollout(123)
    buf = io.BytesIO()
    torch.save(learner.state_dict(), buf)
    buf.seek(0)
    fresh = QMIX(SPEC, learner.hp, agent_arch="pymarl")
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert len(fresh.buffer) == len(learner.buffer) == 4 and fresh.t_env == 123
    assert fresh.epsilon() == pytest.approx(learner.epsilon()) and fresh.epsilon() < 1.0


# ---- end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["qmix", "qmix_ippo_arch"])
def test_qmix_runs_end_to_end(algo, tmp_path, smax_env):
    from dm2_repro import train

    r = train.run(dict(algo=algo, map="3s_vs_3z", seed=1, scale="smoke"), results_dir=str(tmp_path))
    assert r.status == "COMPLETED"
    run_dir = Path(tmp_path) / "runs" / str(r._id)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_battle_won_mean"]["steps"][0] == 0 and len(metrics["test_battle_won_mean"]["steps"]) >= 2
    assert "loss" in metrics and all(v == v for v in metrics["loss"]["values"])  # trained, no NaN
    assert metrics["epsilon"]["values"][-1] < 1.0
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["learner"]["buffer"]["size"] > 0
    assert list(run_dir.glob("checkpoints/policy_*.pt"))
