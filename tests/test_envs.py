import numpy as np
import pytest

from dm2_repro.envs import MAPS, make_env
from dm2_repro.envs.maps import map_info

# SMAC's episode limits and unit lists for the paper's maps (Samvelyan et al. 2019)
EXPECTED = {
    "5m_vs_6m": (5, 6, "marine", "marine", 70),
    "3s_vs_4z": (3, 4, "stalker", "zealot", 200),
    "3s_vs_3z": (3, 3, "stalker", "zealot", 150),
    "3s_vs_5z": (3, 5, "stalker", "zealot", 250),
    "8m_vs_9m": (8, 9, "marine", "marine", 120),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_map_registry(name):
    n_ally, n_enemy, ally, enemy, limit = EXPECTED[name]
    info = map_info(name)
    assert info.allies == (ally,) * n_ally and info.enemies == (enemy,) * n_enemy
    assert info.episode_limit == limit
    assert set(MAPS) == set(EXPECTED)


def test_unknown_map_and_backend_list_valid_names():
    with pytest.raises(ValueError, match="valid maps: .*3s_vs_3z"):
        make_env("smax", "3s_vs_99z", 2)
    with pytest.raises(ValueError, match="valid backends: smax, sc2"):
        make_env("starcraft", "3s_vs_3z", 2)


def _random_valid(avail, rng):
    return np.array([[rng.choice(np.flatnonzero(a)) for a in row] for row in avail])


def test_shapes_masks_and_episode_bookkeeping(smax_env):
    env, spec = smax_env, smax_env.spec
    assert (spec.n_agents, spec.n_actions, spec.obs_dim, spec.state_dim) == (3, 8, 75, 72)
    o = env.reset(seed=3)
    N = env.n_envs
    assert o.obs.shape == (N, 3, 75) and o.state.shape == (N, 72) and o.avail.shape == (N, 3, 8)
    assert o.obs.dtype == np.float32 and o.avail.dtype == bool and o.avail.any(-1).all()
    rng = np.random.default_rng(0)
    total = np.zeros(N, np.float32)
    ended_at = np.full(N, -1)
    for t in range(spec.episode_limit):
        s = env.step(_random_valid(o.avail, rng))
        assert s.reward.shape == (N,) and s.done.shape == (N,)
        was_done = ended_at >= 0
        assert (s.reward[was_done] == 0).all(), "an ended episode must give no reward"
        total += s.reward
        ended_at[(s.done) & ~was_done] = t + 1
        o = s
        if s.done.all():
            break
    assert s.done.all()
    np.testing.assert_allclose(s.ep_return, total, rtol=1e-5)
    np.testing.assert_array_equal(s.ep_length, ended_at)
    assert (s.ep_return <= 20.0 + 1e-4).all() and (s.ep_return >= 0).all()  # SMAC's 0-20 range
    assert not (s.battle_won & ~s.terminated).any(), "a win is a game end"


def test_time_limit_truncates_exactly():
    env = make_env("smax", "3s_vs_3z", 4, episode_limit=5)
    env.reset(seed=0)
    stop = np.full((4, 3), 4)  # 'stop' is always available: the armies start out of range
    for t in range(5):
        s = env.step(stop)
        assert s.done.all() == (t == 4)
    assert (s.ep_length == 5).all() and not s.terminated.any() and not s.battle_won.any()


def test_same_seed_same_episodes(smax_env):
    a = smax_env.reset(seed=11).obs
    b = smax_env.reset(seed=11).obs
    c = smax_env.reset(seed=12).obs
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_wrong_action_shape_is_rejected(smax_env):
    smax_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \[N=4, K=3\]"):
        smax_env.step(np.zeros((4, 2), int))
