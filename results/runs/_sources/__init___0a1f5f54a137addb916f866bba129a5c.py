"""Demonstrations: sample expert policy snapshots into per-agent episode files, and load them.

    styles.py    Figure 3's demonstration styles: which (team, joint episode) each agent's episodes come from
    files.py     the file format: NAME.npz + NAME.json; writing, verifying and loading it (Demo, load_demo)
    collect.py   sampling expert run snapshots into a demonstration file; a file's sampled-episode summary
    cli.py       python -m dm2_repro.demos collect | show | summarise (run by __main__.py)

Reference: docs/dm2.md.
"""

# what the rest of the package, the tests and the docs import as `from dm2_repro.demos import load_demo`
from dm2_repro.demos.styles import (STYLES, StylePlan, empty_demo_arrays, finalize_demo_arrays, n_sources,
                                    scatter_team_episodes, style_plan)
from dm2_repro.demos.files import ARRAYS, Demo, DemoError, gather_per_agent, load_demo, verify_demo_metadata, write_demo
from dm2_repro.demos.collect import collect_demo, sampled_summary, summarise, team_policy
from dm2_repro.demos.cli import main, parse_args

__all__ = ["STYLES", "StylePlan", "empty_demo_arrays", "finalize_demo_arrays", "n_sources", "scatter_team_episodes",
           "style_plan", "ARRAYS", "Demo", "DemoError", "gather_per_agent", "load_demo", "verify_demo_metadata",
           "write_demo", "collect_demo", "sampled_summary", "summarise", "team_policy", "main", "parse_args"]
