"""Collecting demonstrations: sample expert run snapshots (policy_<STEP>.pt) into a demonstration
file, in one of the styles of dm2_repro/demos/styles.py and the format of dm2_repro/demos/files.py;
and (re)writing a file's summary of its sampled episodes.

torch is imported where it is used: `python -m dm2_repro.demos` checks its arguments without it.
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from dm2_repro.cli_io import DamagedFile, MissingInput, atomic_write_text, first_line, relative_to_results
from dm2_repro.demos.files import code_version, load_demo, write_demo
from dm2_repro.demos.styles import (STYLES, empty_demo_arrays, finalize_demo_arrays, n_sources, scatter_team_episodes,
                                    style_plan)
from dm2_repro.training.snapshots import check_torch_file, peek_torch_file, snapshot_path, snapshot_steps

# seed streams of the sampled environments, disjoint from training (seed) and evaluation (seed+10007)
DEMO_SEED_OFFSET = 20_011
QUALITY_SEED_OFFSET = 30_011
TEAM_COUNTER_STRIDE = 1_000_000  # rollout counters of team t start at t * stride


def _run_config(run_dir: Path) -> dict:
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise MissingInput(f"{run_dir} is not a run directory: no config.json")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise DamagedFile(f"{config_path} cannot be read ({first_line(exc)})") from None
    missing = [k for k in ("algo", "map", "backend") if not isinstance(config, dict) or k not in config]
    if missing:
        raise DamagedFile(f"{config_path} lacks {missing}: not a dm2_repro.train run")
    return config


def check_source(run_dir: Path, step: int) -> dict:
    """A source run of `collect`, checked without torch: its config, and its policy snapshot of
    `step` present, intact and of the run's algo and map. Returns the run's config."""
    config = _run_config(run_dir)
    ckpt = snapshot_path(run_dir, step)
    if not ckpt.exists():
        raise MissingInput(f"{ckpt} not found; snapshots of this run: {snapshot_steps(run_dir) or 'none'}")
    check_torch_file(ckpt, "policy snapshot", config["algo"], config["map"])
    return config


def load_snapshot(path: Path) -> dict:
    """A policy snapshot, loaded weights-only (never executes code); a damaged file is one line."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        peek_torch_file(path)   # names what is wrong where it can
        raise DamagedFile(f"{path}: cannot be loaded ({first_line(exc).split('. ')[0]})") from None


def _load_run(run_dir: Path, step: int) -> tuple[dict, dict]:
    config = check_source(run_dir, step)
    ckpt = snapshot_path(run_dir, step)
    snapshot = load_snapshot(ckpt)
    if not isinstance(snapshot, dict) or "policy" not in snapshot:
        raise DamagedFile(f"{ckpt}: not a policy snapshot (no policy in it)")
    if snapshot.get("map") != config["map"]:
        raise ValueError(f"{ckpt} is for map {snapshot.get('map')} but its run's config says {config['map']}")
    return config, snapshot


def team_policy(algo: str, spec, snapshots: list[dict], composition: tuple[int, ...], device="cpu"):
    """A learner whose agent k acts with the actor of agent k in snapshots[composition[k]].

    The actors of the per-agent learners are stacks of K separate networks (every tensor has the
    agent dim first), so agent k's network is the slice [k] of every tensor."""
    import torch

    from dm2_repro.algos import acting_algo, make_learner
    from dm2_repro.config import HP

    team = make_learner(acting_algo(algo), spec, HP(**snapshots[composition[0]]["hp"]), device)
    if len(set(composition)) == 1:
        team.load_policy_state(snapshots[composition[0]]["policy"])
        return team
    K = spec.n_agents
    parts = [snapshots[i]["policy"] for i in composition]
    if set(parts[0]) != {"actor"} or any(v.shape[0] != K for v in parts[0]["actor"].values()):
        raise ValueError(f"algo {algo!r} does not have one separate actor per agent (parameter sharing or "
                         "extra state): independent styles need per-agent actors, e.g. ippo")
    mixed = {name: torch.stack([parts[k]["actor"][name][k] for k in range(K)]) for name in parts[0]["actor"]}
    team.load_policy_state({"actor": mixed})
    return team


def _chunk_numpy(batch) -> dict:
    return dict(obs=batch.obs.cpu().numpy(), actions=batch.actions.cpu().numpy(), avail=batch.avail.cpu().numpy(),
                ep_length=batch.ep_length.cpu().numpy(), ep_return=batch.ep_return.cpu().numpy(),
                battle_won=batch.battle_won.cpu().numpy() > 0.5)


def collect_demo(runs: list[str | Path], step: int, style: str, episodes: int, out: str | Path,
                 epsilon: float | None = None, quality_episodes: int = 128, seed: int = 0,
                 n_envs: int | None = None, device="cpu", progress: bool = True) -> Path:
    """Sample a demonstration file from expert run snapshots (see the module docstring)."""
    import torch
    from tqdm import tqdm

    from dm2_repro.algos import capabilities
    from dm2_repro.config import paper_tables
    from dm2_repro.envs import make_env
    from dm2_repro.training.rollout import collect

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    if episodes < 1 or quality_episodes < 1:
        raise ValueError("--episodes and --quality-episodes must be >= 1")
    run_dirs = [Path(r) for r in runs]
    loaded = [_load_run(r, step) for r in run_dirs]
    configs, snapshots = [c for c, _ in loaded], [s for _, s in loaded]
    for field in ("map", "backend", "algo"):
        values = {c[field] for c in configs}
        if len(values) > 1:
            raise ValueError(f"source runs differ in {field}: {sorted(values)}")
    map_name, backend, algo = configs[0]["map"], configs[0]["backend"], configs[0]["algo"]
    hp0 = snapshots[0]["hp"]
    env = make_env(backend, map_name, int(n_envs or hp0["n_envs"]), seed=seed)
    try:
        spec = env.spec
        K = spec.n_agents
        need = n_sources(style, K)
        if len(run_dirs) != need:
            raise ValueError(f"style {style} on {map_name} needs {need} source run(s) (agent k's policy from "
                             f"run k for the independent styles), got {len(run_dirs)}")
        plan = style_plan(style, K, episodes)
        teams = [team_policy(algo, spec, snapshots, comp, device) for comp in plan.teams]
        # IPPO-like sources sample their stochastic policy; QMIX-like ones act epsilon-greedily
        sampling = capabilities(algo).acting
        if sampling == "epsilon_greedy":
            if epsilon is None:
                epsilon = float(paper_tables()["maps"][map_name]["qmix_demo_epsilon"])
            for team in teams:
                team.set_fixed_epsilon(epsilon)
        elif epsilon:
            raise ValueError(f"--epsilon {epsilon} given, but {algo} sources sample their stochastic policy; "
                             "epsilon-greedy sampling applies to value-based (QMIX) sources only")
        else:
            epsilon = None
        n_team = [plan.episodes_of_team(t) for t in range(len(teams))]
        N = env.n_envs
        total = sum(n_team) + quality_episodes * len(teams)
        bar = tqdm(total=total, unit="ep", desc=f"demo {style} {map_name}", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        gen = torch.Generator().manual_seed(seed)
        arrays = empty_demo_arrays(episodes, spec.episode_limit, K, spec.obs_dim, spec.n_actions)
        for t, team in enumerate(teams):
            for first in range(0, n_team[t], N):
                counter = t * TEAM_COUNTER_STRIDE + first // N
                batch = collect(env, team, min(N, n_team[t] - first), (seed + DEMO_SEED_OFFSET, counter),
                                greedy=False, generator=gen, device=device)
                scatter_team_episodes(arrays, plan, t, first, _chunk_numpy(batch))
                bar.update(batch.n_episodes)
        # quality: the greedy win rate (and return) of each executed team
        team_quality, team_return = [], []
        for t, team in enumerate(teams):
            batch = collect(env, team, quality_episodes, (seed + QUALITY_SEED_OFFSET, t * TEAM_COUNTER_STRIDE),
                            greedy=True, generator=torch.Generator().manual_seed(seed), device=device)
            team_quality.append(batch.battle_won.mean().item())
            team_return.append(batch.ep_return.mean().item())
            bar.update(quality_episodes)
        bar.close()
    finally:
        env.close()
    assert (arrays["team"] >= 0).all(), "some agent episodes were not filled"
    arrays = finalize_demo_arrays(arrays)
    meta = dict(
        map=map_name, backend=backend, style=style, source_algo=algo,
        # relative to the results directory the file is written into (RESULTS/demos/NAME.npz)
        source_runs=[relative_to_results(r, Path(out).resolve().parent.parent) for r in run_dirs],
        source_seeds=[int(s["seed"]) for s in snapshots],
        checkpoint_step=int(step), teams=[list(c) for c in plan.teams],
        sampling=sampling, epsilon=epsilon,
        # quality = greedy win rate of the executed team(s); indep_nonconcurrent: mean over the K teams
        quality=float(np.mean(team_quality)), team_quality=team_quality, quality_episodes=int(quality_episodes),
        quality_return=float(np.mean(team_return)),   # the same greedy episodes' mean return
        **sampled_summary(arrays["battle_won"], arrays["ep_return"], arrays["length"]),
        seed=int(seed), n_envs=int(env.n_envs), code_version=code_version(),
    )
    return write_demo(out, arrays, meta)


EPSILON_GREEDY_ALGOS = ("qmix", "qmix_ippo_arch")   # value-based sources: sampled epsilon-greedily


def sampled_summary(battle_won, ep_return, length) -> dict:
    """What the file's own (sampled) episodes achieve, over every agent's episodes ([E, K] arrays): win
    rate, mean return, mean episode length (json keys; results.DEMO_LENGTH reads the last)."""
    # numpy's own means (bool -> float64, float32 returns -> float32), as the files made before this helper
    return dict(demo_win_rate=float((np.asarray(battle_won) > 0.5).mean()),
                demo_return_mean=float(np.asarray(ep_return).mean()),
                demo_ep_length_mean=float(np.asarray(length, dtype=np.float64).mean()))


def summarise(path: str | Path) -> dict:
    """Verify a demonstration file and add sampled_summary's keys its json lacks (files made before
    2026-12-07 lack demo_ep_length_mean); recorded values stay as they are. Returns the summary."""
    demo = load_demo(path)
    summary = sampled_summary(demo.battle_won.numpy(), demo.ep_return.numpy(), demo.length.numpy())
    json_path = Path(path).with_suffix(".json")
    meta = json.loads(json_path.read_text())
    atomic_write_text(json_path, json.dumps({**summary, **meta}, indent=2, sort_keys=True))
    return summary
