"""Training-speed benchmark: end-to-end env steps/s of the training loop, raw SMAX throughput,
two runs sharing the machine, and peak memory; optionally side by side with another commit.

    python -m dm2_repro.bench                          # every case, 1 and 2 torch threads
    python -m dm2_repro.bench --compare d13363a        # the same cases on that commit too (git worktree)
    python -m dm2_repro.bench --cases ippo_3s_vs_3z --threads 1 --iterations 2
    python -m dm2_repro.bench --compare d13363a --cases ippo_5m_vs_6m --repeat 5   # medians of 5, trees alternating
    python -m dm2_repro.bench --cases ippo_5m_vs_6m_n128 --rollout jax   # this tree's cases with rollout=jax
    python -m dm2_repro.bench --compare d13363a --cases --no-raw --no-concurrent --unroll   # BC's unroll only
    python -m dm2_repro.bench --cases ippo_5m_vs_6m --threads 1 --no-raw --no-concurrent --profile  # where it goes

Every measurement runs in its own process (dm2_repro/bench_worker.py) so thread settings, JAX
compilation and memory are those of a fresh `train` run. End to end = rollout + update, timed over
`--iterations` iterations after a warm-up rollout, from a fixed seed (so both trees of a
comparison start from the same networks and episodes). Speed is checked here, never in tests.

Reference: docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dm2_repro.config import ROLLOUTS
from dm2_repro.validate import InputError, Parser, atomic_write_text, check_maps, fail

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "bench_worker.py"
_BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"

# the cases of the speed issue: the cpu preset on two maps, the large-batch 5m_vs_6m setting, and DM²
# with the paper's discriminator settings (120 steps of 64 expert + 64 agent episodes per update)
PAPER_DISC = dict(gail_epochs=120, gail_batch_episodes=64, gail_buffer_episodes=1024)
# cases marked compare=False run on this tree only (they measure DM² against IPPO, not old against new)
CASES: dict[str, dict] = {
    "ippo_3s_vs_3z": dict(algo="ippo", map="3s_vs_3z"),
    "ippo_5m_vs_6m": dict(algo="ippo", map="5m_vs_6m"),
    "ippo_5m_vs_6m_n128": dict(algo="ippo", map="5m_vs_6m",
                               hp=dict(n_envs=128, buffer_episodes=128, ppo_epochs=4, hidden=128)),
    "dm2_3s_vs_3z": dict(algo="dm2", map="3s_vs_3z", demo="synthetic"),
    "dm2_3s_vs_3z_paper_disc": dict(algo="dm2", map="3s_vs_3z", hp=PAPER_DISC, demo="synthetic"),
    "dm2_5m_vs_6m": dict(algo="dm2", map="5m_vs_6m", demo="synthetic"),
    # the GAIL reward's forms on this tree (the cases above take train's default, absorbing): the absorbing
    # state's cost against the form without it (the GAIL-reward issue: <= 1.1x per env step)
    "dm2_5m_vs_6m_logit": dict(algo="dm2", map="5m_vs_6m", demo="synthetic", gail_reward="logit", compare=False),
    "dm2_3s_vs_3z_logit": dict(algo="dm2", map="3s_vs_3z", demo="synthetic", gail_reward="logit", compare=False),
    # the paper preset itself (1024-episode PPO batches, the paper's discriminator settings), 1 iteration
    "ippo_3s_vs_3z_paper": dict(algo="ippo", map="3s_vs_3z", scale="paper", iterations=1, compare=False),
    "dm2_3s_vs_3z_paper": dict(algo="dm2", map="3s_vs_3z", scale="paper", iterations=1, compare=False,
                               demo="synthetic"),
    "rmappo_3s_vs_3z": dict(algo="rmappo", map="3s_vs_3z"),
    "qmix_3s_vs_3z": dict(algo="qmix", map="3s_vs_3z"),
}
RAW_CASES = [("3s_vs_3z", 16), ("5m_vs_6m", 128)]
# --unroll: BC's whole-grid unroll of a 5m_vs_6m actor (K agents, obs + last action + id inputs)
UNROLL = dict(K=5, d_in=156, n_actions=11, T=70, batches=(16, 64, 200))


def run_worker(tree: Path, cfg: dict, timeout: float = 1800) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, "-c", _BOOT, str(WORKER), json.dumps(cfg)], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"bench worker failed on {tree} for {cfg}: {' | '.join(tail)}")


def run_concurrent(tree: Path, cfg: dict, n: int = 2) -> list[dict]:
    """n copies of one case at once (different seeds), each with cfg's thread count."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    procs = [subprocess.Popen([sys.executable, "-c", _BOOT, str(WORKER), json.dumps({**cfg, "seed": i})],
                              cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for i in range(n)]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=3600)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("BENCH ")]
        if not lines:
            raise RuntimeError(f"concurrent bench worker failed for {cfg}")
        out.append(json.loads(lines[0][6:]))
    return out


def median_run(runs: list[dict]) -> dict:
    """The measurement with the median env steps/s of repeated runs of one case on one tree (the lower
    middle one of an even count), so every figure of a row comes from one real run."""
    return sorted(runs, key=lambda r: r["env_steps_per_s"])[(len(runs) - 1) // 2]


def spread(runs: list[dict]) -> str:
    """'min-max' env steps/s of repeated runs."""
    xs = [r["env_steps_per_s"] for r in runs]
    return f"{min(xs):,.0f}-{max(xs):,.0f}"


def checkout(rev: str) -> Path:
    """A worktree of `rev` (or `rev` itself if it is a directory holding the package)."""
    if (Path(rev) / "dm2_repro").is_dir():
        return Path(rev).resolve()
    path = Path(tempfile.gettempdir()) / f"dm2_bench_{rev.replace('/', '_')}"
    if not (path / "dm2_repro").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), rev], check=True,
                       capture_output=True)
    return path


def selected_cases(cases: list[str], maps: list[str] | None) -> list[str]:
    """The cases on `maps` (all of them without a --maps filter)."""
    return [c for c in cases if not maps or CASES[c]["map"] in maps]


def check_args(a: argparse.Namespace) -> None:
    """Counts positive, the --compare revision resolvable, the --json file writable; before any
    worker starts."""
    if a.iterations < 1:
        raise InputError(f"--iterations {a.iterations}: must be an integer >= 1")
    if a.repeat < 1:
        raise InputError(f"--repeat {a.repeat}: must be an integer >= 1")
    check_maps(a.maps)
    if a.maps and not selected_cases(a.cases, a.maps):
        raise InputError(f"--maps {' '.join(a.maps)}: none of the cases runs there (their maps: "
                         f"{', '.join(sorted({CASES[c]['map'] for c in a.cases}))})")
    bad = [t for t in a.threads if t < 1]
    if bad:
        raise InputError(f"--threads {bad[0]}: must be an integer >= 1")
    if a.compare and not (Path(a.compare) / "dm2_repro").is_dir():
        found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{a.compare}^{{commit}}"],
                               capture_output=True, text=True)
        if found.returncode != 0:
            raise InputError(f"--compare {a.compare}: neither a git revision of {ROOT} nor a directory holding "
                             "dm2_repro")
    if a.json:
        out = Path(a.json)
        if out.is_dir() or not out.parent.is_dir():
            raise InputError(f"--json {a.json}: cannot write a file there (a directory, or its folder does not exist)")


def main(argv=None):
    p = Parser(prog="python -m dm2_repro.bench", description=__doc__)
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES), metavar="CASE",
                   help=f"cases to time (default: all; none after a bare --cases, e.g. with --unroll only): "
                        f"{', '.join(CASES)}")
    p.add_argument("--maps", nargs="+", default=None, metavar="MAP",
                   help="only the cases and raw measurements on these maps (default: every map of the cases)")
    p.add_argument("--map", nargs="+", dest="maps", help=argparse.SUPPRESS)   # the old spelling
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch/XLA threads")
    p.add_argument("--iterations", type=int, default=3, help="timed iterations per case")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each case this many times, the trees alternating (this, REV, this, REV, ...), and "
                        "show the median with the range: a busy or shared CPU moves single measurements by 20-30%%")
    p.add_argument("--compare", default="", metavar="REV", help="also time this git revision (or tree directory)")
    p.add_argument("--rollout", choices=ROLLOUTS, default="python",
                   help="train's rollout for this tree's cases (a --compare tree always uses the host loop)")
    p.add_argument("--no-raw", action="store_true", help="skip raw SMAX and rollout-ratio measurements")
    p.add_argument("--no-concurrent", action="store_true", help="skip the two-runs-at-once measurement")
    p.add_argument("--unroll", action="store_true",
                   help="also time the whole-grid unroll (BC's path, no lengths) forward + backward on every tree")
    p.add_argument("--profile", action="store_true",
                   help="also profile one update of each case (this tree, first --threads value): its matmul "
                        "FLOPs and rate, and where its time goes")
    p.add_argument("--json", default="", metavar="PATH", help="also write every measurement to this JSON file")
    a = p.parse_args(argv)
    try:
        check_args(a)
    except InputError as exc:
        fail(exc)
    trees = [("this", ROOT)] + ([(a.compare, checkout(a.compare))] if a.compare else [])
    records = []

    def show(row: str):
        print(row, flush=True)

    show(f"# dm2_repro.bench  iterations={a.iterations}  repeat={a.repeat}  rollout={a.rollout}  trees: " + ", ".join(f"{n}={t}" for n, t in trees))
    if a.cases:
        show(f"{'case':<26}{'thr':>4}" + "".join(f"{n[:10]:>12}" for n, _ in trees)
             + ("     speed-up" if a.compare else "") + "   update%  rollout sps  peak RSS MB")
    for case in selected_cases(a.cases, a.maps):
        for threads in a.threads:
            cfg = {**dict(kind="train", iterations=a.iterations, threads=threads), **CASES[case]}
            compare = cfg.pop("compare", True)
            measured = trees if compare else trees[:1]
            runs = [[] for _ in measured]  # runs[tree][repeat], the trees alternating
            for _ in range(a.repeat):
                for i, (_, tree) in enumerate(measured):
                    runs[i].append(run_worker(tree, {**cfg, "rollout": a.rollout} if i == 0 else cfg))
            res = [median_run(rs) for rs in runs]
            row = f"{case:<26}{threads:>4}" + "".join(f"{r['env_steps_per_s']:>12,.0f}" for r in res)
            if a.compare:
                row += (f"{res[0]['env_steps_per_s'] / res[1]['env_steps_per_s']:>12.2f}x" if compare
                        else f"{'':>12}{'(this tree only)':>13}")
            row += f"{res[0]['update_fraction']:>9.0%}{res[0]['collect_steps_per_s']:>13,.0f}{res[0]['peak_rss_mb']:>13,.0f}"
            if a.repeat > 1:
                row += "   range " + ", ".join(spread(rs) for rs in runs)
            show(row)
            records += [dict(case=case, threads=threads, tree=n, **r, repeats=[x["env_steps_per_s"] for x in rs])
                        for (n, _), r, rs in zip(measured, res, runs)]
    if not a.no_raw:
        show("\n# rollouts (collect, the IPPO actor acting, real steps only) vs raw SMAX (jitted scan, random valid "
             "actions, auto-reset: every step counts), 1 thread")
        for map_name, n_envs in [(m, n) for m, n in RAW_CASES if not a.maps or m in a.maps]:
            raw = run_worker(ROOT, dict(kind="raw", map=map_name, n_envs=n_envs, threads=1))
            hp = dict(n_envs=n_envs, buffer_episodes=n_envs, ppo_epochs=1)
            rolls = {r: run_worker(ROOT, dict(kind="train", algo="ippo", map=map_name, hp=hp, iterations=a.iterations,
                                              threads=1, rollout=r)) for r in ROLLOUTS}
            show(f"{map_name} N={n_envs}: raw {raw['env_steps_per_s']:,.0f} env steps/s; collect " + ", ".join(
                f"rollout={r} {x['collect_steps_per_s']:,.0f} ({x['collect_steps_per_s'] / raw['env_steps_per_s']:.0%} of raw; "
                f"with the lockstep steps of envs already ended {x['collect_lockstep_per_s']:,.0f}, "
                f"{x['collect_lockstep_per_s'] / raw['env_steps_per_s']:.0%})"
                for r, x in rolls.items()))
            records.append(dict(case=f"raw_{map_name}_{n_envs}", raw=raw, collect=rolls["python"], collect_jax=rolls["jax"]))
    if not a.no_concurrent and (not a.maps or CASES["ippo_3s_vs_3z"]["map"] in a.maps):
        show("\n# two runs at once (ippo_3s_vs_3z, seeds 0 and 1) vs one alone, threads as train's default (1)")
        cfg = dict(kind="train", iterations=a.iterations, threads=1, **CASES["ippo_3s_vs_3z"])
        solo = [run_worker(ROOT, {**cfg, "seed": i})["env_steps_per_s"] for i in range(2)]
        both = [r["env_steps_per_s"] for r in run_concurrent(ROOT, cfg)]
        for i in range(2):
            show(f"seed {i}: alone {solo[i]:,.0f}, sharing {both[i]:,.0f} env steps/s ({both[i] / solo[i]:.0%})")
        records.append(dict(case="concurrent", solo=solo, shared=both))
    if a.unroll:
        g = UNROLL
        show(f"\n# whole-grid unroll (BC's path): forward + backward of a {g['K']}-agent actor, T = {g['T']}, "
             f"d_in = {g['d_in']}, ms per call, 1 thread")
        for B in g["batches"]:
            cfg = dict(kind="unroll", threads=1, B=B, **{k: v for k, v in g.items() if k != "batches"})
            res = [run_worker(tree, cfg)["ms"] for _, tree in trees]
            show(f"B={B:<4}" + "".join(f"  {n[:10]} {ms:,.1f}" for (n, _), ms in zip(trees, res))
                 + (f"  ({res[1] / res[0]:.2f}x)" if len(res) > 1 else ""))
            records.append(dict(case=f"unroll_B{B}", ms=dict(zip((n for n, _ in trees), res))))
    if a.profile:
        for case in selected_cases(a.cases, a.maps):
            case_cfg = {k: v for k, v in CASES[case].items() if k not in ("compare", "iterations")}
            r = run_worker(ROOT, dict(kind="profile", threads=a.threads[0], **case_cfg))
            show(f"\n# profile of one update: {case}, {a.threads[0]} thread(s), one batch of {r['episodes']} "
                 f"episodes ({r['env_steps']} real env steps, T = {r['T']})")
            show(f"update {r['update_ms']:,.0f} ms without the profiler; its matmuls {r['matmul_gflop']:.2f} GFLOP "
                 f"= {r['matmul_gflop_per_s']:.1f} GFLOP/s over the whole update")
            show("self CPU time by kernel group (under the profiler, "
                 f"{r['profiled_ms']:,.0f} ms): " + ", ".join(f"{g} {x:.0%}" for g, x in r["groups"].items()))
            rates = [m["gflop_per_s"] for m in r["matmul_shapes"]]
            show(f"the matmuls alone, by input shape ({len(rates)} shapes with the most matmul time, "
                 f"{sum(m['share'] for m in r['matmul_shapes']):.0%} of the update's profiled time): "
                 f"{min(rates):.0f}-{max(rates):.0f} GFLOP/s")
            show(f"{'op':<40}{'share':>7}{'calls':>9}{'us/call':>10}")
            for t in r["top"]:
                show(f"{t['op'][:39]:<40}{t['share']:>7.1%}{t['calls']:>9,}{t['us_per_call']:>10.1f}")
            for m in r["matmul_shapes"]:
                show(f"  {m['op']:<14}{m['shapes'][:60]:<62}{m['share']:>7.1%}{m['calls']:>7,}{m['gflop_per_s']:>7.0f} GFLOP/s")
            records.append(dict(case=f"profile_{case}", threads=a.threads[0], **r))
    if a.json:
        atomic_write_text(a.json, json.dumps(dict(time=time.strftime("%Y-%m-%d %H:%M"), records=records), indent=1))


if __name__ == "__main__":
    main()
