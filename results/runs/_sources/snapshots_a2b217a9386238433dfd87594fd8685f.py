"""Where a run keeps its policy snapshots: `checkpoints/policy_<env step>.pt` (train.py writes them;
demos.py samples them; the runner picks the step a demonstration job needs). One home for the name."""
from __future__ import annotations

from pathlib import Path

PREFIX, SUFFIX = "policy_", ".pt"


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{int(step)}{SUFFIX}"


def snapshot_steps(run_dir: str | Path) -> list[int]:
    """Env steps of the run's policy snapshots, ascending (other files in checkpoints/ ignored)."""
    steps = []
    for path in (Path(run_dir) / "checkpoints").glob(f"{PREFIX}*{SUFFIX}"):
        suffix = path.name[len(PREFIX):-len(SUFFIX)]
        if suffix.isdigit():
            steps.append(int(suffix))
    return sorted(steps)
