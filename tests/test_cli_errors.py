"""Bad input to the real CLIs, as subprocesses: every one exits non-zero with one line naming the bad
value, no traceback, and nothing made under the results dir. The inputs are rejected before torch,
JAX or Sacred load, so the whole table takes seconds."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dm2_repro import validate
from dm2_repro.config import HP, SCALES, make_hp
from dm2_repro.envs.maps import MAPS

from tests.fixtures import fake_demo_file as fake_demo, fake_run_dir as fake_run

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    good = fake_demo(d / "demos" / "good.npz")
    edited = fake_demo(d / "demos" / "edited.npz", sha="0" * 64)
    other_map = fake_demo(d / "demos" / "other.npz", map_name="5m_vs_6m")
    no_json = fake_demo(d / "demos" / "nojson.npz", with_json=False)
    few = fake_demo(d / "demos" / "few.npz", episodes=2)
    real = fake_run(d, "ippo_with_ckpt", ckpt_algo="ippo").joinpath("checkpoints", "last.pt").read_bytes()
    runs = dict(
        no_ckpt=fake_run(d, "no_ckpt"),
        garbage=fake_run(d, "garbage", checkpoint=b"this is not a checkpoint"),
        truncated=fake_run(d, "truncated", checkpoint=real[: len(real) // 2]),
        other_algo=fake_run(d, "other_algo", ckpt_algo="qmix"),
        resumable=fake_run(d, "resumable", ckpt_algo="ippo"),
        snap=fake_run(d, "snap", snapshot_step=400),
    )
    broken_snap = fake_run(d, "broken_snap", snapshot_step=400)
    snap_file = broken_snap / "checkpoints" / "policy_400.pt"
    snap_file.write_bytes(snap_file.read_bytes()[:100])
    runs["broken_snap"] = broken_snap
    bad_config = d / "bad_config"
    bad_config.mkdir()
    (bad_config / "config.json").write_text('{"algo": "ippo", "ma')
    runs["bad_config"] = bad_config
    return dict(dir=d, good=good, edited=edited, other_map=other_map, no_json=no_json, few=few, **runs)


def cases(f, results):
    """(argv after python, text the one line must contain)."""
    train = [PY, "-m", "dm2_repro.train", "with", f"results_dir={results}"]
    collect = [PY, "-m", "dm2_repro.demos", "collect", "--step", "400", "--episodes", "2",
               "--out", str(results / "demos" / "x.npz")]
    return [
        (train + ["algo=nope"], "algo 'nope'"),
        (train + ["map=nomap"], "map 'nomap'"),
        (train + ["scale=huge"], "scale 'huge'"),
        (train + ["backend=nope"], "backend 'nope'"),
        (train + ["reward=nope"], "reward 'nope'"),
        (train + ["backend=sc2", "reward=smax"], "reward='smax'"),
        (train + ["device=tpu"], "device='tpu'"),
        (train + ["threads=0"], "threads=0"),
        (train + ["rollout=gpu"], "rollout 'gpu'"),
        (train + ["backend=sc2", "rollout=jax"], "rollout=jax needs a JAX env"),
        # no pysc2 / SMAC / SC2PATH here: named before any run dir exists, not a traceback inside the run
        (train + ["backend=sc2"], "backend=sc2: The StarCraft II backend is not available: pysc2 is not installed"),
        (train + ["gail_reward=softplus"], "gail_reward 'softplus'"),
        (train + ["tensorboard=maybe"], "tensorboard='maybe'"),
        (train + ["foo=1"], "foo"),
        (train + ["banana"], "banana"),
        (train + ["hp.learning_rate=1"], "learning_rate"),
        (train + ["hp.lr=abc"], "hp.lr='abc'"),
        (train + ["seed=abc"], "seed='abc'"),
        (train + ["hp.n_envs=0"], "hp.n_envs=0"),
        (train + ["hp.buffer_episodes=0"], "hp.buffer_episodes=0"),
        (train + ["hp.t_max=-5"], "hp.t_max=-5"),
        (train + ["hp.gamma=1.5"], "hp.gamma=1.5"),
        (train + ["hp.lr=nan"], "hp.lr='nan'"),
        (train + ["hp.n_envs=2.5"], "hp.n_envs=2.5"),
        (train + ["algo=dm2"], "demo="),
        (train + ["algo=dm2", f"demo={f['dir']}/missing.npz"], "missing.npz"),
        (train + ["algo=dm2", f"demo={f['edited']}"], "sha256"),
        (train + ["algo=dm2", f"demo={f['no_json']}"], "nojson.json"),
        (train + ["algo=dm2", f"demo={f['other_map']}"], "map '5m_vs_6m'"),
        (train + ["algo=dm2", "scale=smoke", f"demo={f['few']}"], "hp.demo_episodes=8"),
        (train + [f"resume={f['dir']}/nowhere"], "nowhere"),
        (train + [f"resume={f['bad_config']}"], "config.json"),
        (train + [f"resume={f['no_ckpt']}"], "no checkpoint"),
        (train + [f"resume={f['garbage']}"], "last.pt"),
        (train + [f"resume={f['truncated']}"], "last.pt"),
        (train + [f"resume={f['other_algo']}"], "algo 'qmix'"),
        (train + [f"resume={f['resumable']}", "algo=qmix"], "algo='qmix' differs"),
        (train + [f"resume={f['resumable']}", "hp.lr=0.1"], "hp {'lr': 0.1} differs"),
        ([PY, "-m", "dm2_repro.run", "fig9", "--results", str(results)], "fig9"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--jobs", "0", "--results", str(results)], "--jobs 0"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--hp", "lr=abc", "--results", str(results)], "lr='abc'"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--maps", "nomap", "--results", str(results)], "nomap"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--json", "--results", str(results)], "--json: only with --dry-run"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--device", "tpu", "--results", str(results)], "--device 'tpu'"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--threads", "0", "--results", str(results)], "--threads 0"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--mongo-url", "localhost", "--results", str(results)],
         "--mongo-url 'localhost'"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--partition", "gpu", "--results", str(results)],
         "--partition gpu: only with --launcher slurm"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--gpus-per-job", "1", "--results", str(results)],
         "--gpus-per-job 1: only with --launcher ray or slurm"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--launcher", "slurm", "--gpus-per-job", "0.5", "--results",
          str(results)], "--gpus-per-job 0.5: SLURM gives whole GPUs"),
        ([PY, "-m", "dm2_repro.run", "fig2", "--launcher", "slurm", "--slurm-extra", "account", "--results",
          str(results)], "--slurm-extra 'account'"),
        ([PY, "-m", "dm2_repro.figure", "fig2", "--results", str(f["dir"]), "--maps", "nomap",
          "--out", str(results / "figures")], "--maps nomap"),
        ([PY, "-m", "dm2_repro.claims", "--results", str(f["dir"]), "--hp", "lr=abc",
          "--out", str(results / "claims.md")], "lr='abc'"),
        ([PY, "-m", "dm2_repro.claims", "--results", str(f["dir"]), "--maps", "nomap",
          "--out", str(results / "claims.md")], "--maps nomap"),
        ([PY, "-m", "dm2_repro.figure", "fig2", "--results", str(f["dir"] / "nonexistent"),
          "--out", str(results / "figures")], "nonexistent"),
        ([PY, "-m", "dm2_repro.claims", "--results", str(f["dir"] / "nonexistent"),
          "--out", str(results / "claims.md")], "nonexistent"),
        (collect + ["--runs", str(f["dir"] / "nonexistent")], "nonexistent"),
        (collect + ["--runs", str(f["no_ckpt"])], "policy_400.pt"),
        (collect + ["--runs", str(f["broken_snap"])], "policy_400.pt"),
        (collect + ["--runs", str(f["snap"]), "--episodes", "0"], "--episodes 0"),
        (collect + ["--runs", str(f["snap"]), "--epsilon", "1.5"], "--epsilon 1.5"),
        (collect + ["--runs", str(f["snap"]), "--epsilon", "0.2"], "epsilon-greedy"),
        (collect + ["--runs", str(f["snap"]), "--style", "indep_concurrent"], "needs 3 source run"),
        ([PY, "-m", "dm2_repro.demos", "collect", "--runs", str(f["snap"]), "--step", "400", "--episodes", "2",
          "--out", str(results / "demos" / "x.txt")], "x.txt"),
        ([PY, "-m", "dm2_repro.demos", "show", str(f["edited"])], "sha256"),
        ([PY, "-m", "dm2_repro.bench", "--iterations", "0"], "--iterations 0"),
        ([PY, "-m", "dm2_repro.bench", "--repeat", "0"], "--repeat 0"),
        ([PY, "-m", "dm2_repro.bench", "--cases", "nope"], "nope"),
        ([PY, "-m", "dm2_repro.bench", "--maps", "nomap"], "--maps nomap"),
        ([PY, "-m", "dm2_repro.bench", "--map", "8m_vs_9m", "--cases", "ippo_3s_vs_3z"], "none of the cases runs there"),
    ]


def test_bad_inputs_fail_with_one_clear_line(files, tmp_path):
    results = tmp_path / "results"
    table = cases(files, results)
    assert len(table) >= 25
    problems = []
    for argv, expected in table:
        p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
        output = (p.stdout + p.stderr).strip()
        name = " ".join(argv[2:])
        if p.returncode == 0:
            problems.append(f"{name}: exit code 0")
        if "Traceback" in output or len(output.splitlines()) != 1:
            problems.append(f"{name}: not one line: {output[-600:]}")
        if expected not in output:
            problems.append(f"{name}: {expected!r} not in {output!r}")
        if results.exists():
            problems.append(f"{name}: made {sorted(str(p) for p in results.rglob('*'))}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module,argv", [
    ("dm2_repro.train", ["with", "hp.n_envs=0"]),
    ("dm2_repro.demos", ["collect", "--runs", "/nonexistent", "--step", "1", "--episodes", "1", "--out", "x.npz"]),
])
def test_rejected_before_the_heavy_imports(module, argv):
    code = (f"import runpy, sys\nsys.argv = [{module!r}] + {argv!r}\n"
            f"try:\n    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('heavy', sorted(m for m in ('torch', 'jax', 'sacred', 'matplotlib') if m in sys.modules))")
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "exit 2" in p.stdout and "heavy []" in p.stdout, p.stdout + p.stderr


def test_a_good_resume_and_demo_pass_the_checks(files):
    resolved = validate.check_train_config(dict(resume=str(files["resumable"])))
    assert resolved["algo"] == "ippo" and resolved["scale"] == "smoke"
    validate.check_train_config(dict(algo="dm2", scale="smoke", demo=str(files["good"])))
    # an int for a float field, and an integral float for an int field, are what Sacred gives
    validate.check_train_config(dict(scale="smoke", hp=dict(lr=1, n_envs=4.0)))


def test_every_hp_field_has_a_range_and_every_preset_is_in_it():
    from dataclasses import fields

    from dm2_repro.algos import ALGOS

    assert set(validate.HP_RULES) == {f.name for f in fields(HP)}
    for scale in SCALES:
        for map_name in MAPS:
            for algo in ALGOS:
                validate.check_merged_hp(algo, map_name, scale, {})
    make_hp("ippo", "3s_vs_3z", "smoke")


def test_train_defaults_are_the_experiments():
    from dm2_repro import train

    assert train.ex.configurations[0]() == validate.TRAIN_DEFAULTS


def test_peek_reads_a_checkpoint_without_torch_and_names_a_damaged_one(files, tmp_path):
    content = validate.peek_torch_file(files["resumable"] / "checkpoints" / "last.pt")
    assert content["meta"]["algo"] == "ippo" and set(content) >= {"learner", "generator", "counters"}
    for name in ("garbage", "truncated"):
        path = files[name] / "checkpoints" / "last.pt"
        with pytest.raises(validate.DamagedFile, match=str(path)) as info:
            validate.peek_torch_file(path)
        assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    # a zip whose data was altered fails its CRC check
    path = tmp_path / "flipped.pt"
    data = bytearray((files["resumable"] / "checkpoints" / "last.pt").read_bytes())
    with zipfile.ZipFile(files["resumable"] / "checkpoints" / "last.pt") as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data/0"))
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    offset = info.header_offset + 30 + name_len + extra_len   # the first byte of the tensor's data
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(validate.DamagedFile, match="CRC"):
        validate.peek_torch_file(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    validate.atomic_write_text(target, "old")

    def broken(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate.atomic_write(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
