"""The toy coordination game (envs/toy.py) and the toy DM²-vs-IPPO claim (dm2_repro/theory/toy_coordination.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dm2_repro.demos import load_demo
from dm2_repro.envs.toy import PAYOFF, ClimbingGameEnv, OptimalTeamPolicy
from dm2_repro.training.rollout import collect
from dm2_repro.theory.toy_coordination import TOY_HP, train_curve, updates_to_optimum, write_optimal_demo

A, B, C = 0, 1, 2


def joint(*pairs):
    return np.array(pairs, np.int64)  # [N, K]


def test_spec_and_shapes():
    env = ClimbingGameEnv(n_envs=3, n_rounds=4)
    s = env.spec
    assert (s.n_agents, s.n_actions, s.episode_limit) == (2, 3, 4)
    assert (s.obs_dim, s.state_dim) == (5 + 3, 5 + 2 * 3)
    o = env.reset(0)
    assert o.obs.shape == (3, 2, s.obs_dim) and o.obs.dtype == np.float32
    assert o.state.shape == (3, s.state_dim) and o.avail.shape == (3, 2, 3) and o.avail.all()
    st = env.step(joint((A, A), (B, B), (C, C)))
    for name, shape in dict(reward=(3,), done=(3,), terminated=(3,), battle_won=(3,), ep_return=(3,),
                            ep_length=(3,)).items():
        assert getattr(st, name).shape == shape, name


def test_rewards_of_joint_actions():
    env = ClimbingGameEnv(n_envs=9, n_rounds=4)
    env.reset(0)
    pairs = [(i, j) for i in range(3) for j in range(3)]
    st = env.step(joint(*pairs))
    scale = 20.0 / (4 * 11.0)
    np.testing.assert_allclose(st.reward, [PAYOFF[i, j] * scale for i, j in pairs], rtol=1e-6)
    assert st.reward[pairs.index((A, A))] == pytest.approx(5.0)  # 11 * 20/44
    assert st.reward[pairs.index((A, B))] == st.reward[pairs.index((B, A))] == pytest.approx(-30 * scale)
    assert st.reward[pairs.index((B, B))] > st.reward[pairs.index((C, C))] > 0
    # only the -30 miscoordination crashes (ends the episode, as a game end)
    crashed = {(A, B), (B, A)}
    assert [bool(d) for d in st.done] == [p in crashed for p in pairs]
    assert (st.terminated == st.done).all()


def test_optimal_team_wins_with_return_20():
    env = ClimbingGameEnv(n_envs=2, n_rounds=4)
    env.reset(0)
    for t in range(4):
        st = env.step(joint((A, A), (B, B)))
        assert st.done.all() == (t == 3)
    assert st.terminated.all()  # the round counter is observed: the end is the game's, not a time limit
    np.testing.assert_allclose(st.ep_return, [20.0, 4 * 7 * 20 / 44], rtol=1e-6)
    assert st.battle_won.tolist() == [True, False] and st.ep_length.tolist() == [4, 4]


def test_ended_environments_freeze_lockstep():
    env = ClimbingGameEnv(n_envs=2, n_rounds=4)
    env.reset(0)
    first = env.step(joint((A, B), (A, A)))  # env 0 crashes at round 1
    assert first.done.tolist() == [True, False]
    frozen_obs, frozen_return = first.obs[0].copy(), first.ep_return[0]
    for _ in range(3):  # env 0 ignores its actions from now on
        st = env.step(joint((C, C), (A, A)))
        assert st.reward[0] == 0.0 and st.done[0] and st.terminated[0] and not st.battle_won[0]
        np.testing.assert_array_equal(st.obs[0], frozen_obs)
        assert st.ep_return[0] == frozen_return and st.ep_length[0] == 1
    assert st.done.all() and st.battle_won.tolist() == [False, True] and st.ep_length.tolist() == [1, 4]


def test_observation_is_own_last_action_and_round():
    env = ClimbingGameEnv(n_envs=1, n_rounds=4)
    o = env.reset(0)
    np.testing.assert_array_equal(o.obs[0, :, :5], [[1, 0, 0, 0, 0]] * 2)  # round 0
    assert not o.obs[0, :, 5:].any()  # no previous action yet
    st = env.step(joint((B, C)))
    np.testing.assert_array_equal(st.obs[0, 0], [0, 1, 0, 0, 0, 0, 1, 0])  # round 1, agent 1 played b
    np.testing.assert_array_equal(st.obs[0, 1], [0, 1, 0, 0, 0, 0, 0, 1])  # round 1, agent 2 played c
    np.testing.assert_array_equal(st.state[0], [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1])  # both actions


def test_collect_pads_crashed_episodes():
    env = ClimbingGameEnv(n_envs=4, n_rounds=3)

    class Crash:  # env 0 and 2 crash at round 2, the others play (b, b)
        def init_hidden(self, n):
            return None

        def act(self, obs, state, avail, last_action, hidden, greedy, generator=None):
            t = int(state[0, :4].argmax())
            a = torch.ones(4, 2, dtype=torch.long)
            if t == 1:
                a[[0, 2], 0] = A
            return a, hidden

    batch = collect(env, Crash(), 4, (0, 0), greedy=False, generator=torch.Generator())
    assert batch.ep_length.tolist() == [2, 3, 2, 3]
    assert batch.mask.tolist() == [[1, 1, 0], [1, 1, 1], [1, 1, 0], [1, 1, 1]]
    assert batch.terminated[0, :2].tolist() == [0, 1]  # (after the end: masked padding)


def test_optimal_demo_roundtrip(tmp_path):
    path = write_optimal_demo(tmp_path / "climbing_optimal.npz", n_episodes=10, n_rounds=4)
    spec = ClimbingGameEnv(1, 4).spec
    demo = load_demo(path, spec)  # the demos module verifies sha256, shapes and the env match
    assert demo.obs.shape == (10, 5, 2, spec.obs_dim) and demo.n_episodes == 10
    assert (demo.actions == A).all() and (demo.length == 4).all()
    assert demo.battle_won.all() and torch.allclose(demo.ep_return, torch.full((10, 2), 20.0))
    assert demo.meta["source_algo"] == "scripted_optimal" and demo.quality == 1.0
    # what each agent's discriminator will see: "I played a" after every round
    assert (demo.obs[:, 1:, :, 5 + A] == 1).all() and (demo.obs[:, 1:, :, 5 + B:] == 0).all()
    with pytest.raises(ValueError, match="another environment"):
        load_demo(path, ClimbingGameEnv(1, 3).spec)


def test_scripted_team_is_optimal():
    env = ClimbingGameEnv(n_envs=2, n_rounds=4)
    batch = collect(env, OptimalTeamPolicy(), 2, (0, 0), greedy=True, generator=torch.Generator())
    assert batch.battle_won.tolist() == [1.0, 1.0]


def test_dm2_reaches_the_optimum_before_ippo(tmp_path):
    """Fixed seeds, 20 updates: DM² (demonstrations of the optimal team) reaches the greedy joint optimum;
    IPPO, with the same seed, hyperparameters and budget, does not (it settles on a safe equilibrium).
    dm2_repro/theory/toy_coordination.py has the full 5-seed numbers (README, toy check)."""
    budget = 20
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the numbers below were recorded single-threaded
    try:
        demo = load_demo(write_optimal_demo(tmp_path / "demo.npz", TOY_HP.demo_episodes), ClimbingGameEnv(1).spec)
        dm2 = train_curve("dm2", 2, budget, TOY_HP, demo, stop_at_optimum=True)
        ippo = train_curve("ippo", 2, budget, TOY_HP)
    finally:
        torch.set_num_threads(threads)
    assert updates_to_optimum(dm2) is not None and updates_to_optimum(dm2) <= budget
    assert updates_to_optimum(ippo) is None
