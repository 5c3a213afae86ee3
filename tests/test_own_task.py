"""DM² on your own task, through the real CLIs (docs/own_task.md): a PettingZoo env registered by
a user module (MPE's simple_spread from mpe2, named in DM2_TASKS) and the built-in toy game; IPPO
experts -> demonstrations -> DM², then the task figure of both."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = """
from mpe2 import simple_spread_v3

from dm2_repro.envs import register_pettingzoo


def make():
    return simple_spread_v3.parallel_env(N=2, max_cycles=10, continuous_actions=False)


register_pettingzoo("my_spread", make, dict(metric="return", episode_limit=10, t_max={"smoke": 400}, test_episodes=8))
"""


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _final(run_dir: Path, metric: str) -> float:
    return json.loads((run_dir / "metrics.json").read_text())[metric]["values"][-1]


def test_ippo_and_dm2_on_a_registered_pettingzoo_env_and_the_toy_game(tmp_path):
    pytest.importorskip("mpe2")
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent(PLUGIN))
    env = dict(os.environ, DM2_TASKS="my_tasks",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    results, out = tmp_path / "results", tmp_path / "figures"
    maps = ["--maps", "my_spread", "climbing4", "--scale", "smoke", "--seeds", "1"]
    _cli(["dm2_repro.run", "task", *maps, "--results", str(results), "--hp", "n_envs=2"], env, tmp_path)

    configs = {p.parent: json.loads(p.read_text()) for p in (results / "runs").glob("*/config.json")}
    by_job = {(c["map"], c["algo"]): run for run, c in configs.items()}
    assert set(by_job) == {(m, a) for m in ("my_spread", "climbing4") for a in ("ippo", "dm2")}
    assert {c["backend"] for c in configs.values() if c["map"] == "my_spread"} == {"pettingzoo"}
    for m in ("my_spread", "climbing4"):   # DM² learned from demonstrations of that map's IPPO expert
        demo = results / configs[by_job[(m, "dm2")]]["demo"]   # recorded relative to the results dir
        meta = json.loads(demo.with_suffix(".json").read_text())
        assert meta["map"] == m and meta["source_runs"] == [f"runs/{by_job[(m, 'ippo')].name}"]
    spread_info = json.loads((by_job[("my_spread", "ippo")] / "info.json").read_text())
    assert (spread_info["hp"]["t_max"], spread_info["hp"]["test_episodes"]) == (400, 8)   # the task's own

    _cli(["dm2_repro.figure", "task", *maps, "--results", str(results), "--out", str(out), "--hp", "n_envs=2"],
         env, tmp_path)   # the runs' hp overrides name their jobs
    assert (out / "task.png").stat().st_size > 0
    table = pd.read_csv(out / "task.csv")
    curves = table[table["kind"] == "curve"]
    assert {(p, c.split(" ")[0]) for p, c in zip(curves["panel"], curves["curve"])} == {
        (m, a) for m in ("my_spread", "climbing4") for a in ("IPPO", "DM²")}
    # each panel plots its task's metric: the test return on my_spread, the win rate on the toy game
    for m, metric in (("my_spread", "test_return_mean"), ("climbing4", "test_battle_won_mean")):
        for algo, label in (("ippo", "IPPO"), ("dm2", "DM²")):
            rows = curves[(curves["panel"] == m) & curves["curve"].str.startswith(label)]
            assert rows.sort_values("step")["mean"].iloc[-1] == pytest.approx(_final(by_job[(m, algo)], metric))
    assert (curves[curves["panel"] == "my_spread"]["mean"] < 0).all()   # MPE returns: negative distances
    # the demonstration line of a return panel is the sampled demonstrations' return, the greedy one in the CSV
    spread_demo = json.loads((results / configs[by_job[("my_spread", "dm2")]]["demo"]).with_suffix(".json").read_text())
    for kind, key in (("demo_sampled", "demo_return_mean"), ("demo_greedy", "quality_return")):
        demo_rows = table[(table["panel"] == "my_spread") & (table["kind"] == kind)]
        assert demo_rows["mean"].tolist() == pytest.approx([spread_demo[key]])


def test_a_task_runs_only_on_its_own_backend():
    from dm2_repro.validate import InputError, check_train_config

    with pytest.raises(InputError, match="task of backend 'pettingzoo', not 'smax': pass backend=pettingzoo"):
        check_train_config({"algo": "ippo", "map": "simple_spread", "scale": "smoke"})
    check_train_config({"algo": "ippo", "map": "climbing4", "backend": "toy", "scale": "smoke"})


def test_the_task_figure_needs_maps(capsys, tmp_path):
    from dm2_repro import figure

    with pytest.raises(SystemExit) as stop:
        figure.main(["task", "--results", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "pass --maps" in err and len(err.splitlines()) == 1


def test_the_task_figure_uses_each_tasks_backend():
    from dm2_repro.sweeps.plan import expand

    plan = expand("task", "smoke", maps=["climbing4", "2s3z"])
    backends = {(job.map, job.backend) for job in plan.jobs if hasattr(job, "algo")}
    assert backends == {("climbing4", "toy"), ("2s3z", "smax")}
    assert {c.key for c in plan.curves} == {"ippo", "dm2"}
    dm2 = [j for c in plan.curves if c.key == "dm2" for j in c.jobs]
    assert all(j.demo.sources[0].algo == "ippo" and j.demo.sources[0].seed == j.seed for j in dm2)
    assert expand("task", "smoke").curves == []   # no --maps, no curves (so `all` is unchanged)


def test_a_broken_task_module_is_one_line(monkeypatch):
    from dm2_repro.envs import registry

    monkeypatch.setenv(registry.TASKS_ENV_VAR, "no_such_module_xyz")
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    with pytest.raises(ValueError, match="DM2_TASKS: cannot import 'no_such_module_xyz'") as error:
        registry.tasks()
    assert "\n" not in str(error.value)
    monkeypatch.delenv(registry.TASKS_ENV_VAR)
    assert "climbing4" in registry.tasks()
