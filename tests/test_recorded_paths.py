"""Paths recorded in the results directory are relative to it, so a clone means what the machine that wrote
them meant (the layout issue, item 4)."""
from __future__ import annotations

import json
from pathlib import Path

from dm2_repro.cli_io import relative_to_results, resolve_in_results
from dm2_repro.results.runs import relative_recorded_paths

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_every_committed_json_records_paths_relative_to_the_results_dir():
    demos = sorted((RESULTS / "demos").glob("*.json"))
    configs = [p for p in sorted((RESULTS / "runs").glob("*/config.json"))   # a RUNNING run keeps its own
               if json.loads((p.parent / "run.json").read_text()).get("status") != "RUNNING"]
    assert len(demos) > 100 and len(configs) > 300
    absolute = [f"{p.name}: {r}" for p in demos for r in json.loads(p.read_text()).get("source_runs") or []
                if Path(r).is_absolute()]
    absolute += [f"{p.parent.name}/config.json: {c['demo']}" for p in configs
                 if Path((c := json.loads(p.read_text())).get("demo") or "").is_absolute()]
    assert absolute == [], absolute[:5]


def test_relative_paths_round_trip(tmp_path, monkeypatch):
    results = tmp_path / "results"
    (results / "demos").mkdir(parents=True)
    (results / "demos" / "d.npz").touch()
    assert relative_to_results(results / "runs" / "7", results) == "runs/7"
    monkeypatch.chdir(tmp_path)
    assert resolve_in_results("demos/d.npz", "results") == Path("results/demos/d.npz")   # recorded: from results
    assert resolve_in_results("results/demos/d.npz", "elsewhere") == Path("results/demos/d.npz")   # typed: from cwd
    assert resolve_in_results(results / "demos" / "d.npz", "x") == results / "demos" / "d.npz"


def test_older_records_are_rewritten_relative(tmp_path):
    (tmp_path / "runs" / "3").mkdir(parents=True)
    (tmp_path / "demos").mkdir()
    config = {"algo": "dm2", "demo": "/somewhere/results/demos/x.npz", "hp": {}}
    (tmp_path / "runs" / "3" / "config.json").write_text(json.dumps(config))
    (tmp_path / "runs" / "3" / "other.json").write_text(json.dumps({"demo": "/abs/demos/x.npz"}))
    (tmp_path / "runs" / "4").mkdir()   # a live (or killed, resumable) run keeps what its code compares on resume
    (tmp_path / "runs" / "4" / "config.json").write_text(json.dumps(config))
    (tmp_path / "runs" / "4" / "run.json").write_text(json.dumps({"status": "RUNNING"}))
    meta = {"source_runs": ["/m/results/runs/2", "elsewhere/run"], "quality": 0.5}
    (tmp_path / "demos" / "x.json").write_text(json.dumps(meta))
    changed = relative_recorded_paths(tmp_path)
    assert sorted(p.name for p in changed) == ["config.json", "x.json"]
    assert json.loads((tmp_path / "runs" / "3" / "config.json").read_text()) == {**config, "demo": "demos/x.npz"}
    assert json.loads((tmp_path / "demos" / "x.json").read_text())["source_runs"] == ["runs/2", "elsewhere/run"]
    assert json.loads((tmp_path / "runs" / "4" / "config.json").read_text()) == config
    assert relative_recorded_paths(tmp_path) == []   # idempotent
