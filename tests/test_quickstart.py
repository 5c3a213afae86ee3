"""The quick start's own logic (the full command trains for minutes; README measures it)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dm2_repro import quickstart


def series(values, steps, name="1"):
    s = pd.Series(values, index=steps, dtype=float, name=name)
    s.index.name = "step"
    return s


def test_agreement_reports_identical_and_different_runs():
    ref = series([0.0, 0.125, 0.5], [0, 5473, 10818])
    lines = quickstart.agreement({"ippo": series([0.0, 0.125], [0, 5473])}, {"ippo": ref})
    assert lines == ["ippo: your run vs the committed run of the same seed at 2 common eval steps: identical"]
    lines = quickstart.agreement({"ippo": series([0.0, 0.25], [0, 5473])}, {"ippo": ref})
    assert "max |difference| 0.125" in lines[0]
    assert quickstart.agreement({"dm2": series([0.0], [0])}, {"ippo": ref}) == []  # no committed run: no line


def test_train_command_is_the_cpu_preset_cut_short():
    argv = quickstart.train_argv("dm2", 3, 30_000, "out", "d.npz")
    assert {"algo=dm2", "map=3s_vs_3z", "seed=3", "scale=cpu", "hp.t_max=30000", "threads=1", "results=out",
            "demo=d.npz"} <= set(argv)
    assert not any(w.startswith("demo=") for w in quickstart.train_argv("ippo", 3, 30_000, "out", None))
    # DM² learns from the GAIL reward form of the committed fig2 runs it is compared with
    from dm2_repro.sweeps.plan import expand
    job = expand("fig2", "cpu", maps=["3s_vs_3z"], curves=["dm2_ippo_late"]).curves[0].jobs[0]
    assert f"gail_reward={job.gail_reward}" in argv and job.gail_reward
    assert job.hp and all(f"hp.{key}={value}" in argv for key, value in job.hp)   # the paper's discriminator rate


@pytest.mark.parametrize("args, message", [(["--steps", "10"], "--steps"), (["--seed", "0"], "--seed")])
def test_bad_input_is_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        quickstart.parse_args(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_committed_demo_of_each_seed(tmp_path):
    path = quickstart.demo_file(Path(__file__).parents[1] / "results", 1)
    assert path.name == "3s_vs_3z_cpu_smax_ippo_s1_25k_co_concurrent.npz" and path.exists()
    with pytest.raises(SystemExit):
        quickstart.demo_file(tmp_path, 1)   # a results dir without the demos: one line, not a traceback


def test_the_figure_draws_the_sampled_demonstrations_win_rate(tmp_path):
    """Like the figures' dotted lines: the win rate of the sampled episodes DM² imitates, the greedy team's beside."""
    import json
    from types import SimpleNamespace

    from tests.fixtures_runs import win_curve, write_run

    results = tmp_path / "quickstart"
    for run_id, algo in enumerate(("ippo", "dm2"), 1):
        write_run(results, run_id, algo=algo, map_name="3s_vs_3z", seed=1,
                  metrics={"test_battle_won_mean": win_curve(0.6, (0, 5000, 10000))})
    demo = tmp_path / "demo.npz"
    demo.with_suffix(".json").write_text(json.dumps({"quality": 0.74, "demo_win_rate": 0.095}))
    args = SimpleNamespace(results=results, committed=tmp_path / "none", seed=1, steps=10000, out=tmp_path / "qs")
    (tmp_path / "none").mkdir()
    quickstart.draw(args, demo)
    rows = pd.read_csv(tmp_path / "qs.csv")
    assert set(rows["algo"]) == {"ippo", "dm2"}
    import matplotlib.pyplot as plt
    labels = [t.get_text() for t in plt.figure(plt.get_fignums()[-1]).axes[0].get_legend().get_texts()]
    assert "demonstrations' win rate (0.10; greedy team 0.74)" in labels
    plt.close("all")
