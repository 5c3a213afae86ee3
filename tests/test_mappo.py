"""RMAPPO: centralised critic on the global state, value normalisation, masks, time-limit
bootstrap, available actions, checkpoint round trip, end-to-end smoke run."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
import torch

from dm2_repro.algos.mappo import RMAPPO, ValueNorm
from dm2_repro.config import make_hp
from dm2_repro.envs.base import EnvSpec
from dm2_repro.networks import agent_inputs, previous_actions

from tests.fixtures import SPEC, random_batch as fake_batch


def make_rmappo(**hp_over):
    hp = make_hp("rmappo", "3s_vs_3z", "smoke", {**dict(hidden=16), **hp_over})
    torch.manual_seed(0)
    return RMAPPO(SPEC, hp)


def actor_logits(learner, batch):
    x = agent_inputs(batch.obs, previous_actions(batch.actions), SPEC.n_actions, SPEC.n_agents)
    return learner.policy_dist(x, batch).logits


def test_critic_sees_global_state_and_actor_does_not():
    learner = make_rmappo()
    batch = fake_batch(SPEC, [6, 4, 8])
    learner.after_rollout(batch)
    v, logits = learner.values(batch.state), actor_logits(learner, batch)
    assert v.shape == (3, 9, 3)
    other = copy.deepcopy(batch)
    other.state = torch.randn_like(batch.state) * 10  # only the global state changes
    v2, logits2 = learner.values(other.state), actor_logits(learner, other)
    assert (v2 - v).abs().min() > 0  # every value moved
    torch.testing.assert_close(logits2, logits)  # the actor never reads the state
    # one value per agent: the agent id is an input, so agents' values differ for the same state
    assert not torch.allclose(v[..., 0], v[..., 1])
    # the state only changes the critic from its own time step on (recurrent, causal)
    third = copy.deepcopy(batch)
    third.state[:, 5] += 1.0
    v3 = learner.values(third.state)
    torch.testing.assert_close(v3[:, :5], v[:, :5])
    assert (v3[:, 5] - v[:, 5]).abs().min() > 0


def test_value_norm_round_trip_and_statistics():
    vn = ValueNorm()
    x = torch.randn(1000, dtype=torch.float64) * 7 + 3
    for _ in range(5):
        vn.update(x)
    mean, std = vn.mean_std()
    assert mean.item() == pytest.approx(x.mean().item(), rel=1e-3)
    assert std.item() == pytest.approx(x.std(unbiased=False).item(), rel=1e-3)
    y = torch.randn(50, 4)
    torch.testing.assert_close(vn.denormalize(vn.normalize(y)), y)
    torch.testing.assert_close(vn.normalize(vn.denormalize(y)), y)
    z = vn.normalize(x)
    assert abs(z.mean().item()) < 1e-3 and z.std().item() == pytest.approx(1.0, rel=1e-3)
    # debiased from the first update: not pulled towards the zero initial value
    vn2 = ValueNorm()
    vn2.update(torch.full((10,), 5.0))
    assert vn2.mean_std()[0].item() == pytest.approx(5.0)


def test_time_limit_bootstraps_from_final_state_value():
    learner = make_rmappo()
    batch = fake_batch(SPEC, [5, 5], terminated=[True, False])
    learner.after_rollout(batch)
    adv, ret = learner.advantages(batch, learner.values(batch.state).detach())
    changed = copy.deepcopy(batch)
    changed.state[:, 5] += 3.0  # the final state of both episodes (index ep_length)
    adv2, ret2 = learner.advantages(changed, learner.values(changed.state).detach())
    torch.testing.assert_close(ret2[0], ret[0])  # game over: the final state's value is not used
    assert (ret2[1, 4] - ret[1, 4]).abs().min() > 0  # time limit: r + gamma V(final state)


def test_padded_steps_do_not_change_the_update():
    lengths = [4, 9, 2]
    batch = fake_batch(SPEC, lengths, terminated=[True, False, True])
    garbage = copy.deepcopy(batch)
    for b, L in enumerate(lengths):
        garbage.obs[b, L + 1:] = 1e3
        garbage.state[b, L + 1:] = -1e3
        garbage.reward[b, L:] = 1e4
        garbage.actions[b, L:] = 0
    results = []
    for b in (batch, garbage):
        learner = make_rmappo()
        learner.after_rollout(b)
        stats = learner.update(b)
        results.append((stats, learner.actor.state_dict(), learner.critic.state_dict()))
    (s1, a1, c1), (s2, a2, c2) = results
    for k in s1:
        assert s1[k] == pytest.approx(s2[k], rel=1e-4, abs=1e-6), k
    for k in a1:
        torch.testing.assert_close(a1[k], a2[k])
    for k in c1:
        torch.testing.assert_close(c1[k], c2[k])


def test_update_changes_both_nets():
    """(Acting with masks and the checkpoint / snapshot round trips: tests/test_learners.py.)"""
    learner = make_rmappo()
    batch = fake_batch(SPEC, [5, 8, 3, 6])
    a0, c0 = copy.deepcopy(learner.actor.state_dict()), copy.deepcopy(learner.critic.state_dict())
    learner.after_rollout(batch)
    stats = learner.update(batch)
    assert all(v == v for v in stats.values())
    assert any(not torch.equal(a0[k], v) for k, v in learner.actor.state_dict().items())
    assert any(not torch.equal(c0[k], v) for k, v in learner.critic.state_dict().items())


def test_rmappo_runs_end_to_end(tmp_path, smax_env):
    from dm2_repro import train

    r = train.run(dict(algo="rmappo", map="3s_vs_3z", seed=1, scale="smoke"), results_dir=str(tmp_path))
    assert r.status == "COMPLETED"
    run_dir = Path(tmp_path) / "runs" / str(r._id)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["test_battle_won_mean"]["steps"]) >= 2
    assert "value_loss" in metrics and all(v == v for v in metrics["value_loss"]["values"])
    assert metrics["value_norm_std"]["values"][-1] > 0
    assert list(run_dir.glob("checkpoints/policy_*.pt"))
