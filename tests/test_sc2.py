"""Tests of the StarCraft II backend (dm2_repro/envs/sc2.py) without the game.

A scripted stand-in for SMAC's StarCraft2Env runs in the worker processes (injected through
env_factory); the real game is exercised only by the last test, when SC2PATH is set.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

from dm2_repro.envs.sc2 import SC2Env, SC2WorkerError, check_sc2_available

# --------------------------------------------------------------------------------------------
# Scripted stand-in for smac.env.StarCraft2Env
# --------------------------------------------------------------------------------------------

MAPS = {"3s_vs_3z": (3, 3, 150), "5m_vs_6m": (5, 6, 70)}  # n_agents, n_enemies, SMAC limit
OBS_DIM, STATE_DIM = 6, 4
# Episode number e of the instance with seed s follows PLANS[(s + e) % 4]: a battle that ends
# after `length` steps, or None = no battle end, so the time limit cuts it.
PLANS = [(3, "won"), (None, "limit"), (2, "lost"), (4, "won")]
WIN_BONUS = 5.0


class ScriptedSMAC:
    """StarCraft2Env's methods and return types, deterministic from its seed."""

    def __init__(self, map_name, seed, episode_limit=None, fail_at=None, marker_dir=None,
                 step_delay=0.0, **smac_kwargs):
        if map_name not in MAPS:
            raise KeyError(map_name)  # what SMAC's map registry lookup raises
        self.n_agents, self.n_enemies, limit = MAPS[map_name]
        self.n_actions = 6 + self.n_enemies  # no-op, stop, 4 moves, attack enemy j
        self.episode_limit = episode_limit or limit
        self.seed, self.fail_at, self.marker_dir, self.step_delay = seed, fail_at, marker_dir, step_delay
        self.smac_kwargs = smac_kwargs
        self.episode, self.t, self.ended = -1, 0, True

    def get_env_info(self):
        return dict(state_shape=STATE_DIM, obs_shape=OBS_DIM, n_actions=self.n_actions,
                    n_agents=self.n_agents, episode_limit=self.episode_limit,
                    smac_kwargs=self.smac_kwargs)

    def plan(self):
        return PLANS[(self.seed + self.episode) % len(PLANS)]

    def reset(self):
        self.episode, self.t, self.ended = self.episode + 1, 0, False
        return self.get_obs(), self.get_state()

    def alive(self, k):
        return not (k == 0 and self.t >= 2)  # agent 0 dies at step 2 of every episode

    def get_avail_agent_actions(self, k):
        if not self.alive(k):
            return [1] + [0] * (self.n_actions - 1)  # dead: only no-op
        moves = [1, 1, 1, 1] if (self.t + k) % 2 == 0 else [1, 1, 0, 0]
        attacks = [int((self.t + k + j) % 3 != 0) for j in range(self.n_enemies)]
        return [0, 1] + moves + attacks

    def get_avail_actions(self):
        return [self.get_avail_agent_actions(k) for k in range(self.n_agents)]

    def get_obs(self):
        return [np.array([self.seed, self.episode, self.t, k, self.alive(k), 0], np.float32)
                for k in range(self.n_agents)]

    def get_state(self):
        return np.array([self.seed, self.episode, self.t, 1], np.float32)

    def step(self, actions):
        assert not self.ended, "stepped after the episode ended"
        if self.fail_at == (self.seed, self.t):
            raise RuntimeError(f"scripted failure in the game with seed {self.seed}")
        for k, a in enumerate(actions):
            assert self.get_avail_agent_actions(k)[a] == 1, f"Agent {k} cannot perform action {a}"
        time.sleep(self.step_delay)
        self.t += 1
        reward, info = 0.5 * self.t, {"battle_won": False, "dead_allies": 0, "dead_enemies": 0}
        length, outcome = self.plan()
        if length is not None and self.t >= length:  # the battle is over
            self.ended = True
            if outcome == "won":
                info["battle_won"] = True
                reward += WIN_BONUS
        elif self.t >= self.episode_limit:  # as SMAC: flagged only with continuing_episode
            self.ended = True
            if self.smac_kwargs.get("continuing_episode", False):
                info["episode_limit"] = True
        return reward, self.ended, info

    def close(self):
        if self.marker_dir:
            (Path(self.marker_dir) / f"closed-{self.seed}").touch()


def random_actions(avail, rng):
    """One available action per agent: avail [N, K, A] -> [N, K]."""
    n, k, _ = avail.shape
    return np.array([[rng.choice(np.flatnonzero(avail[i, j])) for j in range(k)] for i in range(n)])


def all_dead(env):
    return all(not p.is_alive() for p in env._procs) and not env._procs


# --------------------------------------------------------------------------------------------
# Stepping, bookkeeping, lockstep semantics
# --------------------------------------------------------------------------------------------

LIMIT = 6
# first episode of the instances with seeds 0..3: (ended by the game, won, length)
EXPECTED_FIRST = [(True, True, 3), (False, False, LIMIT), (True, False, 2), (True, True, 4)]


def test_batched_episodes_match_the_games(tmp_path):
    rng = np.random.default_rng(0)
    with SC2Env("3s_vs_3z", n_envs=4, episode_limit=LIMIT, seed=0, env_factory=ScriptedSMAC,
                marker_dir=str(tmp_path)) as env:
        spec = env.spec
        assert (spec.map_name, spec.n_agents, spec.n_actions) == ("3s_vs_3z", 3, 9)
        assert (spec.obs_dim, spec.state_dim, spec.episode_limit) == (OBS_DIM, STATE_DIM, LIMIT)
        # the paper's SMAC settings reach the game, and time-outs are flagged
        kw = env.env_info["smac_kwargs"]
        assert (kw["difficulty"], kw["reward_scale"], kw["reward_scale_rate"], kw["step_mul"]) == ("7", True, 20, 8)
        assert kw["continuing_episode"] is True

        # reference: the same games played in this process with the same actions
        refs = [ScriptedSMAC("3s_vs_3z", seed=i, episode_limit=LIMIT, continuing_episode=True)
                for i in range(4)]
        for ep in range(2):  # the second reset starts new episodes with other plans
            out = env.reset(seed=123)
            for r in refs:
                r.reset()
            assert out.obs.shape == (4, 3, OBS_DIM) and out.obs.dtype == np.float32
            assert out.state.shape == (4, STATE_DIM) and out.state.dtype == np.float32
            assert out.avail.shape == (4, 3, 9) and out.avail.dtype == bool
            assert np.all(out.obs[:, :, 1] == ep) and np.all(out.obs[:, :, 2] == 0)

            done_before = np.zeros(4, bool)
            final, returns, t = {}, np.zeros(4), 0
            while True:
                actions = random_actions(out.avail, rng)
                actions[done_before] = -1  # ended envs must ignore their actions
                out = env.step(actions)
                t += 1
                for i, r in enumerate(refs):
                    if done_before[i]:  # frozen: reward 0, done, final values repeated
                        assert out.reward[i] == 0 and out.done[i]
                        np.testing.assert_array_equal(out.obs[i], final[i][0])
                        np.testing.assert_array_equal(out.state[i], final[i][1])
                        np.testing.assert_array_equal(out.avail[i], final[i][2])
                        continue
                    rew, ended, info = r.step(actions[i])
                    returns[i] += rew
                    assert out.reward[i] == pytest.approx(rew) and out.done[i] == ended
                    np.testing.assert_array_equal(out.obs[i], np.stack(r.get_obs()))
                    np.testing.assert_array_equal(out.state[i], r.get_state())
                    np.testing.assert_array_equal(out.avail[i], np.array(r.get_avail_actions(), bool))
                    if ended:
                        final[i] = (out.obs[i].copy(), out.state[i].copy(), out.avail[i].copy())
                        assert out.ep_length[i] == t
                        assert out.ep_return[i] == pytest.approx(returns[i])
                        assert out.battle_won[i] == info["battle_won"]
                        assert out.terminated[i] == (not info.get("episode_limit", False))
                assert out.reward.dtype == np.float32 and out.ep_length.dtype == np.int32
                assert out.done.dtype == out.terminated.dtype == out.battle_won.dtype == bool
                done_before = out.done.copy()
                if out.done.all():
                    break
            if ep == 0:
                got = list(zip(out.terminated, out.battle_won, out.ep_length))
                assert got == EXPECTED_FIRST  # different lengths, wins, a loss, a time-out
                # dead agents only have the no-op
                assert np.all(out.avail[:, 0, 0]) and not out.avail[:, 0, 1:].any()
            # calling step again after all ended changes nothing
            again = env.step(np.zeros((4, 3), int))
            assert not again.reward.any() and again.done.all()
            np.testing.assert_array_equal(again.ep_return, out.ep_return)
    assert all_dead(env)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"closed-{i}" for i in range(4)]
    with pytest.raises(RuntimeError, match="closed"):
        env.reset(seed=0)
    env.close()  # idempotent


def test_time_limit_is_inferred_when_smac_does_not_flag_it():
    # continuing_episode=False: SMAC then reports a time-out like a game end (no info flag)
    with SC2Env("3s_vs_3z", n_envs=2, episode_limit=LIMIT, seed=0, env_factory=ScriptedSMAC,
                continuing_episode=False, difficulty="5") as env:
        kw = env.env_info["smac_kwargs"]
        assert kw["difficulty"] == "5" and kw["continuing_episode"] is False  # overrides win
        out = env.reset(seed=0)
        rng = np.random.default_rng(1)
        for _ in range(LIMIT):
            out = env.step(random_actions(out.avail, rng))
        assert out.done.all()
        assert list(out.terminated) == [True, False]
        assert list(out.ep_length) == [3, LIMIT]


def test_step_before_reset_and_bad_shapes():
    with SC2Env("3s_vs_3z", n_envs=1, env_factory=ScriptedSMAC) as env:
        assert env.spec.episode_limit == 150  # the map's own limit when not overridden
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros((1, 3), int))
        env.reset(seed=0)
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((2, 3), int))


# --------------------------------------------------------------------------------------------
# Worker lifecycle
# --------------------------------------------------------------------------------------------


def test_worker_error_propagates_and_stops_all_workers(tmp_path):
    env = SC2Env("3s_vs_3z", n_envs=3, episode_limit=LIMIT, env_factory=ScriptedSMAC,
                 fail_at=(1, 1), marker_dir=str(tmp_path))
    procs = list(env._procs)
    out = env.reset(seed=0)
    rng = np.random.default_rng(0)
    out = env.step(random_actions(out.avail, rng))
    with pytest.raises(SC2WorkerError, match=r"(?s)worker 1 .*RuntimeError: scripted failure"):
        env.step(random_actions(out.avail, rng))
    assert all(not p.is_alive() for p in procs)
    # every game was closed (env.close() in each worker), including the failed one
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"closed-{i}" for i in range(3)]


def test_unknown_map_gives_a_clear_error():
    with pytest.raises(ValueError, match="SMAC does not know the map 'no_such_map'"):
        SC2Env("no_such_map", n_envs=2, env_factory=ScriptedSMAC)


def test_env_factory_must_be_picklable():
    with pytest.raises(TypeError, match="picklable"):
        SC2Env("3s_vs_3z", n_envs=2, env_factory=lambda map_name, seed, **kw: ScriptedSMAC(map_name, seed))


def test_workers_ignore_sigint_and_keyboard_interrupt_shuts_them_down(tmp_path):
    # In a fresh interpreter, as a user's script at a terminal meets Ctrl-C. Its SIGINT handler is
    # set explicitly: a test process started in the background by a non-interactive shell (`cmd &`)
    # inherits SIGINT ignored, and Python then leaves it ignored in its children too.
    script = textwrap.dedent(f"""
        import os, signal, sys, threading, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sc2 import ScriptedSMAC, random_actions
        from dm2_repro.envs.sc2 import SC2Env
        env = SC2Env("3s_vs_3z", n_envs=2, env_factory=ScriptedSMAC, step_delay=3.0, marker_dir={str(tmp_path)!r})
        procs = list(env._procs)
        out = env.reset(seed=0)
        # Ctrl-C in a terminal reaches every process of the group: workers must survive it
        for p in procs:
            os.kill(p.pid, signal.SIGINT)
        time.sleep(0.2)
        assert all(p.is_alive() for p in procs), "a worker died of SIGINT"
        # a KeyboardInterrupt in the parent while the games step must not leave orphans
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            env.step(random_actions(out.avail, np.random.default_rng(0)))
            print("step finished: no KeyboardInterrupt")
        except KeyboardInterrupt:
            print("interrupted", all(not p.is_alive() for p in procs))
    """)
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["interrupted", "True"], res.stdout + res.stderr
    assert len(list(tmp_path.iterdir())) == 2  # both games closed


def test_interpreter_exit_closes_workers_and_no_game_import(tmp_path):
    # a script that never calls close(): atexit must stop the workers and their games
    script = textwrap.dedent(f"""
        import sys
        import dm2_repro.envs.sc2 as sc2
        assert not any(m.split(".")[0] in ("pysc2", "smac") for m in sys.modules), "eager import"
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sc2 import ScriptedSMAC
        env = sc2.SC2Env("3s_vs_3z", n_envs=2, env_factory=ScriptedSMAC, marker_dir={str(tmp_path)!r})
        env.reset(seed=0)
        print(" ".join(str(p.pid) for p in env._procs), flush=True)
    """)
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert res.returncode == 0, res.stderr
    for pid in map(int, res.stdout.split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert len(list(tmp_path.iterdir())) == 2


# --------------------------------------------------------------------------------------------
# Missing-game error messages
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake_install(tmp_path, monkeypatch):
    """A complete (fake) installation: pysc2, SMAC with its map registry, SC2PATH with maps."""
    sc2 = tmp_path / "StarCraftII"
    (sc2 / "Versions" / "Base75689").mkdir(parents=True)
    (sc2 / "Maps" / "SMAC_Maps").mkdir(parents=True)
    (sc2 / "Maps" / "SMAC_Maps" / "3s_vs_3z.SC2Map").touch()
    monkeypatch.setenv("SC2PATH", str(sc2))

    def get_map_params(name):
        return {"3s_vs_3z": {}, "5m_vs_6m": {}}[name]  # KeyError like SMAC's registry

    mods = {name: types.ModuleType(name) for name in
            ("pysc2", "smac", "smac.env", "smac.env.starcraft2", "smac.env.starcraft2.maps")}
    for name, mod in mods.items():
        mod.__path__ = []  # packages
        monkeypatch.setitem(sys.modules, name, mod)
    mods["smac.env.starcraft2.maps"].get_map_params = get_map_params
    return sc2


def check_message(map_name="3s_vs_3z"):
    with pytest.raises(RuntimeError) as e:
        check_sc2_available(map_name)
    return str(e.value)


def test_complete_install_passes(fake_install):
    check_sc2_available("3s_vs_3z")
    check_sc2_available()


def test_missing_pysc2(fake_install, monkeypatch):
    monkeypatch.setitem(sys.modules, "pysc2", None)  # makes `import pysc2` fail
    msg = check_message()
    assert "pysc2 is not installed" in msg and "pip install pysc2" in msg
    assert "SMAC" not in msg.split("\n")[1]


def test_missing_smac(fake_install, monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)
    msg = check_message()
    assert "SMAC (StarCraft Multi-Agent Challenge) is not installed" in msg
    assert 'pip install "smac @ git+https://github.com/oxwhirl/smac.git@d6aab33f76abc3849c50463a8592a84f59a5ef84"' in msg


def test_pypi_smac3_instead_of_smac(fake_install, monkeypatch):
    smac3 = types.ModuleType("smac")  # SMAC3: `import smac` works, `smac.env` does not exist
    smac3.__path__ = []
    smac3.__version__ = "2.3.1"
    monkeypatch.setitem(sys.modules, "smac", smac3)
    for name in ("smac.env", "smac.env.starcraft2", "smac.env.starcraft2.maps"):
        monkeypatch.delitem(sys.modules, name)
    msg = check_message()
    assert "SMAC3" in msg and "2.3.1" in msg and "pip uninstall smac" in msg
    assert "git+https://github.com/oxwhirl/smac.git" in msg


def test_sc2path_unset(fake_install, monkeypatch):
    monkeypatch.delenv("SC2PATH")
    msg = check_message()
    assert "SC2PATH is not set" in msg and "export SC2PATH" in msg


def test_sc2path_not_a_directory(fake_install, monkeypatch, tmp_path):
    monkeypatch.setenv("SC2PATH", str(tmp_path / "nowhere"))
    assert "is not a directory" in check_message()


def test_binary_and_maps_missing(fake_install, monkeypatch, tmp_path):
    empty = tmp_path / "empty_sc2"
    empty.mkdir()
    monkeypatch.setenv("SC2PATH", str(empty))
    msg = check_message()
    assert "no StarCraft II binary" in msg
    assert "SMAC maps are missing" in msg and "SMAC_Maps.zip" in msg


def test_one_map_file_missing(fake_install):
    msg = check_message("5m_vs_6m")  # known to SMAC, but its .SC2Map is not installed
    assert "5m_vs_6m.SC2Map is missing" in msg


def test_unknown_map_name(fake_install):
    with pytest.raises(ValueError, match="SMAC does not know the map '3m_vs_99z'"):
        check_sc2_available("3m_vs_99z")


def test_everything_missing_fails_at_construction(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysc2", None)
    monkeypatch.setitem(sys.modules, "smac", None)
    monkeypatch.delenv("SC2PATH", raising=False)
    with pytest.raises(RuntimeError) as e:
        SC2Env("3s_vs_3z", n_envs=2)  # default factory: checks before starting any worker
    msg = str(e.value)
    assert "pysc2" in msg and "SMAC" in msg and "SC2PATH" in msg and 'pip install -e ".[sc2]"' in msg


# --------------------------------------------------------------------------------------------
# The real game
# --------------------------------------------------------------------------------------------


def test_real_starcraft2_episode():
    if not os.environ.get("SC2PATH"):
        pytest.skip("SC2PATH is not set: StarCraft II is not installed (see docs/sc2.md)")
    check_sc2_available("3s_vs_3z")  # SC2PATH set but something missing: fail with the reason
    rng = np.random.default_rng(0)
    with SC2Env("3s_vs_3z", n_envs=2, seed=0) as env:
        assert (env.spec.n_agents, env.spec.n_actions, env.spec.episode_limit) == (3, 9, 150)
        out = env.reset(seed=0)
        assert out.obs.shape == (2, 3, env.spec.obs_dim)
        for _ in range(env.spec.episode_limit + 1):
            out = env.step(random_actions(out.avail, rng))
            if out.done.all():
                break
        assert out.done.all()
        assert np.all((out.ep_return >= 0) & (out.ep_return <= 20 + 1e-3))
        assert np.all(out.ep_length <= env.spec.episode_limit)
