"""Results: what the runs in RESULTS/runs measured, read back.

    runs.py     Sacred runs and demonstration files on disk: loading, matching runs to jobs, a curve's seeds
    curves.py   a curve's values: common step range, AUC, final values, per-seed tables
    stats.py    small pure statistics over (runs x tasks) arrays: Welch t and BCa intervals, Holm, IQM
"""

# the reading API of docs/results_api.md, importable as `from dm2_repro.results import to_dataframe`
from dm2_repro.results.runs import (CurveRuns, DamagedRun, SacredRun, align_seeds, curve_runs, load_runs,  # noqa: F401
                                    seed_table, summarise, to_dataframe)
