"""What every training run records, read back with the real libraries: cout.txt, the sources and git
state, the resolved hyperparameters in config.json, TensorBoard scalars + hparams, MongoDB (mongomock)
in the URL's database without the password, Weights & Biases offline files; and train's --help."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dm2_repro import validate

from dm2_repro.training import tracking
from dm2_repro.sweeps.plan import TrainJob

from .conftest import TEST_MAP

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
# tiny: one evaluation before and one after ~200 env steps (the env shape is the suite's shared one)
TINY_HP = {"t_max": 200, "eval_every": 200, "test_episodes": 4}
SECRET = "s3cret-pw"


def _head() -> str | None:
    p = subprocess.run(["git", "--no-optional-locks", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One real `python -m dm2_repro.train` run (old key results_dir=, tensorboard on)."""
    results = tmp_path_factory.mktemp("results")
    head_before = _head()
    argv = [PY, "-m", "dm2_repro.train", "with", "algo=ippo", f"map={TEST_MAP}", "seed=3", "scale=smoke",
            f"results_dir={results}", "tensorboard=True", *(f"hp.{k}={v}" for k, v in TINY_HP.items())]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900,
                       env={**os.environ, "DM2_MONGO_URL": ""})
    assert p.returncode == 0, p.stderr[-3000:]
    (run_dir,) = (results / "runs").glob("[0-9]*")
    return dict(dir=run_dir, results=results, stdout=p.stdout, stderr=p.stderr, heads={head_before, _head()})


def _json(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text())


# ------------------------------------------------------------------------------------------------
# cout.txt, sources, git, config
# ------------------------------------------------------------------------------------------------

def test_cout_holds_the_runs_output(cli_run):
    cout = (cli_run["dir"] / "cout.txt").read_text()
    first = cout.splitlines()[0]
    assert first == f"dm2_repro.train run {cli_run['dir'].name}: ippo/{TEST_MAP}/seed3 scale=smoke backend=smax " \
                    f"-> {cli_run['dir']}"
    assert first in cli_run["stdout"]          # the same line the terminal got
    bar = [line for line in cout.splitlines() if line.startswith(f"ippo {TEST_MAP} s3:")]
    assert bar and "test_win=" in bar[-1]      # the progress bar's final state
    assert "\r" not in cout                    # redraws collapsed, not spliced


def test_sources_of_every_module_the_run_loads_and_git_state(cli_run):
    run = _json(cli_run["dir"], "run.json")
    sources = dict(run["experiment"]["sources"])
    for name in ("train.py", "training/tracking.py", "algos/ippo.py", "algos/__init__.py", "envs/smax.py",
                 "networks.py", "training/rollout.py", "config.py"):
        assert name in sources, name
        assert (cli_run["results"] / "runs" / sources[name]).is_file()
    info = _json(cli_run["dir"], "info.json")
    assert "unrecorded_sources" not in info    # nothing imported during the run is missing
    (repo,) = run["experiment"]["repositories"]
    assert repo["commit"] in cli_run["heads"] and Path(repo["url"]) == ROOT and isinstance(repo["dirty"], bool)
    assert info["git"]["commit"] == repo["commit"] and info["git"]["dirty"] == repo["dirty"]
    assert info["git"]["dirty"] == bool(info["git"]["changed"])


def test_config_records_overrides_and_resolved_hp_and_the_job_still_matches(cli_run):
    cfg = _json(cli_run["dir"], "config.json")
    assert cfg["hp"] == TINY_HP                                  # the overrides, as job matching reads them
    assert cfg["hp_resolved"] == _json(cli_run["dir"], "info.json")["hp"]
    assert cfg["hp_resolved"]["t_max"] == 200 and cfg["hp_resolved"]["n_envs"] == 4   # override + preset
    assert cfg["results"] == str(cli_run["results"]) and "results_dir" not in cfg      # the alias mapped
    job = TrainJob("ippo", TEST_MAP, 3, "smoke", hp=tuple(sorted(TINY_HP.items())))
    assert job.matches(cfg) and not TrainJob("ippo", TEST_MAP, 3, "smoke").matches(cfg)


def test_committed_runs_without_hp_resolved_still_match_and_rerun():
    committed = sorted((ROOT / "results" / "runs").glob("[0-9]*/config.json"))
    if not committed:
        pytest.skip("no committed runs")
    cfg = json.loads(committed[0].read_text())
    assert "hp_resolved" not in cfg or isinstance(cfg["hp_resolved"], dict)
    job = TrainJob(cfg["algo"], cfg["map"], cfg["seed"], cfg["scale"], cfg["backend"], tag=cfg.get("tag", ""),
                   hp=tuple(sorted((cfg.get("hp") or {}).items())))
    if cfg.get("demo"):
        pytest.skip("first committed run has a demo")
    assert job.matches(cfg) and job.matches({**cfg, "hp_resolved": {"lr": 1.0}})
    # its config.json given back to train (`with config.json`): old names and recorded keys are fine
    words = validate.train_words(["train", "with", str(committed[0])])
    assert "results_dir" not in words and "hp_resolved" not in words
    validate.check_train_keys(words)


def test_results_is_the_name_and_results_dir_its_alias(tmp_path):
    assert validate.train_words(["t", "with", f"results_dir={tmp_path}"]) == {"results": str(tmp_path)}
    assert validate.train_words(["t", "with", f"results={tmp_path}"]) == {"results": str(tmp_path)}
    with pytest.raises(validate.InputError, match="results_dir is the old name of results"):
        validate.train_words(["t", "with", "results=a", "results_dir=b"])
    with pytest.raises(validate.InputError, match="recorded by the run"):
        validate.train_words(["t", "with", "hp_resolved.lr=1"])
    # a run's config.json given back as a dict (train.run): its recorded keys are made anew
    assert validate.normalise_train_keys({"hp_resolved": {"lr": 1.0}, "results_dir": "x"}) == {"results": "x"}
    from dm2_repro import train

    assert train.sacred_argv(["train.py", "-l", "INFO", "with", "results_dir=x"], {"results": "x"}) == [
        "train.py", "-l", "INFO", "with", "results='x'"]


# ------------------------------------------------------------------------------------------------
# TensorBoard
# ------------------------------------------------------------------------------------------------

def test_tensorboard_run_name_scalars_and_hparams(cli_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(cli_run["results"] / "runs"))   # as `tensorboard --logdir RESULTS/runs`
    (name,) = mux.Runs()
    assert all(part in name.split("/") for part in ("ippo", TEST_MAP, "seed3")), name
    acc = EventAccumulator(str(cli_run["results"] / "runs" / name))
    acc.Reload()
    metrics = _json(cli_run["dir"], "metrics.json")
    for tag in ("train_return_mean", "test_battle_won_mean"):
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx(metrics[tag]["values"])
        assert [e.step for e in acc.Scalars(tag)] == metrics[tag]["steps"]
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
              for k, v in start.session_start_info.hparams.items()}
    resolved = _json(cli_run["dir"], "config.json")["hp_resolved"]
    assert values["algo"] == "ippo" and values["map"] == TEST_MAP and values["seed"] == 3
    assert values["hp.t_max"] == 200 and values["hp.lr"] == pytest.approx(resolved["lr"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == set(tracking.TB_METRICS)


# ------------------------------------------------------------------------------------------------
# MongoDB, W&B (in-process, with mongomock and wandb offline)
# ------------------------------------------------------------------------------------------------

def _wandb_records(path: Path):
    """The records of a .wandb file, parsed with wandb's own protobuf schema (wandb >= 0.19 has no
    Python reader: its format is LevelDB's log, 32 KiB blocks of chunks with a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:          # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):                   # FULL or LAST: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def test_mongo_in_the_urls_database_without_the_password_and_wandb_offline(tmp_path, monkeypatch):
    mongomock = pytest.importorskip("mongomock")
    pytest.importorskip("pymongo")
    wandb = pytest.importorskip("wandb")
    import pymongo
    from mongomock.gridfs import enable_gridfs_integration

    from dm2_repro import train

    enable_gridfs_integration()
    client, urls = mongomock.MongoClient(), []

    def connect(url, **kwargs):   # what Sacred's MongoObserver calls: one in-memory server, the URL kept
        urls.append(url)
        return client

    monkeypatch.setattr(pymongo, "MongoClient", connect)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    (tmp_path / "wandb_dir").mkdir()
    # as if outside a git checkout (or without git): the run still works and records no repository
    monkeypatch.setattr(tracking, "_git", lambda args, cwd: None)
    url = f"mongodb://dm2user:{SECRET}@mongo.example:27017/dm2test?authSource=admin"
    r = train.run(dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke", hp=TINY_HP, mongo_url=url,
                       wandb_project="dm2-tests"), results_dir=str(tmp_path))
    assert r.status == "COMPLETED" and urls == [url]
    run_dir = tmp_path / "runs" / str(r._id)
    # Mongo: the URL's database, not Sacred's default
    assert "sacred" not in client.list_database_names()
    entry = client["dm2test"].runs.find_one()
    assert entry["status"] == "COMPLETED" and entry["config"]["hp_resolved"]["t_max"] == 200
    metrics = _json(run_dir, "metrics.json")
    mongo_curve = client["dm2test"].metrics.find_one({"name": "train_return_mean"})["values"]
    assert mongo_curve == pytest.approx(metrics["train_return_mean"]["values"])
    # no password anywhere in the record
    for text in [(run_dir / n).read_text() for n in ("config.json", "run.json", "info.json", "cout.txt")] + [
            json.dumps(entry, default=str)]:
        assert SECRET not in text
    assert _json(run_dir, "config.json")["mongo_url"] == \
        "mongodb://dm2user:***@mongo.example:27017/dm2test?authSource=admin"
    assert _json(run_dir, "run.json")["experiment"]["repositories"] == [] and _json(run_dir, "info.json")["git"] is None
    # W&B: the offline run's own file holds the name, the config and the scalars
    (wandb_file,) = (tmp_path / "wandb_dir").glob("wandb/offline-run-*/run-*.wandb")
    records = list(_wandb_records(wandb_file))
    (run_record,) = [rec.run for rec in records if rec.WhichOneof("record_type") == "run"]
    assert run_record.display_name == f"ippo/{TEST_MAP}/seed1" and run_record.project == "dm2-tests"
    config = {item.key: json.loads(item.value_json) for item in run_record.config.update}
    assert config["hp_resolved"] == _json(run_dir, "config.json")["hp_resolved"] and SECRET not in json.dumps(config)
    history = [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
               for rec in records if rec.WhichOneof("record_type") == "history"]
    curve = [(h["env_step"], h["train_return_mean"]) for h in history if "train_return_mean" in h]
    assert curve == [(s, pytest.approx(v)) for s, v in zip(metrics["train_return_mean"]["steps"],
                                                            metrics["train_return_mean"]["values"])]
    wandb.teardown()


def test_mongo_url_database_redaction_and_env_var(monkeypatch):
    assert tracking.mongo_database("mongodb://localhost:27017/dm2") == "dm2"
    assert tracking.mongo_database("mongodb://localhost:27017") == "sacred"
    assert tracking.mongo_database("mongodb://localhost:27017/?authSource=admin") == "sacred"
    assert tracking.redact_url("mongodb://u:pw@h1:1,h2:2/db?tlsCertificateKeyFilePassword=x&w=1") == \
        "mongodb://u:***@h1:1,h2:2/db?tlsCertificateKeyFilePassword=***&w=1"
    assert tracking.redact_url("mongodb://h/db") == "mongodb://h/db"
    from dm2_repro import train

    monkeypatch.setenv(tracking.MONGO_ENV, f"mongodb://u:{SECRET}@h/dm2")
    recorded, real = train.tracked_updates({"algo": "ippo"})
    assert real == f"mongodb://u:{SECRET}@h/dm2" and recorded == {"algo": "ippo", "mongo_url": "mongodb://u:***@h/dm2"}
    monkeypatch.setenv(tracking.MONGO_ENV, f"http://u:{SECRET}@h/dm2")
    with pytest.raises(validate.InputError, match=r"\$DM2_MONGO_URL") as info:
        validate.check_tracking({})
    assert SECRET not in str(info.value)


def test_git_info_of_a_checkout_and_outside_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))   # no checkout above tmp_path
    assert tracking.git_info(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    (tmp_path / "dm2_repro").mkdir()
    (tmp_path / "dm2_repro" / "m.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}")
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run(git + args, cwd=tmp_path, check=True, capture_output=True)
    clean = tracking.git_info(tmp_path / "dm2_repro")
    assert clean["dirty"] is False and len(clean["commit"]) == 40 and Path(clean["url"]) == tmp_path
    (tmp_path / "results" / "r.json").write_text('{"more": 1}')   # results change with every run: not code
    assert tracking.git_info(tmp_path)["dirty"] is False
    (tmp_path / "dm2_repro" / "m.py").write_text("x = 2\n")
    dirty = tracking.git_info(tmp_path)
    assert dirty["dirty"] is True and dirty["changed"] == ["dm2_repro/m.py"] and dirty["commit"] == clean["commit"]


# ------------------------------------------------------------------------------------------------
# --help
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["--help", "help", "-h"])
def test_help_lists_every_key_with_its_default_before_heavy_imports(word):
    code = ("import runpy, sys\nsys.argv = ['dm2_repro.train', %r]\n"
            "try:\n    runpy.run_module('dm2_repro.train', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('heavy', sorted(m for m in ('torch', 'jax', 'sacred') if m in sys.modules))") % word
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "exit 0" in p.stdout and "heavy []" in p.stdout, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    for key, default in validate.TRAIN_DEFAULTS.items():
        (line,) = [ln for ln in lines if ln.split()[:1] == [key]]
        assert line.rstrip().endswith(f"(default: {default!r})") and validate.TRAIN_HELP[key] in line
    assert set(validate.TRAIN_HELP) == set(validate.TRAIN_DEFAULTS)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM: Linux's own count of the peak")
def test_peak_rss_is_the_kernels_high_water_mark():
    """peak_rss_mb agrees with /proc's VmHWM (both the peak resident set, KiB): a unit slip (bytes, MB) fails."""
    from dm2_repro.training.tracking import peak_rss_mb

    hwm_kib = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
    assert abs(peak_rss_mb() - hwm_kib / 1024) < 16


def test_training_run_records_its_peak_memory(smoke_ippo_run):
    """info.json keeps the training process's peak RSS (the paper_hp preset's two-runs-per-machine check)."""
    from dm2_repro.training.tracking import peak_rss_mb

    info = json.loads((smoke_ippo_run / "info.json").read_text())
    assert 10 < info["peak_rss_mb"] <= peak_rss_mb() + 1   # the run ran in this process: its peak so far bounds it
