"""Where a run keeps its policy snapshots: `checkpoints/policy_<env step>.pt` (train.py writes them;
dm2_repro/demos/collect.py samples them; the runner picks the step a demonstration job needs). One home for the name.
And how a checkpoint or snapshot file is checked before use, without loading torch (`peek_torch_file`,
`check_torch_file`): intact zip and pickle, written for this algo and map."""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

from dm2_repro.cli_io import DamagedFile, InputError, MissingInput, first_line

PREFIX, SUFFIX = "policy_", ".pt"
CHECKPOINT_FORMAT = 1   # version of the checkpoint / policy snapshot layout (train.py's `meta`)


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{int(step)}{SUFFIX}"


def snapshot_steps(run_dir: str | Path) -> list[int]:
    """Env steps of the run's policy snapshots, ascending (other files in checkpoints/ ignored)."""
    steps = []
    for path in (Path(run_dir) / "checkpoints").glob(f"{PREFIX}*{SUFFIX}"):
        suffix = path.name[len(PREFIX):-len(SUFFIX)]
        if suffix.isdigit():
            steps.append(int(suffix))
    return sorted(steps)


# ---------------------------------------------------------------------------------------------
# Files written by the package, read without torch
# ---------------------------------------------------------------------------------------------

class _Stub:
    """Stands for any torch object (tensor, storage, size) while peeking: holds nothing, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _NotPeekable(Exception):
    pass


class _PeekUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _Stub
        raise _NotPeekable(f"{module}.{name}")

    def persistent_load(self, pid):
        return None


def peek_torch_file(path) -> dict | None:
    """The plain (non-tensor) content of a file written by torch.save, read with the standard
    library only: the zip must be intact (every entry's CRC) and its pickle complete. Tensors come
    back as stubs; nothing is executed (only torch names and OrderedDict resolve, to inert stubs).
    Raises DamagedFile naming the file; returns None if the pickle holds other kinds of objects
    (then only torch's own weights-only loader can tell)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DamagedFile(f"{path}: damaged ({bad} fails its CRC check)")
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                raise DamagedFile(f"{path}: not a torch checkpoint (no data.pkl in the zip)")
            data = archive.read(names[0])
    except DamagedFile:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DamagedFile(f"{path}: damaged or not a checkpoint ({first_line(exc)}); "
                          "files are written to a temporary name and renamed, so this one was "
                          "truncated or replaced by something else") from None
    try:
        return _PeekUnpickler(io.BytesIO(data)).load()
    except _NotPeekable:
        return None
    except Exception as exc:   # a truncated or garbled pickle: any error, never code execution
        raise DamagedFile(f"{path}: damaged (its pickle cannot be read: {first_line(exc)})") from None


def check_checkpoint_meta(meta, path, algo: str, map_name: str, obs_dim=None, n_actions=None,
                          n_agents=None) -> None:
    """A checkpoint's / snapshot's recorded `meta` against the run it is loaded into."""
    if not isinstance(meta, dict):
        return   # written before checkpoints recorded their metadata: nothing to compare
    version = meta.get("format_version")
    if version != CHECKPOINT_FORMAT:
        raise DamagedFile(f"{path}: checkpoint format version {version!r}, this code reads version "
                          f"{CHECKPOINT_FORMAT}")
    want = dict(algo=algo, map=map_name, obs_dim=obs_dim, n_actions=n_actions, n_agents=n_agents)
    wrong = [f"{k} {meta.get(k)!r} (expected {v!r})" for k, v in want.items()
             if v is not None and k in meta and meta[k] != v]
    if wrong:
        raise InputError(f"{path}: made for another run: {', '.join(wrong)}")


def check_torch_file(path, what: str, algo: str, map_name: str) -> dict | None:
    """A checkpoint or snapshot file: present, intact, of this algo and map (its recorded meta, or
    for snapshots written before meta existed, its algo/map keys)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{what} {path} does not exist")
    content = peek_torch_file(path)
    if isinstance(content, dict):
        meta = content.get("meta")
        if meta is None and "algo" in content and "map" in content:   # an older snapshot
            meta = dict(format_version=CHECKPOINT_FORMAT, algo=content["algo"], map=content["map"])
        check_checkpoint_meta(meta, path, algo, map_name)
    return content
