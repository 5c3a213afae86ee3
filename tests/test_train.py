"""The Sacred trainer: run record, checkpoints, determinism, resume, observers."""
import json
import os
import random
import subprocess
import sys
import time

import pytest
import torch

from dm2_repro import train, validate
from dm2_repro.algos.ippo import IPPO

from .conftest import TEST_MAP

CURVES = ("test_battle_won_mean", "test_return_mean", "train_return_mean", "policy_loss", "value_loss")


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _curves(run_dir):
    m = _metrics(run_dir)
    return {k: (m[k]["steps"], m[k]["values"]) for k in CURVES}


def test_smoke_run_writes_the_sacred_record(smoke_ippo_run):
    cfg = json.loads((smoke_ippo_run / "config.json").read_text())
    assert (cfg["algo"], cfg["map"], cfg["seed"], cfg["scale"], cfg["backend"]) == ("ippo", TEST_MAP, 1, "smoke", "smax")
    m = _metrics(smoke_ippo_run)
    for name in CURVES + ("env_steps_per_s", "train_battle_won_mean", "entropy"):
        assert name in m and len(m[name]["values"]) > 0, name
    assert m["test_battle_won_mean"]["steps"][0] == 0  # evaluated before learning, then every eval interval
    assert m["test_battle_won_mean"]["steps"][-1] >= 800
    run = json.loads((smoke_ippo_run / "run.json").read_text())
    assert run["status"] == "COMPLETED"
    info = json.loads((smoke_ippo_run / "info.json").read_text())
    assert info["hp"]["t_max"] == 800 and info["env_steps"] >= 800


def test_checkpoints_load_without_executing_code(smoke_ippo_run):
    ckpt = torch.load(smoke_ippo_run / "checkpoints" / "last.pt", weights_only=True)
    assert set(ckpt) >= {"learner", "generator", "counters", "metrics", "meta"}
    meta = dict(format_version=validate.CHECKPOINT_FORMAT, algo="ippo", map=TEST_MAP, backend="smax", n_agents=3)
    assert {k: ckpt["meta"][k] for k in meta} == meta and ckpt["meta"]["obs_dim"] > 0 and ckpt["meta"]["n_actions"] > 0
    snaps = sorted((smoke_ippo_run / "checkpoints").glob("policy_*.pt"))
    assert [p.name for p in snaps][:2] == ["policy_400.pt", "policy_800.pt"]
    snap = torch.load(snaps[0], weights_only=True)
    assert snap["algo"] == "ippo" and snap["env_step"] == 400 and "actor" in snap["policy"]
    assert snap["meta"] == ckpt["meta"]
    # every file was written to a unique temporary name and renamed: none is left behind
    assert not [p.name for p in (smoke_ippo_run / "checkpoints").iterdir() if not p.name.endswith(".pt")]
    # and the light check (no torch) reads what torch wrote
    assert validate.peek_torch_file(snaps[0])["meta"] == ckpt["meta"]


def test_a_damaged_checkpoint_is_one_line_naming_the_file(smoke_ippo_run, tmp_path):
    good = (smoke_ippo_run / "checkpoints" / "last.pt").read_bytes()
    for name, data in (("garbage.pt", b"not a checkpoint at all"), ("truncated.pt", good[: len(good) // 3])):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(validate.DamagedFile, match=str(path)) as info:
            train._load_checkpoint(path)
        assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_a_bad_config_fails_before_any_run_dir(tmp_path):
    for updates in (dict(hp={"n_envs": 0}), dict(algo="nope"), dict(seed="abc"), dict(hp={"lr": "abc"})):
        with pytest.raises(validate.InputError):
            train.run(dict(scale="smoke", **updates), results_dir=str(tmp_path))
    assert not (tmp_path / "runs").exists()


def test_same_seed_same_curve(smoke_ippo_run, tmp_path):
    r = train.run(dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke"), results_dir=str(tmp_path))
    assert _curves(tmp_path / "runs" / str(r._id)) == _curves(smoke_ippo_run)
    r2 = train.run(dict(algo="ippo", map=TEST_MAP, seed=2, scale="smoke"), results_dir=str(tmp_path))
    assert _curves(tmp_path / "runs" / str(r2._id)) != _curves(smoke_ippo_run)


def test_killed_run_resumes_the_same_curve(smoke_ippo_run, tmp_path, monkeypatch):
    original_update, calls = IPPO.update, {"n": 0}

    def crashing_update(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the process were stopped mid-run
        return original_update(self, batch)

    monkeypatch.setattr(IPPO, "update", crashing_update)
    cfg = dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke", hp={"checkpoint_every": 1})
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg, results_dir=str(tmp_path))
    killed = tmp_path / "runs" / "1"
    assert json.loads((killed / "run.json").read_text())["status"] == "INTERRUPTED"
    monkeypatch.setattr(IPPO, "update", original_update)
    r = train.run(dict(resume=str(killed)), results_dir=str(tmp_path))
    resumed = tmp_path / "runs" / str(r._id)
    assert r.status == "COMPLETED" and resumed != killed
    old_cfg, new_cfg = (json.loads((d / "config.json").read_text()) for d in (killed, resumed))
    assert {k: new_cfg[k] for k in train.RUN_KEYS} == {k: old_cfg[k] for k in train.RUN_KEYS}  # the real config
    assert new_cfg["hp"] == {"checkpoint_every": 1}
    # checkpoint_every only changes when checkpoints are written, not what is learned
    assert _curves(resumed) == _curves(smoke_ippo_run)
    # the resumed run holds every policy snapshot: the killed run's (copied) and its own
    from dm2_repro.training.snapshots import snapshot_steps
    assert set(snapshot_steps(killed)) <= set(snapshot_steps(resumed))
    assert snapshot_steps(resumed) == snapshot_steps(smoke_ippo_run)
    # a key given with resume= must be the run's own: another algo or seed is an error, the same is fine
    with pytest.raises(ValueError, match="algo='qmix' differs"):
        train.run(dict(resume=str(killed), algo="qmix"), results_dir=str(tmp_path))
    with pytest.raises(ValueError, match="hp .* differs"):
        train.run(dict(resume=str(killed), hp={"checkpoint_every": 5}), results_dir=str(tmp_path))
    assert train.resolve_resume(dict(resume=str(resumed), seed=1))["hp"] == {"checkpoint_every": 1}


def test_cli_resume_records_the_old_config_and_rejects_a_different_one(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "runs" / "3"
    d.mkdir(parents=True)
    cfg = dict(algo="dm2", map=TEST_MAP, seed=4, scale="smoke", backend="smax", demo="x.npz", tag="t", hp={"lr": 0.1})
    (d / "config.json").write_text(json.dumps(cfg))
    from dm2_repro.validate import train_words

    words = train_words(["train.py", "with", f"resume={d}", "hp.lr=0.1", "seed=4"])
    assert words == {"resume": str(d), "hp": {"lr": 0.1}, "seed": 4}
    # the run predates the gail_reward key: it is resumed as what it used, `logit`, not today's default
    assert {k: v for k, v in train.resolve_resume(words).items() if k in train.RUN_KEYS} == {**cfg, "gail_reward": "logit"}
    p = subprocess.run([sys.executable, "-m", "dm2_repro.train", "with", f"resume={d}", "algo=ippo",
                        f"results_dir={tmp_path / 'new'}"], capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "algo='ippo' differs" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "new").exists()  # refused before any run dir was made


def test_streams_depend_on_seed_and_algo():
    s = {(seed, algo, k): train.stream_seed(seed, algo, k) for seed in (1, 2) for algo in ("ippo", "dm2")
         for k in ("init", "rollout", "sampling")}
    assert len(set(s.values())) == len(s)  # no two (seed, algo, stream) share a seed
    assert train.stream_seed(1, "ippo", "init") == train.stream_seed(1, "ippo", "init")


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    d = tmp_path / "runs" / "9"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke",
                                                   backend="smax", demo="", tag="", hp={})))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train.run(dict(resume=str(d)), results_dir=str(tmp_path / "other"))


def test_unknown_hp_key_lists_valid_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown hp key.*valid keys"):
        train.run(dict(algo="ippo", map=TEST_MAP, scale="smoke", hp={"learning_rate": 1.0}), results_dir=str(tmp_path))


def test_tensorboard_and_mongo_records_read_back(tmp_path):
    mongomock = pytest.importorskip("mongomock")
    pytest.importorskip("tensorboard")
    import gridfs
    from mongomock.gridfs import enable_gridfs_integration
    from sacred.observers import MongoObserver
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    enable_gridfs_integration()
    db = mongomock.MongoClient().db
    train.add_observers(str(tmp_path))
    train.ex.observers.append(MongoObserver.create_from(db.runs, gridfs.GridFS(db), metrics_collection=db.metrics))
    r = train.ex.run(config_updates=dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke", tensorboard=True,
                                         hp={"t_max": 300}, results=str(tmp_path)))
    run_dir = tmp_path / "runs" / str(r._id)
    acc = EventAccumulator(str(run_dir / "tb" / "ippo" / TEST_MAP / "seed1"))   # tracking.run_label
    acc.Reload()
    file_curve = _metrics(run_dir)["train_return_mean"]["values"]
    assert [e.value for e in acc.Scalars("train_return_mean")] == pytest.approx(file_curve)
    entry = db.runs.find_one()
    assert entry["status"] == "COMPLETED" and entry["config"]["algo"] == "ippo"
    metric = db.metrics.find_one({"name": "train_return_mean"})
    assert metric["values"] == pytest.approx(file_curve)


FAULTS = int(os.environ.get("DM2_FAULT_INJECTION", "0") or 0)


@pytest.mark.skipif(not FAULTS, reason="slow (a smoke run per kill): set DM2_FAULT_INJECTION=<number of kills>")
def test_kill_9_at_random_moments_then_resume_gives_the_same_curve(smoke_ippo_run, tmp_path):
    """Fault injection: the CLI run is killed with SIGKILL at random moments (some while a checkpoint
    or a policy snapshot is being written); each time `resume=` continues from the last checkpoint,
    and every run that completes has the curves of an uninterrupted run."""
    rng = random.Random(FAULTS)
    results = tmp_path / "results"
    base = [sys.executable, "-m", "dm2_repro.train", "with", f"results_dir={results}"]
    fresh = base + ["algo=ippo", f"map={TEST_MAP}", "seed=1", "scale=smoke", "hp.checkpoint_every=1"]
    resume_from, moments, completed = None, [], 0

    def runs():
        return set((results / "runs").glob("[0-9]*"))

    for _ in range(6 * FAULTS + 6):   # each start either is killed or completes; kills come by chance
        known = runs()
        p = subprocess.Popen(fresh if resume_from is None else base + [f"resume={resume_from}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill during the n-th checkpoint / snapshot write after the run's first checkpoint, or at a
        # random time after it (a kill before it only restarts the run: nothing to resume)
        mode = rng.choice(["checkpoint", "snapshot", "anytime"]) if len(moments) < FAULTS else "never"
        nth, delay, first_seen, writes, moment = rng.randint(1, 3), rng.uniform(0, 4), None, set(), ""
        prefix = ".last.pt" if mode == "checkpoint" else ".policy_"
        while mode != "never" and p.poll() is None:
            new = runs() - known
            ckpts = next(iter(new)) / "checkpoints" if new else None
            names = os.listdir(ckpts) if ckpts and ckpts.exists() else []
            if first_seen is None and "last.pt" in names:
                first_seen = time.monotonic()
            if first_seen is not None:
                writes |= {n for n in names if mode != "anytime" and n.startswith(prefix) and n.endswith(".tmp")}
                if len(writes) >= nth or (mode == "anytime" and time.monotonic() - first_seen > delay):
                    p.kill()
                    moment = f"{mode} write {nth}" if mode != "anytime" else f"{delay:.1f} s after a checkpoint"
                    break
            time.sleep(0.001)
        code = p.wait(timeout=600)
        if code == -9:
            moments.append(moment)
        (made,) = runs() - known
        if code == 0:   # completed (not killed, or it ended just before the kill)
            assert _curves(made) == _curves(smoke_ippo_run), moments
            completed += 1
            resume_from = None   # the next kills start a new run
            if len(moments) >= FAULTS:
                break
            continue
        assert code == -9, f"exit code {code}"
        if (made / "checkpoints" / "last.pt").exists():   # else: killed before its first checkpoint
            resume_from = made
    else:
        pytest.fail(f"{len(moments)} of {FAULTS} kills happened: {moments}")
    assert len(moments) == FAULTS and completed >= 1
