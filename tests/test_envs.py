import numpy as np
import pytest

from dm2_repro.envs import MAPS, PAPER_MAPS, make_env
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
    assert PAPER_MAPS == tuple(EXPECTED) and set(PAPER_MAPS) <= set(MAPS)


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


# ---- rewards: SMAC's default reward computed on SMAX (reward="smac"), SMAX's own x 10 (reward="smax")

def test_unknown_reward_lists_valid_values():
    with pytest.raises(ValueError, match="valid rewards for the smax backend: smac, smax"):
        make_env("smax", "3s_vs_3z", 2, reward="sparse")
    with pytest.raises(ValueError, match="valid rewards: smac"):
        make_env("sc2", "3s_vs_3z", 2, reward="smax")  # before any game is started


def test_smac_reward_scripted_steps_by_hand(smax_env):
    from dm2_repro.envs.smax import smac_max_reward, smac_reward

    smax_env.reset(seed=0)
    st = jax_tree_index(smax_env._carry["state"].state, 0)  # one real reset state of 3s_vs_3z
    K = 3  # 3 stalkers (160 hp), then 3 zealots (150 hp): SMAX's unit_type_health table
    max_health = np.array([160.0] * 3 + [150.0] * 3, np.float32)
    np.testing.assert_array_equal(np.asarray(st.unit_health), max_health)
    assert np.asarray(st.unit_alive).all()
    scale = (3 * 10 + 200 + 3 * 150) / 20  # max_reward / reward_scale_rate = 680 / 20
    assert smac_max_reward(max_health, K) == 680.0

    def state(health):
        h = np.asarray(health, np.float32)
        return st.replace(unit_health=h, unit_alive=h > 0)

    def reward(prev, cur, won=False):
        return float(smac_reward(prev.unit_health, prev.unit_alive, cur.unit_health, cur.unit_alive, won,
                                 max_health, K))

    s0 = state(max_health)
    # partial damage to two enemies; the ally's 50 damage is ignored
    s1 = state([110, 160, 160, 130, 114.5, 150])
    assert reward(s0, s1) == pytest.approx((20 + 35.5) / scale, rel=1e-6)
    # a kill: the dying enemy's remaining 130 hp + death bonus 10, + 10 damage elsewhere; an ally death ignored
    s2 = state([110, 0, 160, 0, 114.5, 140])
    assert reward(s1, s2) == pytest.approx((130 + 10 + 10) / scale, rel=1e-6)
    # the win step: the last enemy's 40 hp + 10 death + 200 win; enemies dead before count nothing
    s3 = state([110, 0, 160, 0, 0, 40])
    s4 = state([60, 0, 160, 0, 0, 0])
    assert reward(s3, s4, won=True) == pytest.approx((40 + 10 + 200) / scale, rel=1e-6)
    # only allies damaged: no reward
    assert reward(s0, state([100, 0, 160, 150, 150, 150])) == 0.0
    # batched like the vmapped step: [B, n_units]
    stack = lambda *ss, f: np.stack([np.asarray(getattr(s, f)) for s in ss])
    r = smac_reward(stack(s0, s1, s3, f="unit_health"), stack(s0, s1, s3, f="unit_alive"),
                    stack(s1, s2, s4, f="unit_health"), stack(s1, s2, s4, f="unit_alive"),
                    np.array([False, False, True]), max_health, K)
    np.testing.assert_allclose(np.asarray(r), np.array([55.5, 150, 250]) / scale, rtol=1e-6)


def jax_tree_index(tree, i):
    import jax

    return jax.tree_util.tree_map(lambda x: x[i], tree)


def _focus_fire(avail, rng, eps):
    """Attack the lowest-index enemy in range (else stop); a random valid action with probability eps."""
    act = np.where(avail[..., 5:].any(-1), 5 + avail[..., 5:].argmax(-1), 4)
    rand = _random_valid(avail, rng)
    return np.where(rng.random(act.shape) < eps, rand, act)


def _episodes(env, seed, policy):
    o = env.reset(seed=seed)
    for _ in range(env.spec.episode_limit):
        s = env.step(policy(o.avail))
        o = s
        if s.done.all():
            return s
    return s


def test_smac_reward_episode_returns(smax_env):
    rng = np.random.default_rng(1)
    rets, wins = [], []
    for seed, eps in [(0, 1.0), (1, 1.0), (2, 0.1), (3, 0.1), (4, 0.0)]:  # random, then mostly focus fire
        s = _episodes(smax_env, seed, lambda avail: _focus_fire(avail, rng, eps))
        assert s.done.all()
        rets.append(s.ep_return)
        wins.append(s.battle_won)
    rets, wins = np.concatenate(rets), np.concatenate(wins)
    assert (rets >= 0).all() and (rets <= 20 + 1e-4).all()
    assert wins.any() and not wins.all()  # not vacuous
    np.testing.assert_allclose(rets[wins], 20.0, atol=1e-4)  # a won battle destroyed every enemy
    assert (rets[~wins] < 20 - 1).all()  # no win bonus without a win


def test_smax_reward_option_and_smac_reward_in_the_real_step(smax_env):
    """reward='smax' (the old scale) and 'smac' run the same battles in lockstep; each step's reward
    matches its formula computed from the unit health before and after the step."""
    from dm2_repro.envs.smax import SMAXEnv, smac_reward

    old = SMAXEnv("3s_vs_3z", smax_env.n_envs, reward="smax")  # the one extra compile
    assert old.reward == "smax" and smax_env.reward == "smac"
    max_health = np.array([160.0] * 3 + [150.0] * 3, np.float32)
    rng = np.random.default_rng(2)
    for seed in (5, 6):
        o_new, o_old = smax_env.reset(seed=seed), old.reset(seed=seed)
        np.testing.assert_array_equal(o_new.obs, o_old.obs)
        done = np.zeros(smax_env.n_envs, bool)
        tot_new = tot_old = 0.0
        for _ in range(smax_env.spec.episode_limit):
            prev = smax_env._carry["state"].state
            ph, pa = np.asarray(prev.unit_health), np.asarray(prev.unit_alive)
            a = _focus_fire(o_new.avail, rng, 0.2)
            s_new, s_old = smax_env.step(a), old.step(a)
            np.testing.assert_array_equal(s_new.obs, s_old.obs)  # the reward does not change the battle
            np.testing.assert_array_equal(s_new.done, s_old.done)
            cur = smax_env._carry["state"].state
            h, al = np.asarray(cur.unit_health), np.asarray(cur.unit_alive)
            want_new = np.asarray(smac_reward(ph, pa, h, al, s_new.battle_won, max_health, 3))
            frac = ((ph - h)[:, 3:] / max_health[3:]).sum(-1) / 3  # SMAX: enemy health fraction removed / n_enemies
            want_old = 10.0 * (frac + s_old.battle_won)
            np.testing.assert_allclose(s_new.reward, np.where(done, 0, want_new), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s_old.reward, np.where(done, 0, want_old), rtol=1e-5, atol=1e-5)
            tot_new, tot_old = tot_new + s_new.reward, tot_old + s_old.reward
            done = s_new.done
            o_new = s_new
            if done.all():
                break
        np.testing.assert_allclose(s_new.ep_return, tot_new, rtol=1e-5)
        np.testing.assert_allclose(s_old.ep_return, tot_old, rtol=1e-5)
        assert (s_old.ep_return >= 0).all() and (s_old.ep_return <= 20 + 1e-4).all()
        w = s_new.battle_won
        np.testing.assert_allclose(s_old.ep_return[w], 20.0, atol=1e-4)  # SMAX's max return 2.0 x 10 too


# ---------------------------------------------------------------------------------------------
# More SMAX scenarios, registered tasks and the PettingZoo / JaxMARL adapters
# ---------------------------------------------------------------------------------------------

def test_smax_scenario_table_matches_jaxmarl():
    """maps.py's unit lists of the extra SMAX maps are jaxmarl's scenarios (allies first)."""
    from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO

    from dm2_repro.envs.maps import SMAC_MAPS, SMAX_SCENARIOS, UNIT_TYPE_ID

    for name, info in SMAX_SCENARIOS.items():
        scenario = MAP_NAME_TO_SCENARIO[name]
        assert (scenario.num_allies, scenario.num_enemies) == (len(info.allies), len(info.enemies)), name
        assert [int(u) for u in scenario.unit_types] == [UNIT_TYPE_ID[u] for u in info.allies + info.enemies]
    for name in set(MAP_NAME_TO_SCENARIO) & set(PAPER_MAPS):   # the paper maps jaxmarl also knows
        scenario = MAP_NAME_TO_SCENARIO[name]
        info = SMAC_MAPS[name]
        assert [int(u) for u in scenario.unit_types] == [UNIT_TYPE_ID[u] for u in info.allies + info.enemies]


def test_sc2_backend_uses_the_one_map_list():
    from dm2_repro.envs import maps, sc2

    assert sc2.PAPER_MAPS is maps.PAPER_MAPS


def test_backend_must_fit_the_map():
    from dm2_repro.envs import check_backend

    with pytest.raises(ValueError, match="task of backend 'pettingzoo', not 'smax': pass backend=pettingzoo"):
        make_env("smax", "simple_spread", 2)
    with pytest.raises(ValueError, match="is a SMAC map: valid backends smax, sc2"):
        check_backend("3s_vs_3z", "toy")
    with pytest.raises(ValueError, match="applies to the smax backend"):
        check_backend("climbing4", "toy", reward="smax")
    check_backend("2s3z", "smax")   # a SMAX scenario beyond the paper's maps


class FakeParallelEnv:
    """A PettingZoo-style parallel env: agent b leaves after step 1, agent a's mask comes from
    infos, agent b's from an observation dict; the game ends after `end_at` steps (terminated)."""

    possible_agents = ["a", "b"]

    def __init__(self, end_at=3, truncate=False):
        self.end_at, self.truncate, self.agents, self.t = end_at, truncate, [], 0

    class _Space:
        def __init__(self, n):
            self.n = n

    def action_space(self, agent):
        return self._Space(3 if agent == "a" else 2)

    @property
    def unwrapped(self):
        return self

    def _obs(self):
        obs = {}
        if "a" in self.agents:
            obs["a"] = np.array([self.t, 1.0], np.float32)
        if "b" in self.agents:
            obs["b"] = {"observation": np.array([self.t * 10.0], np.float32), "action_mask": np.array([0, 1])}
        return obs

    def _infos(self):
        return {a: ({"action_mask": np.array([1, 0, 1])} if a == "a" else {}) for a in self.agents}

    def reset(self, seed=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), self._infos()

    def step(self, actions):
        self.t += 1
        rewards = {a: float(actions[a] + (1 if a == "a" else 3)) for a in self.agents}
        ended = self.t >= self.end_at
        terms = {a: ended and not self.truncate for a in self.agents}
        truncs = {a: ended and self.truncate for a in self.agents}
        if self.t == 1:
            terms["b"] = True
        obs, infos = self._obs(), self._infos()
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, infos


def test_pettingzoo_adapter_masks_padding_leaving_agents_and_ends():
    from dm2_repro.envs.pettingzoo import PettingZooEnv

    env = PettingZooEnv(lambda: FakeParallelEnv(end_at=3), n_envs=2, name="fake", episode_limit=10)
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.obs_dim, spec.state_dim) == (2, 3, 2, 4)  # state: obs concatenated
    o = env.reset(seed=0)
    assert o.avail[0].tolist() == [[True, False, True], [False, True, False]]   # infos mask; obs-dict mask, padded
    assert o.obs[0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    s = env.step(np.array([[2, 1], [0, 1]]))
    assert s.reward.tolist() == [(3 + 4) / 2, (1 + 4) / 2]   # team reward: mean of the agents' rewards
    assert not s.done.any()
    s = env.step(np.array([[0, 0], [0, 0]]))   # b has left: only a's reward, b sees zeros and only action 0
    assert s.reward.tolist() == [1.0, 1.0]
    assert s.obs[0, 1].tolist() == [0.0, 0.0] and s.avail[0, 1].tolist() == [True, False, False]
    s = env.step(np.zeros((2, 2), int))
    assert s.done.all() and s.terminated.all() and s.ep_length.tolist() == [3, 3]
    assert s.ep_return.tolist() == [3.5 + 1 + 1, 2.5 + 1 + 1]
    frozen = env.step(np.zeros((2, 2), int))   # ended episodes stay frozen with no reward
    assert frozen.reward.tolist() == [0.0, 0.0] and frozen.ep_length.tolist() == [3, 3]


def test_pettingzoo_adapter_truncation_is_not_termination():
    from dm2_repro.envs.pettingzoo import PettingZooEnv

    by_env = PettingZooEnv(lambda: FakeParallelEnv(end_at=2, truncate=True), n_envs=1, name="f", episode_limit=10)
    by_limit = PettingZooEnv(lambda: FakeParallelEnv(end_at=9), n_envs=1, name="f", episode_limit=2)
    for env in (by_env, by_limit):
        env.reset(seed=0)
        env.step(np.zeros((1, 2), int))
        s = env.step(np.zeros((1, 2), int))
        assert s.done.all() and not s.terminated.any() and s.ep_length.tolist() == [2]


def test_pettingzoo_adapter_on_mpe2_simple_spread():
    pytest.importorskip("mpe2")
    env = make_env("pettingzoo", "simple_spread", 2, seed=1)
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.obs_dim, spec.state_dim, spec.episode_limit) == (3, 5, 18, 54, 25)
    o = env.reset(seed=4)
    assert o.avail.all()   # MPE has no masks
    assert np.allclose(o.state, o.obs.reshape(2, -1))   # MPE's state() is its observations concatenated
    rng = np.random.default_rng(0)
    for t in range(25):
        s = env.step(rng.integers(0, 5, size=(2, 3)))
        assert s.done.all() == (t == 24)
    assert not s.terminated.any() and (s.ep_return < 0).all()   # a time limit; MPE's distance penalties
    again = make_env("pettingzoo", "simple_spread", 2).reset(seed=4)
    assert np.array_equal(again.obs, o.obs)   # the reset seed fixes the episodes


def test_jaxmarl_adapter_on_mpe_simple_spread():
    env = make_env("jaxmarl", "jaxmarl_simple_spread", 2)
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.obs_dim, spec.state_dim, spec.episode_limit) == (3, 5, 18, 54, 25)
    o = env.reset(seed=1)
    assert o.avail.all() and np.allclose(o.state, o.obs.reshape(2, -1))
    total = np.zeros(2, np.float32)
    for t in range(26):
        s = env.step(np.ones((2, 3), int))
        total += s.reward
        assert s.done.all() == (t >= 24)
    assert not s.terminated.any() and s.ep_length.tolist() == [25, 25]
    assert np.allclose(s.ep_return, total) and s.reward.tolist() == [0.0, 0.0]   # frozen after the end


def test_register_env_rejects_bad_names_and_defaults():
    from dm2_repro.envs import register_env

    def factory(n_envs, seed, episode_limit):
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="SMAC map"):
        register_env("2s3z", factory)
    with pytest.raises(ValueError, match="must be letters"):
        register_env("my/task", factory)
    with pytest.raises(ValueError, match=r"unknown default\(s\) \['gail_coeff'\]"):
        register_env("t_bad_key", factory, dict(gail_coeff=1.0))
    with pytest.raises(ValueError, match="unknown metric 'reward'"):
        register_env("t_bad_metric", factory, dict(metric="reward"))
    with pytest.raises(ValueError, match="t_max must be"):
        register_env("t_bad_budget", factory, dict(t_max={"huge": 5}))
    with pytest.raises(ValueError, match="already registered"):
        register_env("simple_spread", factory)
    assert "t_bad_key" not in MAPS


def test_registered_task_is_a_map_with_its_defaults(monkeypatch):
    from dm2_repro.config import make_hp
    from dm2_repro.envs import registry
    from dm2_repro.envs.toy import ClimbingGameEnv

    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))   # leave the registry as it was
    built = []

    def factory(n_envs, seed, episode_limit):
        built.append(n_envs)
        return ClimbingGameEnv(n_envs, n_rounds=3)

    registry.register_env("my_climb", factory, dict(t_max={"cpu": 1234}, gail_coef=2.5, test_episodes=7,
                                                    metric="return"))
    assert "my_climb" in MAPS and len(map_info("my_climb").allies) == 2   # n_agents read from one built env
    assert map_info("my_climb").episode_limit == 3 and built == [1]
    hp = make_hp("dm2", "my_climb", "cpu")
    assert (hp.t_max, hp.gail_coef, hp.test_episodes) == (1234, 2.5, 7)
    assert make_hp("dm2", "my_climb", "smoke").t_max == 800   # the smoke preset's budget: no smoke t_max given
    paper = make_hp("dm2", "my_climb", "paper")
    assert (paper.t_max, paper.ppo_epochs, paper.lr) == (10_000_000, 15, 5e-4)   # the paper's IPPO defaults
    assert registry.metric_name("my_climb") == "test_return_mean"
    assert registry.metric_name("3s_vs_3z") == "test_battle_won_mean"
    env = make_env("custom", "my_climb", 4, seed=0)
    assert env.n_envs == 4 and env.spec.episode_limit == 3
