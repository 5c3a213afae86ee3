"""The figures' CSV format: per-seed rows (FIGURE_seeds.csv), the plotted rows (FIGURE.csv: mean, band and
n_seeds per KEY_COLUMNS), and the comparison of a regenerated table with the committed CSV (`figure --check`,
`--allow-fewer`).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd

from dm2_repro.results.runs import seed_table, summarise_seeds

KEY_COLUMNS = ["figure", "panel", "curve", "kind", "step"]
SEED_COLUMNS = [*KEY_COLUMNS, "seed", "value"]   # FIGURE_seeds.csv: what each mean is taken over


def seed_rows(head: dict, aligned: pd.DataFrame) -> pd.DataFrame:
    """An aligned step x seed frame as rows of SEED_COLUMNS; `head`: figure, panel, curve, kind."""
    return pd.DataFrame({**head, **seed_table(aligned)})[SEED_COLUMNS]



def seeds_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The per-seed table of a figure (integer steps; empty on demonstration rows)."""
    seeds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SEED_COLUMNS)
    return seeds.astype({"step": "Int64"})


def summary(seeds: pd.DataFrame, band: str) -> pd.DataFrame:
    """The plotted rows: per KEY_COLUMNS the mean over seeds, the band and n_seeds."""
    columns = [*KEY_COLUMNS, "mean", band, "n_seeds"]
    if seeds.empty:
        table = pd.DataFrame(columns=columns)
    else:
        table = summarise_seeds(seeds.astype({"step": "float64"}), KEY_COLUMNS, band)[columns]
    table["step"] = table["step"].astype("Int64")   # integer steps; empty on demonstration rows
    return table



def seeds_csv(out_dir: Path, name: str) -> Path:
    """Where a figure's per-seed table goes, beside its CSV of plotted numbers."""
    return out_dir / f"{name}_seeds.csv"



CSV_RTOL, CSV_ATOL = 1e-9, 1e-12   # a regenerated CSV "holds the same numbers" within these


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in (*KEY_COLUMNS, "seed") if c in table.columns]
    return table.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


def _frame_difference(old: pd.DataFrame, new: pd.DataFrame) -> str | None:
    """assert_frame_equal's verdict on two tables of the same shape, as one line naming the first
    differing row and column (None if equal within CSV_RTOL / CSV_ATOL; NaN equals NaN)."""
    try:
        pd.testing.assert_frame_equal(old, new, check_dtype=False, check_exact=False,
                                      rtol=CSV_RTOL, atol=CSV_ATOL)
    except AssertionError as error:
        text = str(error)
        column = re.search(r'column name="([^"]*)"', text)
        row = re.search(r"At positional index (\d+)", text)
        if column and row:
            i = int(row.group(1))
            return (f"row {i} column {column.group(1)}: committed {old.iloc[i].to_dict()}, "
                    f"now {new.iloc[i].to_dict()}")
        return " ".join(text.split())
    return None


def first_mismatch(old: pd.DataFrame, new: pd.DataFrame) -> str | None:
    """None if the tables hold the same numbers (to 1e-9 relative), else the first difference."""
    if list(old.columns) != list(new.columns):
        return f"columns differ: committed {list(old.columns)}, now {list(new.columns)}"
    old, new = _sorted(old), _sorted(new)
    n = min(len(old), len(new))
    problem = _frame_difference(old.iloc[:n], new.iloc[:n])
    if problem or len(old) == len(new):
        return problem
    extra, where = (new.iloc[n], "only now") if len(new) > n else (old.iloc[n], "only in the committed CSV")
    return f"row {n} {where}: {extra.to_dict()}"


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


def seed_counts(table: pd.DataFrame) -> dict[tuple, int]:
    """(panel, curve, kind) -> the most seeds any of its rows has, leaving out the demonstration rows (kinds
    "demo_*": they follow their curve's seeds, and older CSVs named them differently) and the rows without a seed
    count (the vertical marks of FigureDef.marks)."""
    if table.empty or not {"panel", "curve", "kind", "n_seeds"} <= set(table.columns):
        return {}
    curves = table[~table["kind"].astype(str).str.startswith("demo_") & table["n_seeds"].notna()]
    return {key: int(n) for key, n in curves.groupby(["panel", "curve", "kind"])["n_seeds"].max().items()}


def fewer_runs(old: pd.DataFrame, new: pd.DataFrame) -> str | None:
    """None unless the new table has fewer seeds than the old for some curve: then which."""
    before, now = seed_counts(old), seed_counts(new)
    lost = [(key, n, now.get(key, 0)) for key, n in before.items() if now.get(key, 0) < n]
    if not lost:
        return None
    (panel, curve, kind), n, m = lost[0]
    return (f"{len(lost)} of its {len(before)} curves would have fewer runs, e.g. {panel} / {curve} ({kind}): "
            f"{n} seeds in the existing CSV, {m} now ({sum(before.values())} -> {sum(now.values())} runs in all)")



def stale_csv(table: pd.DataFrame, csv: Path) -> str | None:
    """How `table` differs from the committed `csv` (None if the same numbers), compared after a
    round trip through CSV so both sides are read exactly as stored."""
    with tempfile.TemporaryDirectory() as tmp:
        table.to_csv(Path(tmp) / "new.csv", index=False)
        return first_mismatch(read_csv(csv), read_csv(Path(tmp) / "new.csv"))
