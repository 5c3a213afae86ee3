"""Regenerate the paper's figures from the logged Sacred runs.

    python -m dm2_repro.figure fig2                 # figures/fig2.png, .pdf and .csv
    python -m dm2_repro.figure c_sensitivity        # beyond the paper: DM² over c
    python -m dm2_repro.figure gail_diagnostics     # discriminator accuracy, |c r_gail|/|r_env|
    python -m dm2_repro.figure all --check          # every figure above + theory; fail on stale CSVs

Only COMPLETED runs count. Each curve is the mean test win rate over its seeds with a band
(standard error by default, `--band sd` for the standard deviation), on the eval steps every seed
has (see dm2_repro.results.runs for the rule when steps differ). Dotted lines are the demonstrations'
qualities (greedy win rate of the source checkpoint), averaged over the curve's seeds that have a
run (a curve without runs draws no demonstration line).

figures/FIGURE.csv holds exactly the plotted numbers, one row per point: figure, panel, curve,
kind ("curve" or "demo_quality"; demo rows have no step), step, mean, se (or sd with --band sd),
n_seeds.

`gail_diagnostics` is not a figure definition: it reads the runs of every DM²-family curve
(algorithms in DM2_FAMILY) of every figure definition, each distinct curve once, and draws per map
(a) the discriminators' accuracy on expert and on agent steps and (b) |c r_gail| / |r_env|, both as
logged once per update (mean over agents; the per-agent `NAME/k` metrics where a run has them,
else the agent-averaged `NAME`), averaged per seed within bins of the preset's evaluation interval
(a row's step is the bin's end), then mean and band over seeds. Its CSV has the same columns; kind
is the metric (disc_expert_acc, disc_agent_acc, gail_env_ratio). Runs that predate a metric add
no rows of it; with no such run at all the figure says so.

`--check` computes every figure first and compares it with the existing CSV: on a difference it
leaves the committed files alone, names the figure and the first differing row, and exits 1.

Nothing is lost by accident: --results must exist; a figure drawn from fewer runs than the
existing CSV holds (any curve with fewer seeds than it has there) does not replace it unless
`--allow-fewer` is given; run dirs whose files cannot be read are listed as damaged runs; and
every file is written to a temporary name and renamed, so a kill never leaves half a figure.

Reference: docs/figures.md.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dm2_repro.sweeps.plan import BACKENDS, FIGURES, SCALES, Curve, expand, figure_def
from dm2_repro.figures import plotting
from dm2_repro.config import make_hp
from dm2_repro.envs import METRICS, metric_of
from dm2_repro.results.runs import (CurveRuns, align_seeds, curve_runs, damaged_lines, demo_episode_length, detect_scale,
                               load_runs, seed_table, summarise_seeds)
from dm2_repro.validate import (InputError, Parser, at_least, atomic_copy, atomic_write, check_hp_pairs,
                                check_maps, existing_dir, fail, not_a_file)

KEY_COLUMNS = ["figure", "panel", "curve", "kind", "step"]
SEED_COLUMNS = [*KEY_COLUMNS, "seed", "value"]   # FIGURE_seeds.csv: what each mean is taken over


@dataclass
class FigureData:
    name: str
    title: str
    scale: str
    backend: str
    band: str
    panels: list[str]
    curves: list[CurveRuns]
    table: pd.DataFrame
    damaged: list = field(default_factory=list)   # (run dir, reason) of the runs that cannot be read
    seeds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SEED_COLUMNS))

    @property
    def missing(self) -> list[CurveRuns]:
        return [c for c in self.curves if c.missing_jobs]

    def draw(self) -> plotting.plt.Figure:
        return plotting.draw(self.table, self.panels, self.legend(), self.band,
                             f"{self.name}: {self.title} [{self.scale}]",
                             {c.curve.panel: curve_metric(c, self.scale) for c in self.curves},
                             ncols=figure_def(self.name).ncols)

    def legend(self) -> list[plotting.LegendEntry]:
        """Partial curves say how many of their seeds have runs."""
        entries = []
        for c in self.curves:
            n = len(c.runs)
            partial = f" (n={n}/{c.n_expected})" if n < c.n_expected else ""
            entries.append(plotting.LegendEntry(c.curve.panel, c.curve.label,
                                                c.curve.label + partial, c.curve.color_key,
                                                linestyle=c.curve.linestyle))
        return entries


def seed_rows(head: dict, aligned: pd.DataFrame) -> pd.DataFrame:
    """An aligned step x seed frame as rows of SEED_COLUMNS; `head`: figure, panel, curve, kind."""
    return pd.DataFrame({**head, **seed_table(aligned)})[SEED_COLUMNS]


def curve_metric(c: CurveRuns, scale: str) -> str:
    """What a curve plots: its own metric, else its map's statistic at this scale (win rate or return)."""
    return c.curve.metric or metric_of(c.curve.map, scale)


def demo_line_owners(curves: list[CurveRuns]) -> set[int]:
    """Which curves draw their demonstrations' quality line (ids): of the curves of a panel that
    learn from the same demonstrations (fig6's DM² and GAIL-only, c_sensitivity's c values), the
    one with the most runs (the first on a tie), so the line stays with the fullest curve."""
    owners = {}
    for c in curves:
        demo_set = (c.curve.panel, tuple(d.name for d in c.curve.demos))
        if c.curve.demos and (demo_set not in owners or len(c.runs) > len(owners[demo_set].runs)):
            owners[demo_set] = c
    return {id(c) for c in owners.values()}


def curve_table(figure: str, c: CurveRuns, results_dir: Path, band: str, draws_demo: bool,
                scale: str) -> list[pd.DataFrame]:
    """The per-seed rows (SEED_COLUMNS) of one curve: its seeds' aligned curves, and, if it
    `draws_demo` (demo_line_owners), its demonstrations' qualities over the seeds it has runs of.
    `summary` turns them into the plotted rows."""
    parts = []
    head = {"figure": figure, "panel": c.curve.panel, "curve": c.curve.label}
    metric = curve_metric(c, scale)
    aligned = align_seeds(c.series(METRICS[metric]))
    if not aligned.empty:
        parts.append(seed_rows({**head, "kind": "curve"}, aligned))
    qualities = {seed: q for seed, q in c.demo_qualities(results_dir, metric).items() if seed in c.runs}
    if qualities and draws_demo:
        one_row = pd.DataFrame([qualities], index=[np.nan])   # a horizontal line: no step
        parts.append(seed_rows({**head, "kind": "demo_quality"}, one_row))
    return parts


def seeds_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The per-seed table of a figure (integer steps; empty on demo_quality rows)."""
    seeds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SEED_COLUMNS)
    return seeds.astype({"step": "Int64"})


def summary(seeds: pd.DataFrame, band: str) -> pd.DataFrame:
    """The plotted rows: per KEY_COLUMNS the mean over seeds, the band and n_seeds."""
    columns = [*KEY_COLUMNS, "mean", band, "n_seeds"]
    if seeds.empty:
        table = pd.DataFrame(columns=columns)
    else:
        table = summarise_seeds(seeds.astype({"step": "float64"}), KEY_COLUMNS, band)[columns]
    table["step"] = table["step"].astype("Int64")   # integer steps; empty on demo_quality rows
    return table


def compute(name: str, results_dir: Path, band: str = "se", scale: str = "auto",
            n_seeds: int | None = None, backend: str = "smax", hp: tuple = (), maps=None,
            curves=None) -> FigureData:
    runs = load_runs(results_dir)
    if scale == "auto":
        scale = detect_scale([name], runs, backend, n_seeds, hp=hp, maps=maps, curves=curves)
    plan = expand(name, scale, n_seeds, maps, curves, backend=backend, hp=hp)
    curves = curve_runs(plan.curves, runs)
    owners = demo_line_owners(curves)
    seeds = seeds_frame([part for c in curves
                         for part in curve_table(name, c, results_dir, band, id(c) in owners, scale)])
    panels = list(dict.fromkeys(c.curve.panel for c in curves))
    return FigureData(name, figure_def(name).title, scale, backend, band, panels, curves,
                      summary(seeds, band), list(runs.damaged), seeds)


def run_command_for_missing(data: FigureData, results_dir: Path, n_seeds: int | None) -> str:
    """The `dm2_repro.run` call that produces the missing runs (it skips what exists)."""
    missing = data.missing
    maps = sorted({c.curve.map for c in missing})
    keys = sorted({c.curve.key for c in missing})
    all_maps = sorted({c.curve.map for c in data.curves})
    all_keys = sorted({c.curve.key for c in data.curves})
    parts = ["python -m dm2_repro.run", data.name, "--scale", data.scale]
    if n_seeds:
        parts += ["--seeds", str(n_seeds)]
    if maps != all_maps or figure_def(data.name).needs_maps:
        parts += ["--maps", *maps]
    if keys != all_keys:
        parts += ["--curves", *keys]
    if data.backend != "smax":
        parts += ["--backend", data.backend]
    if str(results_dir) != "results":
        parts += ["--results", str(results_dir)]
    return " ".join(parts)


def report_missing(data: FigureData, results_dir: Path, n_seeds: int | None) -> None:
    if not data.missing:
        return
    print(f"{data.name}: runs missing at scale {data.scale} (partial curves are marked n=k/N):")
    for c in data.missing:
        seeds = ", ".join(str(job.seed) for job in c.missing_jobs)
        print(f"  {c.curve.panel} / {c.curve.label}: {len(c.missing_jobs)} of {c.n_expected} "
              f"seeds missing (seeds {seeds})")
    print(f"  to produce them: {run_command_for_missing(data, results_dir, n_seeds)}")


# ---------------------------------------------------------------------------------------------
# GAIL diagnostics of the DM²-family runs
# ---------------------------------------------------------------------------------------------

GAIL_DIAGNOSTICS = "gail_diagnostics"
DM2_FAMILY = ("dm2", "dm2_state_action", "gail_only", "sil", "bc_dm2")   # learners with a GAIL term
GAIL_METRICS = ("disc_expert_acc", "disc_agent_acc", "gail_env_ratio")
# the incentive to end games (the GAIL-reward issue): the greedy test episode length beside the mean length of
# the demonstrations the curve imitates (an imitator should end games as often as its demonstrators)
LENGTH_METRIC, DEMO_LENGTH_KIND = "test_ep_length_mean", "demo_ep_length"
# runs before 2026-12-04 divided by max(mean |r_env|, 1e-12), so an update without any env reward logged
# ~1e10-1e12 instead of inf; no real ratio of the two reward terms comes near this
UNDEFINED_RATIO = 1e9


def undefined_ratios(series: pd.Series) -> pd.Series:
    """gail_env_ratio values of updates without any env reward (inf, or >= UNDEFINED_RATIO as older
    runs logged them) as inf."""
    return series.where(series.abs() < UNDEFINED_RATIO, np.inf)


def undefined_share(runs) -> float:
    """Of all (run, agent, update) gail_env_ratio values of these runs, the share that is undefined."""
    values = [undefined_ratios(run.metric(key)).to_numpy(dtype=float) for run in runs
              for key in run.metrics if key.startswith("gail_env_ratio/")]
    values = np.concatenate(values) if values else np.empty(0)
    return float(np.isinf(values).mean()) if values.size else 0.0


def agent_mean(run, name: str) -> pd.Series:
    """A per-update metric averaged over agents, by env step, finite values only: the mean of the
    per-agent `name/k` series where the run logged them, else the run's agent-averaged `name`.
    gail_env_ratio: an agent's undefined ratios (no env reward in that update) are left out."""
    prefix = f"{name}/"
    per_agent = sorted((key for key in run.metrics
                        if key.startswith(prefix) and key[len(prefix):].isdigit()),
                       key=lambda key: int(key[len(prefix):]))
    clean = undefined_ratios if name == "gail_env_ratio" else (lambda s: s)
    if per_agent:
        frame = pd.concat([clean(run.metric(key)) for key in per_agent], axis=1)
        series = frame.replace([np.inf, -np.inf], np.nan).mean(axis=1, skipna=True)
    else:
        series = clean(run.metric(name))
    series = series[np.isfinite(series.to_numpy(dtype=float))]
    series.index.name = "step"
    return series


def binned(series: pd.Series, width: int) -> pd.Series:
    """Mean of the values within each bin (k-1)*width < step <= k*width, indexed by k*width."""
    if series.empty:
        return series
    ends = (np.ceil(np.asarray(series.index, dtype=float) / width) * width).astype(np.int64)
    out = series.groupby(ends).mean()
    out.index.name = "step"
    return out


def diagnostics_label(curve: Curve) -> str:
    """The curve's legend name, with what its figure's panel said besides the map (fig3's
    demonstration quality, fig5's "(IPPO demo, 100k)"): diagnostics panels are maps."""
    extra = curve.panel.removeprefix(curve.map).strip().removeprefix("(").removesuffix(")")
    return f"{curve.label} ({extra})" if extra and extra not in curve.label else curve.label


def gail_family_curves(scale: str, n_seeds: int | None, backend: str, hp: tuple, maps=None,
                       curves=None) -> list[tuple[str, Curve]]:
    """Every distinct DM²-family curve of the figure definitions (one per set of jobs; the first
    figure naming it gives the label), with a label unique within its map."""
    found: dict[tuple, tuple[str, Curve]] = {}
    used: set[tuple[str, str]] = set()
    for name in FIGURES:
        for curve in expand(name, scale, n_seeds, maps, curves, backend=backend, hp=hp).curves:
            if curve.jobs[0].algo not in DM2_FAMILY or curve.jobs in found:
                continue
            label = diagnostics_label(curve)
            for candidate in (label, f"{label} [{name}]", f"{label} [{name}: {curve.key}]"):
                if (curve.map, candidate) not in used:
                    label = candidate
                    break
            used.add((curve.map, label))
            found[curve.jobs] = (label, curve)
    return list(found.values())


@dataclass
class DiagnosticsData:
    """What gail_diagnostics plots: like FigureData, a table in the figures' CSV format."""
    name: str
    title: str
    scale: str
    band: str
    panels: list[str]                      # maps with any diagnostics rows
    entries: list[tuple[str, CurveRuns]]   # (label, runs) of the curves with runs
    table: pd.DataFrame
    damaged: list = field(default_factory=list)   # (run dir, reason) of the runs that cannot be read
    seeds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SEED_COLUMNS))
    undefined: dict = field(default_factory=dict)  # (map, label) -> share of undefined ratios, where > 0

    def rows(self, label: str, c: CurveRuns) -> pd.DataFrame:
        """A curve's rows (labels are unique within a map only)."""
        return self.table[(self.table["panel"] == c.curve.map) & (self.table["curve"] == label)]

    def legend(self) -> list[plotting.LegendEntry]:
        """The curves with rows; partial ones say how many of their seeds have runs."""
        entries = []
        for label, c in self.entries:
            seeds = self.rows(label, c)["n_seeds"]
            if seeds.empty:
                continue
            n, expected = int(seeds.max()), c.n_expected
            partial = f" (n={n}/{expected})" if n < expected else ""
            share = self.undefined.get((c.curve.map, label), 0.0)
            note = f" [no r_env: {100 * share:.0f}% of updates left out]" if share else ""
            entries.append(plotting.LegendEntry(c.curve.map, label, label + partial,
                                                f"{c.curve.figure}:{c.curve.key}", ratio_note=note))
        return entries

    def draw(self) -> plotting.plt.Figure:
        return plotting.draw_gail_diagnostics(self.table, self.panels, self.legend(), self.band,
                                              f"{self.name}: {self.title} [{self.scale}]")

    def report(self) -> None:
        if not self.panels:
            print(f"{self.name}: {plotting.NO_GAIL_RUNS} ({len(self.entries)} DM²-family curves "
                  f"with runs at scale {self.scale})")
            return
        without_ratio = [f"{c.curve.map} / {label}" for label, c in self.entries
                         if not (self.rows(label, c)["kind"] == "gail_env_ratio").any()]
        if without_ratio:
            print(f"{self.name}: no gail_env_ratio logged by the runs of: {'; '.join(without_ratio)}")
        for (map_name, label), share in self.undefined.items():
            print(f"{self.name}: {map_name} / {label}: {100 * share:.1f}% of its (agent, update) ratios are "
                  f"undefined (no env reward in the update) and left out")


def episode_length_rows(label: str, c: CurveRuns, width: int, results_dir: Path) -> list[pd.DataFrame]:
    """A curve's greedy test episode length per seed (kind LENGTH_METRIC) and the mean episode length of
    each seed's demonstrations (kind DEMO_LENGTH_KIND, one row without a step: a horizontal line) where
    recorded (results.demo_episode_length)."""
    head = {"figure": GAIL_DIAGNOSTICS, "panel": c.curve.map, "curve": label}
    parts = []
    aligned = align_seeds({seed: binned(run.metric(LENGTH_METRIC), width) for seed, run in c.runs.items()
                           if LENGTH_METRIC in run.metrics})
    if not aligned.empty:
        parts.append(seed_rows({**head, "kind": LENGTH_METRIC}, aligned))
    lengths = {job.seed: demo_episode_length(job.demo, c.runs[job.seed], results_dir)
               for job in c.curve.jobs if job.demo and job.seed in c.runs}
    lengths = {seed: v for seed, v in lengths.items() if v is not None}
    if lengths:
        parts.append(seed_rows({**head, "kind": DEMO_LENGTH_KIND}, pd.DataFrame([lengths], index=[np.nan])))
    return parts


def compute_gail_diagnostics(results_dir: Path, band: str = "se", scale: str = "auto",
                             n_seeds: int | None = None, backend: str = "smax",
                             hp: tuple = (), maps=None, curves=None) -> DiagnosticsData:
    runs = load_runs(results_dir)
    if scale == "auto":
        scale = detect_scale(FIGURES, runs, backend, n_seeds, hp=hp, maps=maps, curves=curves)
    found = gail_family_curves(scale, n_seeds, backend, hp, maps, curves)
    by_curve = curve_runs([curve for _, curve in found], runs)
    entries = [(label, c) for (label, _), c in zip(found, by_curve) if c.runs]
    parts = []
    for label, c in entries:
        job = c.curve.jobs[0]
        width = make_hp(job.algo, job.map, job.scale, dict(job.hp)).eval_every
        for metric in GAIL_METRICS:
            aligned = align_seeds({seed: binned(agent_mean(run, metric), width)
                                   for seed, run in c.runs.items()})
            if aligned.empty:
                continue
            parts.append(seed_rows({"figure": GAIL_DIAGNOSTICS, "panel": c.curve.map,
                                    "curve": label, "kind": metric}, aligned))
        parts += episode_length_rows(label, c, width, results_dir)
    seeds = seeds_frame(parts)
    table = summary(seeds, band)
    panels = list(dict.fromkeys(table["panel"]))
    shares = {(c.curve.map, label): undefined_share(c.runs.values()) for label, c in entries}
    title = "GAIL discriminator accuracy, reward scale and episode length of the DM²-family runs"
    return DiagnosticsData(GAIL_DIAGNOSTICS, title, scale, band, panels, entries, table,
                           list(runs.damaged), seeds, {k: v for k, v in shares.items() if v > 0})


# ---------------------------------------------------------------------------------------------
# Comparing with a committed CSV
# ---------------------------------------------------------------------------------------------

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
    """(panel, curve, kind) -> the most seeds any of its rows has."""
    if table.empty or not {"panel", "curve", "kind", "n_seeds"} <= set(table.columns):
        return {}
    return {key: int(n) for key, n in table.groupby(["panel", "curve", "kind"])["n_seeds"].max().items()}


def fewer_runs(old: pd.DataFrame, new: pd.DataFrame) -> str | None:
    """None unless the new table has fewer seeds than the old for some curve: then which."""
    before, now = seed_counts(old), seed_counts(new)
    lost = [(key, n, now.get(key, 0)) for key, n in before.items() if now.get(key, 0) < n]
    if not lost:
        return None
    (panel, curve, kind), n, m = lost[0]
    return (f"{len(lost)} of its {len(before)} curves would have fewer runs, e.g. {panel} / {curve} ({kind}): "
            f"{n} seeds in the existing CSV, {m} now ({sum(before.values())} -> {sum(now.values())} runs in all)")


# ---------------------------------------------------------------------------------------------
# Making figures
# ---------------------------------------------------------------------------------------------

def seeds_csv(out_dir: Path, name: str) -> Path:
    """Where a figure's per-seed table goes, beside its CSV of plotted numbers."""
    return out_dir / f"{name}_seeds.csv"


def write(data: FigureData, out_dir: Path) -> None:
    """The figure's png, pdf, per-seed csv and csv, each written to a temporary name and renamed
    (the csv of plotted numbers last: it is what --check and --allow-fewer look at)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = data.draw()
    for suffix in ("png", "pdf"):
        # no creation date in the PDF: regenerating an unchanged figure gives the same bytes
        meta = {"CreationDate": None} if suffix == "pdf" else {}
        atomic_write(out_dir / f"{data.name}.{suffix}",
                     lambda tmp: fig.savefig(tmp, format=suffix, dpi=150, bbox_inches="tight", metadata=meta))
    plotting.plt.close(fig)
    atomic_write(seeds_csv(out_dir, data.name), lambda tmp: data.seeds.to_csv(tmp, index=False))
    atomic_write(out_dir / f"{data.name}.csv", lambda tmp: data.table.to_csv(tmp, index=False))


def stale_csv(table: pd.DataFrame, csv: Path) -> str | None:
    """How `table` differs from the committed `csv` (None if the same numbers), compared after a
    round trip through CSV so both sides are read exactly as stored."""
    with tempfile.TemporaryDirectory() as tmp:
        table.to_csv(Path(tmp) / "new.csv", index=False)
        return first_mismatch(read_csv(csv), read_csv(Path(tmp) / "new.csv"))


def make(name: str, results_dir: Path, out_dir: Path, band: str, check: bool, scale: str,
         n_seeds: int | None, backend: str, hp: tuple = (), allow_fewer: bool = False, maps=None,
         curves=None) -> bool:
    """Make one figure (a figure definition or gail_diagnostics); False if --check found the
    committed CSV stale, or if the existing CSV holds more runs and `allow_fewer` is not set."""
    if name == GAIL_DIAGNOSTICS:
        data = compute_gail_diagnostics(results_dir, band, scale, n_seeds, backend, hp, maps, curves)
        data.report()
    else:
        data = compute(name, results_dir, band, scale, n_seeds, backend, hp, maps, curves)
        report_missing(data, results_dir, n_seeds)
    for line in damaged_lines(data):
        print(line)
    csv = out_dir / f"{name}.csv"
    if csv.exists() and not allow_fewer:
        problem = fewer_runs(read_csv(csv), data.table)
        if problem:
            print(f"NOT REPLACED {name}: {csv} has more runs than {results_dir} gives: {problem}; "
                  "pass --allow-fewer to replace it anyway")
            return False
    # the per-seed CSV is newer than most committed figures: checked where it exists
    for table, committed in ((data.table, csv), (data.seeds, seeds_csv(out_dir, name))):
        problem = check and committed.exists() and stale_csv(table, committed)
        if problem:
            print(f"STALE {name}: {committed} differs from the runs in {results_dir}: {problem}")
            return False
    write(data, out_dir)
    print(f"{name}: wrote {out_dir / name}.png/.pdf/.csv and {seeds_csv(out_dir, name).name} "
          f"({data.scale}, {len(data.table)} rows)")
    return True


def make_theory(results_dir: Path, out_dir: Path, check: bool) -> bool:
    """The theory figure belongs to dm2_repro.theory.plot. It is drawn into a scratch folder
    first so that, with --check, its CSV is compared before the committed files are replaced."""
    from dm2_repro.theory.plot import make_figure   # another part of the package; load on use

    with tempfile.TemporaryDirectory() as tmp:
        make_figure(results_dir=str(results_dir / "theory"), out_dir=tmp)
        for new_csv in Path(tmp).glob("*.csv"):
            old_csv = out_dir / new_csv.name
            problem = check and old_csv.exists() and first_mismatch(read_csv(old_csv),
                                                                    read_csv(new_csv))
            if problem:
                print(f"STALE theory: {old_csv} differs: {problem}")
                return False
        out_dir.mkdir(parents=True, exist_ok=True)
        for made in Path(tmp).iterdir():
            atomic_copy(made, out_dir / made.name)
    print(f"theory: wrote to {out_dir}")
    return True


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(prog="python -m dm2_repro.figure", description=__doc__)
    parser.add_argument("figures", nargs="+", choices=[*FIGURES, "theory", GAIL_DIAGNOSTICS, "all"],
                        metavar="FIGURE",
                        help=f"{', '.join(FIGURES)}, theory, {GAIL_DIAGNOSTICS}, or all")
    parser.add_argument("--results", default="results", help="results directory")
    parser.add_argument("--out", default="figures", help="output directory")
    parser.add_argument("--band", choices=("se", "sd"), default="se",
                        help="band: standard error (the paper's text) or standard deviation")
    parser.add_argument("--check", action="store_true",
                        help="fail, without overwriting, if an existing CSV differs")
    parser.add_argument("--scale", choices=("auto", *SCALES), default="auto",
                        help="preset whose runs to plot (auto: the largest with any runs)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per curve (default: the preset's)")
    parser.add_argument("--maps", nargs="+", default=None,
                        help="only these maps' panels (as given to dm2_repro.run; best with another --out)")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="only curves whose key matches one of these globs (as given to dm2_repro.run)")
    parser.add_argument("--backend", choices=BACKENDS, default="smax", help="environment backend of the runs")
    parser.add_argument("--hp", nargs="+", default=None, metavar="KEY=VALUE",
                        help="the hp overrides the runs were made with (as given to dm2_repro.run)")
    parser.add_argument("--allow-fewer", action="store_true",
                        help="replace an existing figure even if it was drawn from more runs")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple:
    """The arguments' values (argparse checked names): the results dir exists, counts are
    positive, hp overrides are known fields in range, maps are known. Returns the parsed hp overrides."""
    existing_dir("--results", args.results)
    not_a_file("--out", args.out)
    at_least("--seeds", args.seeds, 1)
    check_maps(args.maps)
    needs = [f for f in args.figures if f in FIGURES and figure_def(f).needs_maps]
    if needs and not args.maps:
        raise InputError(f"figure {needs[0]} plots the maps you name: pass --maps MAP [MAP ...]")
    return check_hp_pairs(args.hp)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        hp = check_args(args)
    except InputError as error:
        fail(error)
    names = ([*(f for f in FIGURES if not figure_def(f).needs_maps), "theory", GAIL_DIAGNOSTICS] if "all" in args.figures
             else list(dict.fromkeys(args.figures)))
    results_dir, out_dir = Path(args.results), Path(args.out)
    failed = []
    for name in names:
        if name in FIGURES and (args.maps or args.curves) and not expand(name, "smoke", None, args.maps,
                                                                          args.curves).curves:
            print(f"{name}: no curves on these --maps / --curves; skipped")
            continue
        try:
            if name == "theory":
                ok = make_theory(results_dir, out_dir, args.check)
            else:
                ok = make(name, results_dir, out_dir, args.band, args.check, args.scale,
                          args.seeds, args.backend, hp, args.allow_fewer, args.maps, args.curves)
        except Exception as error:   # report every figure, then fail
            print(f"ERROR {name}: cannot make the figure: {type(error).__name__}: "
                  f"{' '.join(str(error).split())}")
            ok = False
        if not ok:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
