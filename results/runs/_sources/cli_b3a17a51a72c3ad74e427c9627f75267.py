"""Demonstrations: sample expert policy snapshots into per-agent episode files, and load them.

    python -m dm2_repro.demos collect --runs RUN_DIR [RUN_DIR ...] --step ENVSTEP --style STYLE \
        --episodes E [--epsilon EPS] [--quality-episodes 128] [--seed 0] --out results/demos/NAME.npz
    python -m dm2_repro.demos show results/demos/NAME.npz      # verify and print the metadata
    python -m dm2_repro.demos summarise results/demos/*.npz    # (re)write the sampled team's summary into NAME.json

The command line of dm2_repro.demos (run by its __main__.py). The first paragraph above is its --help
description; the styles are in dm2_repro/demos/styles.py, the file format in dm2_repro/demos/files.py.
Reference: docs/dm2.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dm2_repro.cli_io import InputError, Parser, at_least
from dm2_repro.demos.collect import EPSILON_GREEDY_ALGOS, check_source, collect_demo, summarise
from dm2_repro.demos.files import load_demo
from dm2_repro.demos.styles import STYLES, n_sources


def check_collect_args(args) -> None:
    """Every `collect` argument, before torch or JAX load: counts, ranges, the output name, the
    source runs (config and an intact snapshot of --step of the run's algo and map), that they
    agree, and that their number fits the style. Raises InputError (a ValueError)."""
    from dm2_repro.envs.maps import MAPS
    from dm2_repro.cli_io import DEVICE_RE

    for name, value, low in (("--episodes", args.episodes, 1), ("--quality-episodes", args.quality_episodes, 1),
                             ("--seed", args.seed, 0), ("--n-envs", args.n_envs, 1), ("--step", args.step, 0)):
        at_least(name, value, low)
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise InputError(f"--epsilon {args.epsilon}: must be a probability in [0, 1]")
    if not DEVICE_RE.match(args.device):
        raise InputError(f"--device {args.device!r}: valid devices: cpu, cuda, cuda:<index>")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise InputError(f"--out {out}: a demonstration file must end in .npz (NAME.json is written next to it)")
    if out.exists() and out.is_dir() or any(p.exists() and not p.is_dir() for p in out.parents):
        raise InputError(f"--out {out}: cannot be written there (a directory has that name, or a parent is a file)")
    configs = [check_source(Path(r), args.step) for r in args.runs]
    for key in ("map", "backend", "algo"):
        values = sorted({str(c[key]) for c in configs})
        if len(values) > 1:
            raise InputError(f"--runs: the source runs differ in {key}: {values}")
    map_name, algo = configs[0]["map"], configs[0]["algo"]
    if map_name not in MAPS:
        raise InputError(f"--runs: unknown map {map_name!r} in {Path(args.runs[0]) / 'config.json'}")
    need = n_sources(args.style, len(MAPS[map_name].allies))
    if len(args.runs) != need:
        raise InputError(f"--runs: style {args.style} on {map_name} needs {need} source run(s) (agent k's policy "
                         f"from run k for the independent styles), got {len(args.runs)}")
    if args.epsilon and algo not in EPSILON_GREEDY_ALGOS:
        raise InputError(f"--epsilon {args.epsilon} given, but {algo} sources sample their stochastic policy; "
                         "epsilon-greedy sampling applies to value-based (QMIX) sources only")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # the module doc's usage lines name the defaults; each command's --help lists every option with its default
    parser = Parser(prog="python -m dm2_repro.demos", description="\n\n".join(__doc__.split("\n\n")[:1]),
                    epilog="every option of a command, with its default: python -m dm2_repro.demos COMMAND --help "
                           "(collect: --style co_concurrent, --quality-episodes 128, --seed 0, --device cpu, "
                           "--n-envs the source run's, --epsilon the map's from paper_tables.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = sub.add_parser("collect", help="sample a demonstration file from expert run snapshots")
    c.add_argument("--runs", nargs="+", required=True, help="source run dirs (one per agent for indep_* styles)")
    c.add_argument("--step", type=int, required=True, help="snapshot env step: RUN/checkpoints/policy_<STEP>.pt")
    c.add_argument("--style", choices=STYLES, default="co_concurrent",
                   help="how agents' episodes are sampled (Figure 3's styles: co_* one source team, indep_* one "
                        "source run per agent; see the doc of dm2_repro/demos/styles.py)")
    c.add_argument("--episodes", type=int, required=True, help="episodes per agent (E)")
    c.add_argument("--epsilon", type=float, default=None,
                   help="epsilon-greedy sampling of QMIX sources "
                        "(default: paper_tables.yaml maps.<map>.qmix_demo_epsilon)")
    c.add_argument("--quality-episodes", type=int, default=128, help="greedy episodes measuring the quality")
    c.add_argument("--seed", type=int, default=0, help="seed of the sampled episodes")
    c.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: the source run's n_envs)")
    c.add_argument("--device", default="cpu", help="torch device of the policies: cpu, cuda, cuda:<index>")
    c.add_argument("--out", required=True, help="output .npz (the .json is written next to it)")
    s = sub.add_parser("show", help="verify a demonstration file and print its metadata")
    s.add_argument("path", help="a demonstration .npz (its .json next to it)")
    m = sub.add_parser("summarise", help="write the sampled episodes' win rate, return and episode length "
                                         "into each file's json")
    m.add_argument("paths", nargs="+", help="demonstration .npz files (each verified first)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """The CLI. A bad argument raises InputError (or DemoError) before anything heavy runs; run as
    a program, that is one line and exit code 2."""
    args = parse_args(argv)
    if args.command == "collect":
        check_collect_args(args)
        path = collect_demo(args.runs, args.step, args.style, args.episodes, args.out, epsilon=args.epsilon,
                            quality_episodes=args.quality_episodes, seed=args.seed, n_envs=args.n_envs,
                            device=args.device)
        meta = json.loads(path.with_suffix(".json").read_text())
        print(f"wrote {path}: {meta['n_episodes']} episodes per agent, quality {meta['quality']:.3f}, "
              f"sampled win rate {meta['demo_win_rate']:.3f}")
    elif args.command == "summarise":
        for path in args.paths:
            summary = summarise(path)
            print(f"{path}: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    else:
        demo = load_demo(args.path)
        print(json.dumps(demo.provenance(), indent=2, sort_keys=True))
