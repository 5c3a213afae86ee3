"""Demonstrations: sample expert policy snapshots into per-agent episode files, and load them.

    python -m dm2_repro.demos collect --runs RUN_DIR [RUN_DIR ...] --step ENVSTEP --style STYLE \
        --episodes E [--epsilon EPS] [--quality-episodes 128] [--seed 0] --out results/demos/NAME.npz
    python -m dm2_repro.demos show results/demos/NAME.npz      # verify and print the metadata
    python -m dm2_repro.demos summarise results/demos/*.npz    # (re)write the sampled team's summary into NAME.json

A demonstration file holds, for every agent k, its own E episodes (the styles below decide which
joint episode agent k's e-th episode comes from; agent k's e-th episode and agent j's e-th episode
are the same joint episode only in the concurrent styles):

    obs[E, T+1, K, D]  float16   agent k's observations o_0 .. o_len of its e-th episode (0 after)
    actions[E, T, K]   int16     its actions a_0 .. a_{len-1} (0 on padding)
    avail[E, T, K, A]  bool      the actions available when it acted (True on padding)
    length[E, K]       int32     steps of the episode; mask[e, t, k] = t < length[e, k]
    ep_return[E, K]    float32   team return of that episode
    battle_won[E, K]   bool
    team[E, K]         int16     which executed team (STYLES plan) the episode comes from
    episode[E, K]      int32     index of the joint episode within that team's sampled episodes

NAME.json holds the metadata (map, sizes, sources, style, sha256 of NAME.npz, ...): `quality` and
`quality_return` are the GREEDY win rate and return of the source team (figures' dotted lines, the paper's
demonstration quality); `demo_win_rate`, `demo_return_mean` and `demo_ep_length_mean` describe the SAMPLED
episodes in the file, the ones DM² imitates (often far weaker than the greedy team).
Plain arrays only: files are read with allow_pickle=False, so loading never runs code.

Styles (the paper's Figure 3 ablation; K agents, E episodes per agent):
    co_concurrent        one team (one run) samples E joint episodes; agent k's e-th = joint e (DM²)
    co_nonconcurrent     one team samples K*E joint episodes; agent k gets the block [k*E, (k+1)*E)
    indep_concurrent     K runs; agent k's actor is run k's agent-k actor; the mixed team is executed
                         together for E episodes; agent k's e-th = joint e
    indep_nonconcurrent  K runs; run k's own team samples E episodes; agent k's e-th = run k's joint e

Reference: docs/dm2.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dm2_repro.training.snapshots import snapshot_path, snapshot_steps
from dm2_repro.cli_io import (DamagedFile, InputError, MissingInput, Parser, at_least, atomic_write, atomic_write_text, fail,
                     first_line, relative_to_results, sha256_file)
from dm2_repro.training.snapshots import check_torch_file, peek_torch_file

# torch is imported where it is used: `python -m dm2_repro.demos` checks its arguments without it
STYLES = ("co_concurrent", "co_nonconcurrent", "indep_concurrent", "indep_nonconcurrent")
FORMAT_VERSION = 1
ARRAYS = ("obs", "actions", "avail", "length", "ep_return", "battle_won", "team", "episode")
META_KEYS = ("map", "n_agents", "obs_dim", "n_actions", "style", "n_episodes", "quality", "sha256")
# seed streams of the sampled environments, disjoint from training (seed) and evaluation (seed+10007)
DEMO_SEED_OFFSET = 20_011
QUALITY_SEED_OFFSET = 30_011
TEAM_COUNTER_STRIDE = 1_000_000  # rollout counters of team t start at t * stride


class DemoError(ValueError):
    """A demonstration file that is missing, corrupted, incomplete or made for another env."""


# ---------------------------------------------------------------------------------------------
# Styles: which (team, joint episode) every agent's e-th episode comes from
# ---------------------------------------------------------------------------------------------

@dataclass
class StylePlan:
    teams: list[tuple[int, ...]]  # team t = the source run of each agent's actor, e.g. (0, 0, 0)
    team_of: np.ndarray  # [E, K] team of agent k's e-th episode
    episode_of: np.ndarray  # [E, K] joint episode index within that team's sampled episodes

    def episodes_of_team(self, t: int) -> int:
        """How many joint episodes team t must sample."""
        return int(self.episode_of[self.team_of == t].max()) + 1


def style_plan(style: str, n_agents: int, n_episodes: int) -> StylePlan:
    K, E = n_agents, n_episodes
    e = np.arange(E)[:, None].repeat(K, 1)  # [E, K]: e
    k = np.arange(K)[None, :].repeat(E, 0)  # [E, K]: k
    if style == "co_concurrent":
        return StylePlan([(0,) * K], np.zeros((E, K), np.int64), e)
    if style == "co_nonconcurrent":
        return StylePlan([(0,) * K], np.zeros((E, K), np.int64), k * E + e)
    if style == "indep_concurrent":
        return StylePlan([tuple(range(K))], np.zeros((E, K), np.int64), e)
    if style == "indep_nonconcurrent":
        return StylePlan([(i,) * K for i in range(K)], k, e)
    raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")


def n_sources(style: str, n_agents: int) -> int:
    return 1 if style.startswith("co_") else n_agents


def empty_demo_arrays(E: int, T: int, K: int, D: int, A: int) -> dict[str, np.ndarray]:
    return dict(obs=np.zeros((E, T + 1, K, D), np.float16), actions=np.zeros((E, T, K), np.int16),
                avail=np.ones((E, T, K, A), bool), length=np.zeros((E, K), np.int32),
                ep_return=np.zeros((E, K), np.float32), battle_won=np.zeros((E, K), bool),
                team=np.full((E, K), -1, np.int16), episode=np.full((E, K), -1, np.int32))


def scatter_team_episodes(out: dict, plan: StylePlan, team: int, first: int, chunk: dict) -> None:
    """Copy the joint episodes [first, first + n) that team `team` just sampled into the slots of
    the agents whose episodes they are. chunk: numpy obs[n, T'+1, K, D], actions[n, T', K],
    avail[n, T'+1, K, A], ep_length[n], ep_return[n], battle_won[n] (T' <= the output's T)."""
    n = chunk["actions"].shape[0]
    es, ks = np.nonzero((plan.team_of == team) & (plan.episode_of >= first) & (plan.episode_of < first + n))
    j = plan.episode_of[es, ks] - first  # row of each selected (e, k) in the chunk
    T = chunk["actions"].shape[1]
    # x[j, :, k] with j, k index arrays of equal length m -> [m, T, ...] (numpy puts the advanced dim first)
    out["obs"][es, : T + 1, ks] = chunk["obs"][j, :, ks]
    out["actions"][es, :T, ks] = chunk["actions"][j, :, ks]
    out["avail"][es, :T, ks] = chunk["avail"][j, :T, ks]
    out["length"][es, ks] = chunk["ep_length"][j]
    out["ep_return"][es, ks] = chunk["ep_return"][j]
    out["battle_won"][es, ks] = chunk["battle_won"][j]
    out["team"][es, ks] = team
    out["episode"][es, ks] = plan.episode_of[es, ks]


def finalize_demo_arrays(out: dict) -> dict:
    """Zero every padded step (obs after o_len, actions from len on; avail True there) and trim time
    to the longest episode, so padding carries no information and compresses to nothing. In place:
    the obs array is the large one."""
    length = out["length"]
    t = np.arange(out["obs"].shape[1])[None, :, None]  # [1, T+1, 1]
    out["obs"][t > length[:, None, :]] = 0
    real = t[:, :-1] < length[:, None, :]  # [E, T, K]
    out["actions"][~real] = 0
    out["avail"][~real] = True
    if not np.isfinite(out["obs"]).all():
        raise ValueError("observations do not fit float16 (inf/nan after the cast)")
    T = int(length.max())
    return {**out, "obs": out["obs"][:, : T + 1], "actions": out["actions"][:, :T], "avail": out["avail"][:, :T]}


# ---------------------------------------------------------------------------------------------
# Writing and reading files
# ---------------------------------------------------------------------------------------------

def code_version() -> dict:
    from dm2_repro import __version__

    version = {"dm2_repro": __version__, "git_commit": None, "git_dirty": None}
    root = Path(__file__).resolve().parent.parent
    try:
        version["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                               text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        version["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return version


NPZ_DATE = (1980, 1, 1, 0, 0, 0)   # the zip entries' timestamp (the earliest a zip can hold)


def write_demo(out_path: str | Path, arrays: dict, meta: dict) -> Path:
    """Write NAME.npz (compressed plain arrays) then NAME.json (metadata + sha256 of the npz).
    Both are written to unique temporary names and renamed, json last: a demonstration whose json
    exists and whose sha256 matches is complete, and two writers never interleave."""
    out_path = Path(out_path)
    if out_path.suffix != ".npz":
        raise ValueError(f"demonstration output must end in .npz, got {out_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"demonstration arrays missing {missing}")

    def write_npz(tmp: Path) -> None:
        # np.savez_compressed's layout, but every zip entry dated NPZ_DATE: the same arrays give the
        # same bytes, so `demos collect` regenerates a demonstration bit for bit from its source
        # snapshot and seed (its sha256 in the json included) and the .npz files need not be committed
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for k in ARRAYS:
                entry = zipfile.ZipInfo(f"{k}.npy", date_time=NPZ_DATE)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(entry, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(arrays[k]), allow_pickle=False)

    atomic_write(out_path, write_npz)
    E, _, K, D = arrays["obs"].shape
    meta = {"format_version": FORMAT_VERSION, **meta, "n_episodes": int(E), "n_agents": int(K),
            "obs_dim": int(D), "n_actions": int(arrays["avail"].shape[-1]), "obs_dtype": "float16",
            "sha256": sha256_file(out_path)}
    atomic_write_text(out_path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True))
    return out_path


@dataclass
class Demo:
    """A verified demonstration file. Per-agent episodes as torch tensors: agent k's e-th episode is
    obs[e, :, k] etc. obs stays float16 in memory (it is the largest array); `.float()` what you use."""

    path: Path
    sha256: str
    meta: dict
    obs: torch.Tensor  # [E, T+1, K, D] float16
    actions: torch.Tensor  # [E, T, K] long
    avail: torch.Tensor  # [E, T, K, A] bool
    mask: torch.Tensor  # [E, T, K] float, 1 on agent k's real steps
    length: torch.Tensor  # [E, K] long
    ep_return: torch.Tensor  # [E, K]
    battle_won: torch.Tensor  # [E, K] float

    @property
    def n_episodes(self) -> int:
        return self.obs.shape[0]

    @property
    def quality(self) -> float | None:
        return self.meta.get("quality")

    def provenance(self) -> dict:
        """What a training run records about the demonstration it learned from (Sacred run info):
        the metadata (incl. quality) plus where the file was and its sha256."""
        return {**self.meta, "path": str(self.path), "sha256": self.sha256}


def _fail(path, problem: str):
    raise DemoError(f"demonstration {path}: {problem}")


def verify_demo_metadata(path: str | Path) -> tuple[dict, str]:
    """A demonstration's metadata and sha256, without reading its arrays (or importing torch):
    file and json present, json readable with every META_KEYS entry, sha256 matching."""
    path = Path(path)
    json_path = path.with_suffix(".json")
    if not path.exists():
        _fail(path, "file not found")
    if not json_path.exists():
        _fail(path, f"metadata {json_path.name} not found next to it (files are written npz first, json "
                    "last: a missing json means collection did not finish)")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        _fail(path, f"metadata {json_path.name} is not valid json ({exc})")
    except OSError as exc:
        _fail(path, f"metadata {json_path.name} cannot be read ({exc})")
    if not isinstance(meta, dict):
        _fail(path, f"metadata {json_path.name} is not a json object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        _fail(path, f"metadata {json_path.name} lacks {missing}")
    sha = sha256_file(path)
    if sha != meta["sha256"]:
        _fail(path, f"sha256 {sha[:12]}... does not match the {meta['sha256'][:12]}... recorded in "
                    f"{json_path.name}: the file was modified or truncated after it was written")
    return meta, sha


def load_demo(path: str | Path, spec=None) -> Demo:
    """Read and verify a demonstration: json present, sha256 matches, arrays complete and
    consistent, and (if spec is given) made for this map, agent count, obs size and action count."""
    import torch

    path = Path(path)
    meta, sha = verify_demo_metadata(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            absent = [k for k in ARRAYS if k not in npz.files]
            if absent:
                _fail(path, f"arrays {absent} missing (has {npz.files})")
            arrays = {k: npz[k] for k in ARRAYS}
    except DemoError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        _fail(path, f"cannot be read as an npz of plain arrays ({type(exc).__name__}: {exc})")

    E, K, D, A = meta["n_episodes"], meta["n_agents"], meta["obs_dim"], meta["n_actions"]
    obs, length = arrays["obs"], arrays["length"]
    if obs.ndim != 4 or obs.shape[0] != E or obs.shape[2:] != (K, D):
        _fail(path, f"obs has shape {obs.shape}, metadata says [E={E}, T+1, K={K}, D={D}]")
    T = obs.shape[1] - 1
    want = dict(actions=(E, T, K), avail=(E, T, K, A), length=(E, K), ep_return=(E, K), battle_won=(E, K),
                team=(E, K), episode=(E, K))
    for name, shape in want.items():
        if arrays[name].shape != shape:
            _fail(path, f"{name} has shape {arrays[name].shape}, expected {shape}")
    if length.min(initial=1) < 1 or length.max(initial=0) > T:
        _fail(path, f"episode lengths outside [1, {T}]")
    if arrays["actions"].min(initial=0) < 0 or arrays["actions"].max(initial=0) >= A:
        _fail(path, f"actions outside [0, {A})")
    if spec is not None:
        expected = dict(map=spec.map_name, n_agents=spec.n_agents, obs_dim=spec.obs_dim, n_actions=spec.n_actions)
        wrong = {k: (meta[k], v) for k, v in expected.items() if meta[k] != v}
        if wrong:
            _fail(path, "made for another environment: " + ", ".join(
                f"{k} is {have} in the file but {v} in the env" for k, (have, v) in wrong.items()))
    t = torch.arange(T)
    length_t = torch.from_numpy(length.astype(np.int64))
    return Demo(path=path, sha256=sha, meta=meta, obs=torch.from_numpy(np.asarray(obs, np.float16)),
                actions=torch.from_numpy(arrays["actions"].astype(np.int64)), avail=torch.from_numpy(arrays["avail"]),
                mask=(t[None, :, None] < length_t[:, None, :]).float(), length=length_t,
                ep_return=torch.from_numpy(arrays["ep_return"].astype(np.float32)),
                battle_won=torch.from_numpy(arrays["battle_won"].astype(np.float32)))


def gather_per_agent(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Each agent's own episodes: x[E, T, K, ...], idx[n, K] -> out[n, T, K, ...] with
    out[i, :, k] = x[idx[i, k], :, k]."""
    import torch

    K = x.shape[2]
    return x[idx, :, torch.arange(K, device=x.device)].transpose(1, 2)  # [n, K, T, ...] -> [n, T, K, ...]


# ---------------------------------------------------------------------------------------------
# Collection from expert runs
# ---------------------------------------------------------------------------------------------

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


def check_collect_args(args) -> None:
    """Every `collect` argument, before torch or JAX load: counts, ranges, the output name, the
    source runs (config and an intact snapshot of --step of the run's algo and map), that they
    agree, and that their number fits the style. Raises InputError (a ValueError)."""
    from dm2_repro.envs.maps import MAPS
    from dm2_repro.cli_io import DEVICE_RE

    for name, value, low in (("--episodes", args.episodes, 1), ("--quality-episodes", args.quality_episodes, 1),
                             ("--seed", args.seed, 0), ("--n-envs", args.n_envs, 1), ("--step", args.step, 0)):
        at_least(name, value, low)
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise InputError(f"--epsilon {args.epsilon}: must be a probability in [0, 1]")
    if not DEVICE_RE.match(args.device):
        raise InputError(f"--device {args.device!r}: valid devices: cpu, cuda, cuda:<index>")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise InputError(f"--out {out}: a demonstration file must end in .npz (NAME.json is written next to it)")
    if out.exists() and out.is_dir() or any(p.exists() and not p.is_dir() for p in out.parents):
        raise InputError(f"--out {out}: cannot be written there (a directory has that name, or a parent is a file)")
    configs = [check_source(Path(r), args.step) for r in args.runs]
    for key in ("map", "backend", "algo"):
        values = sorted({str(c[key]) for c in configs})
        if len(values) > 1:
            raise InputError(f"--runs: the source runs differ in {key}: {values}")
    map_name, algo = configs[0]["map"], configs[0]["algo"]
    if map_name not in MAPS:
        raise InputError(f"--runs: unknown map {map_name!r} in {Path(args.runs[0]) / 'config.json'}")
    need = n_sources(args.style, len(MAPS[map_name].allies))
    if len(args.runs) != need:
        raise InputError(f"--runs: style {args.style} on {map_name} needs {need} source run(s) (agent k's policy "
                         f"from run k for the independent styles), got {len(args.runs)}")
    if args.epsilon and algo not in EPSILON_GREEDY_ALGOS:
        raise InputError(f"--epsilon {args.epsilon} given, but {algo} sources sample their stochastic policy; "
                         "epsilon-greedy sampling applies to value-based (QMIX) sources only")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # the module doc's usage lines name the defaults; each command's --help lists every option with its default
    parser = Parser(prog="python -m dm2_repro.demos", description="\n\n".join(__doc__.split("\n\n")[:1]),
                    epilog="every option of a command, with its default: python -m dm2_repro.demos COMMAND --help "
                           "(collect: --style co_concurrent, --quality-episodes 128, --seed 0, --device cpu, "
                           "--n-envs the source run's, --epsilon the map's from paper_tables.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = sub.add_parser("collect", help="sample a demonstration file from expert run snapshots")
    c.add_argument("--runs", nargs="+", required=True, help="source run dirs (one per agent for indep_* styles)")
    c.add_argument("--step", type=int, required=True, help="snapshot env step: RUN/checkpoints/policy_<STEP>.pt")
    c.add_argument("--style", choices=STYLES, default="co_concurrent",
                   help="how agents' episodes are sampled (Figure 3's styles: co_* one source team, indep_* one "
                        "source run per agent; see the doc of dm2_repro/demos.py)")
    c.add_argument("--episodes", type=int, required=True, help="episodes per agent (E)")
    c.add_argument("--epsilon", type=float, default=None,
                   help="epsilon-greedy sampling of QMIX sources "
                        "(default: paper_tables.yaml maps.<map>.qmix_demo_epsilon)")
    c.add_argument("--quality-episodes", type=int, default=128, help="greedy episodes measuring the quality")
    c.add_argument("--seed", type=int, default=0, help="seed of the sampled episodes")
    c.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: the source run's n_envs)")
    c.add_argument("--device", default="cpu", help="torch device of the policies: cpu, cuda, cuda:<index>")
    c.add_argument("--out", required=True, help="output .npz (the .json is written next to it)")
    s = sub.add_parser("show", help="verify a demonstration file and print its metadata")
    s.add_argument("path", help="a demonstration .npz (its .json next to it)")
    m = sub.add_parser("summarise", help="write the sampled episodes' win rate, return and episode length "
                                         "into each file's json")
    m.add_argument("paths", nargs="+", help="demonstration .npz files (each verified first)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """The CLI. A bad argument raises InputError (or DemoError) before anything heavy runs; run as
    a program, that is one line and exit code 2."""
    args = parse_args(argv)
    if args.command == "collect":
        check_collect_args(args)
        path = collect_demo(args.runs, args.step, args.style, args.episodes, args.out, epsilon=args.epsilon,
                            quality_episodes=args.quality_episodes, seed=args.seed, n_envs=args.n_envs,
                            device=args.device)
        meta = json.loads(path.with_suffix(".json").read_text())
        print(f"wrote {path}: {meta['n_episodes']} episodes per agent, quality {meta['quality']:.3f}, "
              f"sampled win rate {meta['demo_win_rate']:.3f}")
    elif args.command == "summarise":
        for path in args.paths:
            summary = summarise(path)
            print(f"{path}: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    else:
        demo = load_demo(args.path)
        print(json.dumps(demo.provenance(), indent=2, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except (InputError, DemoError) as exc:
        fail(exc)
