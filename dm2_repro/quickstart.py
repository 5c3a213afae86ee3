"""The quick start: regenerate the committed figures, then train IPPO and DM² for a few minutes and
draw their learning curves beside the committed 5-seed curves.

    python -m dm2_repro.quickstart                  # ~5 min on 2 cores after the install
    python -m dm2_repro.quickstart --steps 50000 --seed 2

Two runs at once, one thread each (the `cpu` preset on 3s_vs_3z with a shorter t_max; nothing else
differs, so each run is the first --steps env steps of the full-budget run of that seed): IPPO, and
DM² imitating the committed late (25k-step) IPPO demonstrations of the same seed's expert. Their
Sacred runs go to --results (default results/quickstart, outside the committed results), the
regenerated figures to <results>/figures, and the quick start's figure to <out>.png/.pdf/.csv.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dm2_repro.validate import InputError, Parser, at_least, fail, not_a_file

MAP, SCALE, LEVEL = "3s_vs_3z", "cpu", "late"


def parse_args(argv=None):
    parser = Parser(prog="python -m dm2_repro.quickstart", description=__doc__)
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of both runs, 1-5 (default: %(default)s)")
    parser.add_argument("--results", default="results/quickstart",
                        help="where the two runs go (default: %(default)s)")
    parser.add_argument("--committed", default="results",
                        help="the committed results: demonstrations and reference curves (default: %(default)s)")
    parser.add_argument("--out", default="figures/quickstart",
                        help="the figure, without extension (default: %(default)s)")
    parser.add_argument("--skip-figures", action="store_true",
                        help="do not regenerate the committed figures first")
    args = parser.parse_args(argv)
    try:
        at_least("--steps", args.steps, 1_000)
        at_least("--seed", args.seed, 1)
        not_a_file("--results", args.results)
    except InputError as e:
        fail(e)
    return args


def demo_file(committed: Path, seed: int) -> Path:
    """The committed demonstration of fig2's DM² (IPPO demo, late) curve for `seed`."""
    from dm2_repro.sweeps.plan import expand

    plan = expand("fig2", SCALE, maps=[MAP], curves=[f"dm2_ippo_{LEVEL}"])
    jobs = [job for job in plan.curves[0].jobs if job.seed == seed]
    if not jobs:
        fail(f"--seed {seed}: fig2 has seeds {', '.join(str(j.seed) for j in plan.curves[0].jobs)}")
    path = jobs[0].demo.path(committed)
    if not path.exists():
        fail(f"{path} not found: the quick start needs the committed demonstrations (run it from a clone)")
    return path


def reference_job():
    """fig2's committed DM² job of this map and level (its GAIL reward form, sweeps.plan.PAPER_FIGURES_GAIL_REWARD,
    and its hp overrides, e.g. the paper's discriminator rate): the quick start's DM² learns as it does, so it is
    the committed run of its seed, cut short."""
    from dm2_repro.sweeps.plan import expand

    return expand("fig2", SCALE, maps=[MAP], curves=[f"dm2_ippo_{LEVEL}"]).curves[0].jobs[0]


def train_argv(algo: str, seed: int, steps: int, results: Path, demo: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "dm2_repro.train", "with", f"algo={algo}", f"map={MAP}", f"seed={seed}",
            f"scale={SCALE}", f"hp.t_max={steps}", "threads=1", f"results={results}"]
    if not demo:
        return argv
    job = reference_job()
    return argv + [f"demo={demo}", f"gail_reward={job.gail_reward}",
                   *(f"hp.{key}={value}" for key, value in job.hp if key != "t_max")]


def train_both(args, demo: Path) -> None:
    """IPPO and DM² side by side; a bar per run follows its logged env steps."""
    from tqdm import tqdm

    results = Path(args.results)
    (results / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = {}
    for algo, d in (("ippo", None), ("dm2", demo)):
        log = open(results / "logs" / f"{algo}_seed{args.seed}.log", "w")
        procs[algo] = (subprocess.Popen(train_argv(algo, args.seed, args.steps, results, d), stdout=log,
                                        stderr=subprocess.STDOUT, env=env), log)
    bars = {algo: tqdm(total=args.steps, desc=f"{algo:>4} seed {args.seed}", unit="step", position=i,
                       dynamic_ncols=True) for i, algo in enumerate(procs)}
    try:
        while any(p.poll() is None for p, _ in procs.values()):
            time.sleep(3)
            for algo, step in latest_steps(results, args.seed).items():
                if algo in bars:
                    bars[algo].update(max(step - bars[algo].n, 0))
    except KeyboardInterrupt:
        for p, _ in procs.values():
            p.terminate()
        raise
    finally:
        for bar in bars.values():
            bar.close()
        for _, log in procs.values():
            log.close()
    failed = [algo for algo, (p, _) in procs.items() if p.returncode != 0]
    if failed:
        fail(f"training failed: {', '.join(failed)}; see {results / 'logs'}", code=1)


def latest_steps(results: Path, seed: int) -> dict[str, int]:
    """The last env step each algo's newest run of `seed` has logged (0 before its first log)."""
    from dm2_repro.results.runs import load_runs

    out = {}
    for run in sorted(load_runs(results, strict=False), key=lambda r: r.sort_key):
        if run.config.get("seed") == seed:
            steps = [s for entry in run.metrics.values() for s in entry.get("steps", [])[-1:]]
            out[run.config.get("algo")] = max(steps, default=0)
    return out


def curves(args, demo: Path):
    """(this run's curve per algo, the committed mean over seeds per algo, the demo's json: its sampled episodes'
    win rate `demo_win_rate`, what DM² imitates and the figure draws, and the greedy team's `quality`)."""
    import json

    import pandas as pd

    from dm2_repro.sweeps.plan import expand
    from dm2_repro.results.runs import completed_run, load_runs

    mine = {}
    for run in sorted(load_runs(args.results, strict=False), key=lambda r: r.sort_key):
        if run.config.get("seed") == args.seed and run.status == "COMPLETED":
            mine[run.config["algo"]] = run.metric()
    committed = load_runs(args.committed, strict=False)
    plan = expand("fig2", SCALE, maps=[MAP], curves=["ippo", f"dm2_ippo_{LEVEL}"])
    reference, same_seed = {}, {}
    for curve in plan.curves:
        runs = {job.seed: completed_run(job, committed) for job in curve.jobs}
        series = [r.metric() for r in runs.values() if r]
        if series:
            reference[curve.jobs[0].algo] = (pd.concat(series, axis=1).sort_index().interpolate("index"), len(series))
        if runs.get(args.seed):
            same_seed[curve.jobs[0].algo] = runs[args.seed].metric()
    return mine, reference, same_seed, json.loads(demo.with_suffix(".json").read_text())


def agreement(mine, same_seed) -> list[str]:
    """Each of your runs against the committed run of the same job: equal at every common eval step?
    (Seeds fix every stream, so on the same software they are the same run cut short.)"""
    lines = []
    for algo, series in mine.items():
        ref = same_seed.get(algo)
        if ref is None:
            continue
        common = series.index.intersection(ref.index)
        if len(common):
            diff = float((series[common] - ref[common]).abs().max())
            verdict = "identical" if diff == 0 else f"max |difference| {diff:.3f}"
            lines.append(f"{algo}: your run vs the committed run of the same seed at {len(common)} "
                         f"common eval steps: {verdict}")
    return lines


def draw(args, demo: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    mine, reference, same_seed, demo_meta = curves(args, demo)
    for line in agreement(mine, same_seed):
        print(line)
    colors = {"ippo": "#1f77b4", "dm2": "#d62728"}
    names = {"ippo": "IPPO", "dm2": f"DM² (IPPO demo, {LEVEL})"}
    plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42})
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    rows = []
    for algo, (table, n) in reference.items():
        table = table[table.index <= max(args.steps * 2, 50_000)]
        ax.plot(table.index, table.mean(axis=1), color=colors[algo], alpha=0.35, lw=1.5,
                label=f"{names[algo]}: committed, mean of {n} seed{'s' if n != 1 else ''}")
    for algo, series in mine.items():
        ax.plot(series.index, series.values, color=colors[algo], lw=2.2, marker="o", ms=3,
                label=f"{names[algo]}: your run, seed {args.seed}")
        rows += [dict(algo=algo, seed=args.seed, step=int(s), test_win_rate=float(v)) for s, v in series.items()]
    sampled, greedy = demo_meta.get("demo_win_rate"), demo_meta.get("quality")
    if sampled is not None:   # the team DM² imitates, as the figures' dotted lines
        ax.axhline(sampled, color=colors["dm2"], ls="--", lw=1,
                   label=f"demonstrations' win rate ({sampled:.2f}; greedy team {greedy:.2f})" if greedy is not None
                   else f"demonstrations' win rate ({sampled:.2f})")
    ax.set(xlabel="env steps", ylabel="test win rate", ylim=(-0.02, 1.02), title=f"Quick start: {MAP}, cpu preset")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(out.with_suffix(f".{ext}"), dpi=150)
    pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)
    return out.with_suffix(".png")


def main(argv=None) -> int:
    args = parse_args(argv)
    demo = demo_file(Path(args.committed), args.seed)
    if not args.skip_figures:
        t0 = time.time()
        out = Path(args.results) / "figures"
        code = subprocess.call([sys.executable, "-m", "dm2_repro.figure", "all", "--results", args.committed,
                                "--out", str(out)])
        if code != 0:
            fail(f"regenerating the committed figures failed (exit {code})", code=1)
        print(f"regenerated the committed figures into {out} in {time.time() - t0:.0f} s")
    t0 = time.time()
    train_both(args, demo)
    print(f"trained IPPO and DM² for {args.steps} env steps each in {time.time() - t0:.0f} s")
    png = draw(args, demo)
    print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
