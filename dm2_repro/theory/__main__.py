"""Theory check on exact tabular Markov games (issue 7): writes results/theory/*.csv.

    python -m dm2_repro.theory              # ~1 minute on one core
    python -m dm2_repro.figure theory       # then draws figures/theory.{png,pdf,csv}
"""
from __future__ import annotations

import argparse

from dm2_repro.theory.experiments import run_all


def run(out_dir: str = "results/theory", seed: int = 0) -> dict[str, str]:
    """Run all theory panels; returns {panel: csv path} (plus "summary")."""
    return run_all(out_dir=out_dir, seed=seed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="results/theory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, path in run(args.out_dir, args.seed).items():
        print(f"{name:>12}: {path}")
