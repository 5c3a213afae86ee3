"""Theory check on exact tabular Markov games (issue 7): writes results/theory/*.csv.

    python experiments/theory.py            # ~1 minute on one core
    python -m dm2_repro.figure theory       # then draws figures/theory.{png,pdf,csv}
"""
from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dm2_repro.theory.experiments import run_all  # noqa: E402


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
