"""Fake Sacred run directories and demonstration files for tests, written the way the real
`dm2_repro.train` and `dm2_repro.demos` write theirs (see the contract in experiments/__init__).

Also a stand-in for both CLIs, so the runner can be tested without training anything:
    python tests/fixtures_runs.py train with algo=ippo map=5m_vs_6m seed=1 ...
    python tests/fixtures_runs.py demos collect --runs DIR ... --out results/demos/x.npz
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import yaml


def _now() -> str:
    return dt.datetime.utcnow().isoformat()


def write_run(results_dir, run_id, *, algo, map_name, seed, scale="cpu", backend="smax", demo="",
              tag="", hp=None, status="COMPLETED", metrics=None, info=None, heartbeat=None,
              hostname=None, resume="", gail_reward=None) -> Path:
    """A Sacred run dir. `metrics` maps a metric name to (steps, values); `gail_reward` None: a run from
    before the key (read as `logit`)."""
    path = Path(results_dir) / "runs" / str(run_id)
    path.mkdir(parents=True, exist_ok=True)
    config = {"algo": algo, "map": map_name, "seed": seed, "scale": scale, "backend": backend,
              "demo": str(demo), "tag": tag, "hp": hp or {}, "device": "cpu", "resume": resume,
              "results_dir": str(results_dir)}
    if gail_reward is not None:
        config["gail_reward"] = gail_reward
    run = {"status": status, "start_time": _now(), "heartbeat": heartbeat or _now(),
           "stop_time": None if status == "RUNNING" else _now(),
           "host": {"hostname": hostname or socket.gethostname()},
           "info": info or {}, "command": "main", "meta": {}, "result": None}
    (path / "config.json").write_text(json.dumps(config))
    (path / "run.json").write_text(json.dumps(run))
    timestamps = lambda n: [_now()] * n
    (path / "metrics.json").write_text(json.dumps({
        name: {"steps": [int(s) for s in steps], "values": [float(v) for v in values],
               "timestamps": timestamps(len(steps))}
        for name, (steps, values) in (metrics or {}).items()}))
    return path



def write_job_run(results_dir, run_id, job, final=0.5, steps=None, **kwargs) -> Path:
    """A run of an experiments.TrainJob whose win rate rises linearly to `final`."""
    curve = win_curve(final, steps) if steps else win_curve(final)
    metrics = kwargs.pop("metrics", {"test_battle_won_mean": curve})
    return write_run(results_dir, run_id, algo=job.algo, map_name=job.map, seed=job.seed,
                     scale=job.scale, backend=job.backend,
                     demo=job.demo.path(results_dir) if job.demo else "", tag=job.tag,
                     hp=dict(job.hp), metrics=metrics, gail_reward=job.gail_reward or None, **kwargs)


def gail_metrics(steps, expert_acc, agent_acc, ratio=None, per_agent=True) -> dict:
    """The GAIL diagnostics a DM²-family learner logs once per update, as `metrics` for write_run.

    expert_acc, agent_acc, ratio: [n_updates][n_agents] values (ratio None: a run older than
    gail_env_ratio). per_agent False: only the agent-averaged keys, as runs logged before the
    per-agent `NAME/k` keys existed."""
    steps = list(steps)
    metrics = {}
    for name, values in (("disc_expert_acc", expert_acc), ("disc_agent_acc", agent_acc),
                         ("gail_env_ratio", ratio)):
        if values is None:
            continue
        values = np.asarray(values, dtype=float)
        metrics[name] = (steps, values.mean(axis=1))
        if per_agent:
            for k in range(values.shape[1]):
                metrics[f"{name}/{k}"] = (steps, values[:, k])
    metrics["r_gail_mean"] = (steps, [0.1] * len(steps))
    metrics["r_env_mean"] = (steps, [0.05] * len(steps))
    return metrics


def write_demo(npz_path, *, quality=0.5, corrupt=False, **meta) -> Path:
    """A demonstration file and its json (sha256 matching unless `corrupt`)."""
    npz_path = Path(npz_path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz_path, obs=np.zeros((2, 3, 4), dtype=np.float32))
    sha = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    meta = {"quality": quality, "sha256": "0" * 64 if corrupt else sha, **meta}
    npz_path.with_suffix(".json").write_text(json.dumps(meta))
    return npz_path


def win_curve(final: float, steps=(0, 50_000, 100_000, 150_000, 200_000)):
    """A linear win-rate curve from 0 to `final`, as (steps, values)."""
    steps = list(steps)
    return steps, [final * i / (len(steps) - 1) for i in range(len(steps))]


# ---------------------------------------------------------------------------------------------
# Stand-in CLIs
# ---------------------------------------------------------------------------------------------

def _fake_train(args: list[str]) -> None:
    assert args[0] == "with", args
    values = dict(arg.split("=", 1) for arg in args[1:])
    results = Path(values.pop("results", None) or values.pop("results_dir"))  # results_dir: the old name
    runs = results / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    next_id = 1 + max((int(p.name) for p in runs.iterdir() if p.name.isdigit()), default=0)
    while True:  # claim the id atomically, as Sacred does: parallel jobs may race for the same one
        try:
            (runs / str(next_id)).mkdir()
            break
        except FileExistsError:
            next_id += 1
    hp = {k[3:]: yaml.safe_load(v) for k, v in values.items() if k.startswith("hp.")}   # typed, as Sacred records
    # Like the real trainer: policy snapshots, a resumable checkpoint, the pid.
    checkpoints = runs / str(next_id) / "checkpoints"
    checkpoints.mkdir()
    for step in (400, 800):
        (checkpoints / f"policy_{step}.pt").write_bytes(b"")
    (checkpoints / "last.pt").write_bytes(b"")
    info = {"checkpoint": str(checkpoints / "last.pt"), "pid": os.getpid()}
    write_run(results, next_id, info=info, algo=values["algo"], map_name=values["map"], seed=int(values["seed"]),
              scale=values["scale"], backend=values["backend"], demo=values.get("demo", ""),
              tag=values.get("tag", ""), hp=hp, resume=values.get("resume", ""),
              gail_reward=values.get("gail_reward", "absorbing"),   # the real trainer records its default
              metrics={"test_battle_won_mean": win_curve(0.5)})
    print("fake train run", next_id, values)


def _fake_demos(args: list[str]) -> None:
    assert args[0] == "collect", args
    out = Path(args[args.index("--out") + 1])
    runs = args[args.index("--runs") + 1:args.index("--step")]
    assert all(Path(r, "config.json").exists() for r in runs), runs
    write_demo(out, quality=0.4, step=int(args[args.index("--step") + 1]))
    print("fake demo", out)


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    {"train": _fake_train, "demos": _fake_demos}[command](rest)
