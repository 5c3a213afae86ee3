"""Demonstration files (dm2_repro/demos/): styles, format, verification, a real collection."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from dm2_repro.demos import (ARRAYS, STYLES, DemoError, empty_demo_arrays, finalize_demo_arrays, gather_per_agent,
                             load_demo, main, scatter_team_episodes, style_plan, team_policy, write_demo)
from dm2_repro.envs.base import EnvSpec

FAKE_SPEC = EnvSpec("3s_vs_3z", n_agents=3, n_actions=4, obs_dim=5, state_dim=2, episode_limit=7)


def fake_team_chunk(team: int, first: int, n: int, K: int, D: int, A: int, T: int):
    """n joint episodes of team `team`, numbered first.., whose observations encode (team, joint
    episode, agent slot): obs[j, t, k] = [team, first + j, k, t, 1...]."""
    j = np.arange(n)
    length = 1 + (first + j + team) % T  # varied lengths in [1, T]
    obs = np.ones((n, T + 1, K, D), np.float32)
    obs[..., 0] = team
    obs[..., 1] = (first + j)[:, None, None]
    obs[..., 2] = np.arange(K)
    obs[..., 3] = np.arange(T + 1)[None, :, None]
    actions = ((first + j)[:, None, None] + np.arange(K) + np.arange(T)[None, :, None]) % A
    return dict(obs=obs, actions=actions, avail=np.ones((n, T + 1, K, A), bool), ep_length=length,
                ep_return=(first + j + 100 * team).astype(np.float32), battle_won=(first + j) % 2 == 0)


def build_fake_demo(style: str, K=3, E=4, D=5, A=4, T=7, chunk=3) -> dict:
    """What collect_demo does, with fake teams, in chunks of `chunk` joint episodes."""
    plan = style_plan(style, K, E)
    arrays = empty_demo_arrays(E, T, K, D, A)
    for t in range(len(plan.teams)):
        n = plan.episodes_of_team(t)
        for first in range(0, n, chunk):
            scatter_team_episodes(arrays, plan, t, first, fake_team_chunk(t, first, min(chunk, n - first), K, D, A, T))
    return finalize_demo_arrays(arrays)


@pytest.mark.parametrize("style", STYLES)
def test_styles_pick_the_right_episodes_per_agent(style):
    K, E = 3, 4
    arrays = build_fake_demo(style, K=K, E=E)
    e, k = np.meshgrid(np.arange(E), np.arange(K), indexing="ij")  # [E, K]
    expected_team = {"co_concurrent": 0 * k, "co_nonconcurrent": 0 * k, "indep_concurrent": 0 * k,
                     "indep_nonconcurrent": k}[style]
    expected_episode = k * E + e if style == "co_nonconcurrent" else e
    obs0 = arrays["obs"][:, 0].astype(np.float32)  # [E, K, D] first observation of agent k's e-th episode
    np.testing.assert_array_equal(obs0[..., 0], expected_team)
    np.testing.assert_array_equal(obs0[..., 1], expected_episode)
    np.testing.assert_array_equal(obs0[..., 2], k)  # agent k sees agent k's own observations
    np.testing.assert_array_equal(arrays["team"], expected_team)
    np.testing.assert_array_equal(arrays["episode"], expected_episode)
    np.testing.assert_array_equal(arrays["length"], 1 + (expected_episode + expected_team) % 7)
    np.testing.assert_array_equal(arrays["ep_return"], expected_episode + 100 * expected_team)
    # whole episodes were copied: time index intact up to the final observation, zero after
    for ee in range(E):
        for kk in range(K):
            L = arrays["length"][ee, kk]
            np.testing.assert_array_equal(arrays["obs"][ee, : L + 1, kk, 3], np.arange(L + 1))
            assert (arrays["obs"][ee, L + 1:, kk] == 0).all()
            assert (arrays["actions"][ee, L:, kk] == 0).all()
    if style == "co_nonconcurrent":  # disjoint blocks covering the K*E sampled episodes
        assert sorted(arrays["episode"].ravel().tolist()) == list(range(K * E))
    if style.endswith("_concurrent") and style != "co_nonconcurrent":
        # concurrent: every agent's e-th episode is the same joint episode
        assert (arrays["episode"] == arrays["episode"][:, :1]).all()
        assert (arrays["team"] == arrays["team"][:, :1]).all()


def test_team_composition_of_each_style():
    assert style_plan("co_concurrent", 3, 2).teams == [(0, 0, 0)]
    assert style_plan("indep_concurrent", 3, 2).teams == [(0, 1, 2)]
    assert style_plan("indep_nonconcurrent", 3, 2).teams == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    assert style_plan("co_nonconcurrent", 3, 2).episodes_of_team(0) == 6
    with pytest.raises(ValueError, match="unknown style"):
        style_plan("mixed", 3, 2)


def test_indep_concurrent_team_uses_agent_k_of_run_k(spec):
    """The mixed team's agent k acts exactly as agent k of run k."""
    from dm2_repro.algos import make_learner
    from dm2_repro.config import hp_dict, make_hp

    hp = make_hp("ippo", "3s_vs_3z", "smoke")
    K = spec.n_agents
    torch.manual_seed(0)
    runs = [make_learner("ippo", spec, hp) for _ in range(K)]
    snapshots = [dict(policy=r.policy_state(), hp=hp_dict(hp)) for r in runs]
    team = team_policy("ippo", spec, snapshots, (0, 1, 2))
    obs = torch.randn(6, K, spec.obs_dim)
    last = torch.randint(-1, spec.n_actions, (6, K))

    def logits(learner):
        from dm2_repro.networks import agent_inputs

        x = agent_inputs(obs, last, spec.n_actions, K)
        return learner.actor.step(x, learner.init_hidden(6))[0]

    mixed = logits(team)
    for k in range(K):
        torch.testing.assert_close(mixed[:, k], logits(runs[k])[:, k])
        assert not torch.allclose(mixed[:, k], logits(runs[(k + 1) % K])[:, k])


def test_gather_per_agent():
    x = torch.arange(4 * 2 * 3).view(4, 2, 3)  # [E, T, K]
    idx = torch.tensor([[3, 0, 1], [2, 2, 0]])  # [n, K]
    out = gather_per_agent(x, idx)
    assert out.shape == (2, 2, 3)
    for i in range(2):
        for k in range(3):
            assert torch.equal(out[i, :, k], x[idx[i, k], :, k])


def write_fake_demo(path, style="co_concurrent", spec=FAKE_SPEC, E=4, **meta):
    arrays = build_fake_demo(style, K=spec.n_agents, E=E, D=spec.obs_dim, A=spec.n_actions, T=spec.episode_limit)
    return write_demo(path, arrays, dict(map=spec.map_name, style=style, quality=0.25, source_algo="ippo",
                                         **meta)), arrays


def test_round_trip(tmp_path):
    path, arrays = write_fake_demo(tmp_path / "d.npz", style="co_nonconcurrent")
    demo = load_demo(path, FAKE_SPEC)
    assert demo.n_episodes == 4 and demo.quality == 0.25
    assert demo.obs.dtype == torch.float16
    np.testing.assert_array_equal(demo.obs.numpy(), arrays["obs"])
    np.testing.assert_array_equal(demo.actions.numpy(), arrays["actions"])
    np.testing.assert_array_equal(demo.length.numpy(), arrays["length"])
    t = np.arange(demo.actions.shape[1])[None, :, None]
    np.testing.assert_array_equal(demo.mask.numpy(), (t < arrays["length"][:, None, :]).astype(np.float32))
    prov = demo.provenance()
    assert prov["path"] == str(path) and prov["quality"] == 0.25 and prov["style"] == "co_nonconcurrent"
    assert prov["sha256"] == json.loads(path.with_suffix(".json").read_text())["sha256"]
    json.dumps(prov)  # recordable in Sacred's run info
    with np.load(path, allow_pickle=False) as npz:  # plain arrays only
        assert set(npz.files) >= {"obs", "actions", "length"}


def test_summarise_adds_the_sampled_episodes_summary_and_keeps_recorded_values(tmp_path, capsys):
    path, arrays = write_fake_demo(tmp_path / "d.npz", demo_return_mean=123.0)
    main(["summarise", str(path)])
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["demo_ep_length_mean"] == pytest.approx(arrays["length"].mean())
    assert meta["demo_win_rate"] == pytest.approx(arrays["battle_won"].mean())
    assert meta["demo_return_mean"] == 123.0   # recorded before: kept
    assert "demo_ep_length_mean" in capsys.readouterr().out
    load_demo(path)   # still a valid file (sha256 of the npz untouched)


def test_corrupted_files_are_rejected(tmp_path):
    path, _ = write_fake_demo(tmp_path / "d.npz")
    good = path.read_bytes()
    # edited bytes
    edited = bytearray(good)
    edited[len(good) // 2] ^= 0xFF
    path.write_bytes(bytes(edited))
    with pytest.raises(DemoError, match=r"d\.npz.*sha256.*modified or truncated"):
        load_demo(path, FAKE_SPEC)
    # truncated
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DemoError, match=r"d\.npz.*sha256"):
        load_demo(path, FAKE_SPEC)
    # unreadable although the recorded sha256 matches (e.g. written by something else)
    path.write_bytes(b"not a zip file")
    meta = json.loads(path.with_suffix(".json").read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256(b"not a zip file").hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(DemoError, match=r"d\.npz.*cannot be read"):
        load_demo(path, FAKE_SPEC)
    # missing json
    path2, _ = write_fake_demo(tmp_path / "e.npz")
    path2.with_suffix(".json").unlink()
    with pytest.raises(DemoError, match=r"e\.npz.*e\.json not found"):
        load_demo(path2, FAKE_SPEC)
    with pytest.raises(DemoError, match="file not found"):
        load_demo(tmp_path / "nothing.npz", FAKE_SPEC)


def test_inconsistent_arrays_are_rejected(tmp_path):
    arrays = build_fake_demo("co_concurrent")
    arrays["length"] = arrays["length"].copy()
    arrays["length"][0, 0] = 99  # longer than the stored time axis
    path = write_demo(tmp_path / "f.npz", arrays, dict(map="3s_vs_3z", style="co_concurrent", quality=0.1))
    with pytest.raises(DemoError, match=r"f\.npz.*lengths outside"):
        load_demo(path, FAKE_SPEC)
    arrays = build_fake_demo("co_concurrent")
    arrays["actions"] = arrays["actions"][:, :-1]
    path = write_demo(tmp_path / "g.npz", arrays, dict(map="3s_vs_3z", style="co_concurrent", quality=0.1))
    with pytest.raises(DemoError, match=r"g\.npz.*actions has shape"):
        load_demo(path, FAKE_SPEC)


@pytest.mark.parametrize("field,value", [("map_name", "5m_vs_6m"), ("n_agents", 5), ("obs_dim", 75),
                                         ("n_actions", 9)])
def test_mismatched_env_is_rejected(tmp_path, field, value):
    path, _ = write_fake_demo(tmp_path / "d.npz")
    other = EnvSpec(**{**FAKE_SPEC.__dict__, field: value})
    name = {"map_name": "map"}.get(field, field)
    with pytest.raises(DemoError, match=rf"d\.npz: made for another environment: {name} is .* in the env"):
        load_demo(path, other)


def test_collect_regenerates_a_demonstration_bit_for_bit(smoke_ippo_run, spec, tmp_path):
    """Issue 12.4: the same source snapshot and seed give the same file, byte for byte (so the .npz
    files stay out of git: the committed json's sha256 and snapshot are enough to remake them)."""
    def collect(out, seed=5):
        main(["collect", "--runs", str(smoke_ippo_run), "--step", "400", "--style", "co_concurrent",
              "--episodes", "3", "--quality-episodes", "2", "--seed", str(seed), "--n-envs", "4", "--out", str(out)])

    first, second = tmp_path / "a" / "d.npz", tmp_path / "b" / "d.npz"
    collect(first)
    collect(second)
    assert first.read_bytes() == second.read_bytes()
    a, b = (json.loads(p.with_suffix(".json").read_text()) for p in (first, second))
    assert a["sha256"] == b["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    demo = load_demo(first, spec)   # an ordinary .npz for numpy and for load_demo
    with np.load(first, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(ARRAYS) and npz["obs"].dtype == np.float16
    assert demo.n_episodes == 3
    collect(tmp_path / "c" / "d.npz", seed=6)   # another seed: another file
    assert (tmp_path / "c" / "d.npz").read_bytes() != first.read_bytes()


def test_real_collection_from_smoke_run(smoke_ippo_run, spec, tmp_path, capsys):
    """The CLI on a real IPPO snapshot: co_concurrent, and co_nonconcurrent's disjoint blocks."""
    out = tmp_path / "demos" / "d.npz"
    main(["collect", "--runs", str(smoke_ippo_run), "--step", "400", "--style", "co_concurrent",
          "--episodes", "2", "--quality-episodes", "4", "--seed", "3", "--n-envs", "4", "--epsilon", "0",
          "--out", str(out)])
    assert "wrote" in capsys.readouterr().out
    demo = load_demo(out, spec)
    meta = demo.meta
    assert meta["n_episodes"] == 2 and meta["checkpoint_step"] == 400 and meta["source_algo"] == "ippo"
    assert meta["sampling"] == "stochastic" and meta["epsilon"] is None
    assert 0.0 <= meta["quality"] <= 1.0 and meta["quality_episodes"] == 4
    # recorded relative to the results dir the file is written into (tmp_path/demos/d.npz -> tmp_path)
    assert meta["source_runs"] == [os.path.relpath(smoke_ippo_run.resolve(), tmp_path.resolve())]
    assert meta["code_version"]["dm2_repro"]
    # the sampled episodes' own summary beside the greedy quality (what DM² imitates)
    assert meta["demo_ep_length_mean"] == pytest.approx(demo.length.double().mean().item())
    assert meta["demo_win_rate"] == pytest.approx(demo.battle_won.double().mean().item())
    # concurrent: every agent's e-th episode is the same joint episode -> same length and return
    assert (demo.length == demo.length[:, :1]).all() and (demo.ep_return == demo.ep_return[:, :1]).all()
    assert (demo.length >= 1).all() and demo.obs.abs().sum() > 0
    # non-concurrent: K*E joint episodes, agent k's block [kE, (k+1)E); the first block equals the
    # concurrent file (same seed -> same sampled episodes)
    out2 = tmp_path / "demos" / "n.npz"
    main(["collect", "--runs", str(smoke_ippo_run), "--step", "400", "--style", "co_nonconcurrent",
          "--episodes", "2", "--quality-episodes", "4", "--seed", "3", "--n-envs", "4", "--out", str(out2)])
    non = load_demo(out2, spec)
    with np.load(out2, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["episode"], np.arange(2)[:, None] + 2 * np.arange(3)[None, :])
    T = min(non.obs.shape[1], demo.obs.shape[1])
    torch.testing.assert_close(non.obs[:, :T, 0], demo.obs[:, :T, 0])
    # the independent styles' machinery on three copies of one run: the "mixed" team is that run's team,
    # so indep_concurrent must reproduce co_concurrent exactly
    out3 = tmp_path / "demos" / "i.npz"
    main(["collect", "--runs", *[str(smoke_ippo_run)] * 3, "--step", "400", "--style", "indep_concurrent",
          "--episodes", "2", "--quality-episodes", "4", "--seed", "3", "--n-envs", "4", "--out", str(out3)])
    indep = load_demo(out3, spec)
    assert indep.meta["teams"] == [[0, 1, 2]] and indep.meta["quality"] == meta["quality"]
    assert np.isfinite(meta["quality_return"]) and indep.meta["quality_return"] == meta["quality_return"]
    torch.testing.assert_close(indep.obs, demo.obs)
    torch.testing.assert_close(indep.actions, demo.actions)
    with pytest.raises(ValueError, match="epsilon-greedy sampling applies to value-based"):
        main(["collect", "--runs", str(smoke_ippo_run), "--step", "400", "--style", "co_concurrent",
              "--episodes", "2", "--epsilon", "0.2", "--n-envs", "4", "--out", str(tmp_path / "x.npz")])
    with pytest.raises(FileNotFoundError, match="snapshots of this run"):
        main(["collect", "--runs", str(smoke_ippo_run), "--step", "123", "--style", "co_concurrent",
              "--episodes", "2", "--out", str(tmp_path / "x.npz")])
    with pytest.raises(ValueError, match="needs 3 source run"):
        main(["collect", "--runs", str(smoke_ippo_run), "--step", "400", "--style", "indep_concurrent",
              "--episodes", "2", "--n-envs", "4", "--out", str(tmp_path / "x.npz")])


def test_qmix_source_is_sampled_epsilon_greedily(spec, tmp_path):
    """A QMIX snapshot: epsilon-greedy sampling with the paper's per-map epsilon when none is given."""
    from dm2_repro.algos import make_learner
    from dm2_repro.config import hp_dict, make_hp
    from dm2_repro.demos import collect_demo

    hp = make_hp("qmix", "3s_vs_3z", "smoke")
    torch.manual_seed(0)
    qmix = make_learner("qmix", spec, hp)
    run = tmp_path / "runs" / "1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(dict(algo="qmix", map="3s_vs_3z", backend="smax", seed=1)))
    torch.save(dict(policy=qmix.policy_state(), algo="qmix", map="3s_vs_3z", env_step=100, seed=1,
                    hp=hp_dict(hp)), run / "checkpoints" / "policy_100.pt")
    out = collect_demo([run], 100, "co_concurrent", 2, tmp_path / "q.npz", quality_episodes=4, n_envs=4,
                       progress=False)
    meta = load_demo(out, spec).meta
    assert meta["sampling"] == "epsilon_greedy" and meta["source_algo"] == "qmix"
    assert meta["epsilon"] == 0.1  # paper_tables.yaml maps.3s_vs_3z.qmix_demo_epsilon
    with pytest.raises(ValueError, match="independent styles need per-agent actors"):
        collect_demo([run] * 3, 100, "indep_concurrent", 2, tmp_path / "r.npz", n_envs=4, progress=False)
