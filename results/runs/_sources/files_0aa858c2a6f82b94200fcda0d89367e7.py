"""The demonstration file format: writing NAME.npz + NAME.json, verifying and loading them.

A demonstration file holds, for every agent k, its own E episodes (the style decides which joint
episode agent k's e-th episode comes from: dm2_repro/demos/styles.py; agent k's e-th episode and
agent j's e-th episode are the same joint episode only in the concurrent styles):

    obs[E, T+1, K, D]  float16   agent k's observations o_0 .. o_len of its e-th episode (0 after)
    actions[E, T, K]   int16     its actions a_0 .. a_{len-1} (0 on padding)
    avail[E, T, K, A]  bool      the actions available when it acted (True on padding)
    length[E, K]       int32     steps of the episode; mask[e, t, k] = t < length[e, k]
    ep_return[E, K]    float32   team return of that episode
    battle_won[E, K]   bool
    team[E, K]         int16     which executed team (STYLES plan) the episode comes from
    episode[E, K]      int32     index of the joint episode within that team's sampled episodes

NAME.json holds the metadata (map, sizes, sources, style, sha256 of NAME.npz, ...): `quality` and
`quality_return` are the GREEDY win rate and return of the source team (the paper's demonstration quality, the
figures' CSV rows of kind demo_greedy); `demo_win_rate`, `demo_return_mean` and `demo_ep_length_mean` describe the SAMPLED
episodes in the file, the ones DM² imitates (often far weaker than the greedy team; the figures' dotted lines).
Plain arrays only: files are read with allow_pickle=False, so loading never runs code.
"""
from __future__ import annotations

import json
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dm2_repro.cli_io import atomic_write, atomic_write_text, sha256_file

if TYPE_CHECKING:   # the annotations only; torch is imported where it is used (reading needs no torch)
    import torch

FORMAT_VERSION = 1
ARRAYS = ("obs", "actions", "avail", "length", "ep_return", "battle_won", "team", "episode")
META_KEYS = ("map", "n_agents", "obs_dim", "n_actions", "style", "n_episodes", "quality", "sha256")


class DemoError(ValueError):
    """A demonstration file that is missing, corrupted, incomplete or made for another env."""


def code_version() -> dict:
    from dm2_repro import __version__

    version = {"dm2_repro": __version__, "git_commit": None, "git_dirty": None}
    root = Path(__file__).resolve().parents[2]   # the checkout (this file is dm2_repro/demos/files.py)
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

