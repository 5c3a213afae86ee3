"""The figure definitions live in the repository's top-level experiments/ folder (the layout issue, item 1):
one file per figure, not an importable package, each also a Sacred command line of its own; docs/figures.md's
"Adding a figure" example is a working figure (run here at the smoke scale through its own command line)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dm2_repro.cli_io import InputError
from dm2_repro.sweeps import plan
from dm2_repro.sweeps.command_line import runner_argv

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"


def test_every_file_of_the_experiments_folder_is_a_figure_and_the_folder_is_no_package():
    assert not (EXPERIMENTS / "__init__.py").exists()   # `import experiments` finds a user's own, never ours
    names = sorted(p.stem for p in EXPERIMENTS.glob("*.py"))
    assert sorted(plan.FIGURES) == names and plan.FIGURES[:7] == ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7",
                                                                   "fig8")
    for name in names:
        assert plan.figure_def(name).name == name
        assert f'main("{name}")' in (EXPERIMENTS / f"{name}.py").read_text()   # its own command line
    with pytest.raises(ValueError, match="unknown figure 'fig99'; valid figures: fig2, fig3"):
        plan.figure_def("fig99")


def test_a_definition_names_its_own_figure(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("from dm2_repro.sweeps.plan import FigureDef\n"
                                      "FIGURE = FigureDef(name='other', title='t', build=lambda c: [])\n")
    monkeypatch.setenv("DM2_REPRO_EXPERIMENTS", str(tmp_path))
    monkeypatch.setattr(plan, "FIGURES", plan.figure_names())
    assert "mine" in plan.FIGURES and plan.FIGURES[-1] != "fig2"
    with pytest.raises(ValueError, match=r"experiments/mine.py must define FIGURE = FigureDef\(name='mine'"):
        plan.definition("mine")
    assert "dm2_repro_experiments.mine" not in sys.modules   # a broken file is not cached


def test_sacred_words_are_the_runners_options():
    argv = runner_argv("fig2", ["with", "scale=cpu", "maps=[3s_vs_3z,5m_vs_6m]", "seeds=2", "hp.n_envs=8",
                                "curves=dm2_*", "jobs=2", "progress=False", "dry_run=True"])
    assert argv == ["fig2", "--scale", "cpu", "--maps", "3s_vs_3z", "5m_vs_6m", "--seeds", "2", "--hp", "n_envs=8",
                    "--curves", "dm2_*", "--jobs", "2", "--no-progress", "--dry-run"]
    assert runner_argv("fig3", ["print_config", "with", "maps=['5m_vs_6m']"]) == ["fig3", "--dry-run", "--maps",
                                                                                   "5m_vs_6m"]
    for words, message in ((["with", "bogus=1"], "bogus=1: unknown key; valid keys: address, backend"),
                           (["run"], "'run': expected `with KEY=VALUE ...` or one of print_config"),
                           (["with", "dry_run=3"], "dry_run=3: True or False")):
        with pytest.raises(InputError, match=re.escape(message)):
            runner_argv("fig2", words)


def _example() -> str:
    text = (ROOT / "docs" / "figures.md").read_text()
    section = text[text.index("## Adding a figure"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _cli(argv: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_documented_example_figure_runs_through_its_own_sacred_command_line(tmp_path):
    folder = tmp_path / "my_experiments"
    folder.mkdir()
    (folder / "my_figure.py").write_text(_example())
    env = dict(os.environ, DM2_REPRO_EXPERIMENTS=str(folder), OMP_NUM_THREADS="1")
    results, out = tmp_path / "results", tmp_path / "figures"
    _cli([str(folder / "my_figure.py"), "with", "scale=smoke", "seeds=1", f"results={results}", "hp.n_envs=2",
          "progress=False"], env, tmp_path)

    sweep = results / "sweeps" / "1"   # the sweep: a Sacred run of its own, apart from the training runs
    config = json.loads((sweep / "config.json").read_text())
    assert config["figures"] == ["my_figure"] and config["scale"] == "smoke" and config["hp"] == {"n_envs": 2}
    assert json.loads((sweep / "run.json").read_text())["status"] == "COMPLETED"
    jobs = json.loads((sweep / "info.json").read_text())["jobs"]
    trained = {j["key"]: j["run"] for j in jobs if j["kind"] == "train"}
    assert len(trained) == 3 and all(j["state"] == "done" for j in jobs)
    for key, run in trained.items():
        run_config = json.loads((results / run / "config.json").read_text())
        assert run_config["algo"] == key.split("/")[4] and run_config["map"] == "3s_vs_3z"
        if run_config["algo"] == "dm2":
            assert run_config["hp"]["gail_coef"] in (0.1, 1.0)

    _cli(["-m", "dm2_repro.figure", "my_figure", "--scale", "smoke", "--seeds", "1", "--results", str(results),
          "--out", str(out), "--hp", "n_envs=2"], env, tmp_path)
    assert (out / "my_figure.png").stat().st_size > 10_000
    curves = pd.read_csv(out / "my_figure.csv")
    assert set(curves["curve"]) == {"IPPO", "DM² (c = 0.1)", "DM² (c = 1)"}
