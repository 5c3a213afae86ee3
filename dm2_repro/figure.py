"""Regenerate the paper's figures from the logged Sacred runs.

    python -m dm2_repro.figure fig2                 # figures/fig2.png, .pdf and .csv
    python -m dm2_repro.figure c_sensitivity        # beyond the paper: DM² over c
    python -m dm2_repro.figure gail_diagnostics     # discriminator accuracy, |c r_gail|/|r_env|
    python -m dm2_repro.figure all --check          # every figure above + theory; fail on stale CSVs

Only COMPLETED runs count. Each curve is the mean test win rate over its seeds with a band
(standard error by default, `--band sd` for the standard deviation), on the eval steps every seed
has (see dm2_repro.results.runs for the rule when steps differ). Dotted lines are the qualities of the
demonstrations DM² imitates: the win rate (or return) of their sampled episodes (json `demo_win_rate`,
`demo_return_mean`), averaged over the curve's seeds that have a run (a curve without runs draws no
demonstration line). The greedy source team's quality, the paper's, is in the CSV (kind demo_greedy).

figures/FIGURE.csv holds exactly the plotted numbers, one row per point: figure, panel, curve,
kind ("curve", "demo_sampled" (drawn) or "demo_greedy"; demo rows have no step), step, mean, se (or sd with --band sd),
n_seeds.

`gail_diagnostics` (dm2_repro/figures/diagnostics.py) reads the runs of every DM²-family curve of
every figure definition: discriminator accuracy, |c r_gail| / |r_env| and episode length per map.

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
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dm2_repro.envs import METRICS, metric_of
from dm2_repro.figures import plotting
from dm2_repro.figures.diagnostics import GAIL_DIAGNOSTICS, compute_gail_diagnostics
from dm2_repro.figures.tables import (SEED_COLUMNS, fewer_runs, first_mismatch, read_csv, seed_rows, seeds_csv,
                                      seeds_frame, stale_csv, summary)
from dm2_repro.results.runs import CurveRuns, align_seeds, curve_runs, damaged_lines, detect_scale, load_runs
from dm2_repro.sweeps.plan import BACKENDS, FIGURES, SCALES, expand, figure_def
from dm2_repro.validate import (InputError, Parser, at_least, atomic_copy, atomic_write, check_hp_pairs,
                                check_maps, existing_dir, fail, not_a_file)


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


# demonstration team -> row kind. The dotted line is the SAMPLED team's quality: the episodes in the file,
# which DM² imitates; the greedy team's (the paper's demonstration quality) is in the CSV only.
DEMO_KINDS = {"sampled": plotting.DRAWN_DEMO_KIND, "greedy": "demo_greedy"}


def curve_table(figure: str, c: CurveRuns, results_dir: Path, band: str, draws_demo: bool,
                scale: str) -> list[pd.DataFrame]:
    """The per-seed rows (SEED_COLUMNS) of one curve: its seeds' aligned curves, and, if it
    `draws_demo` (demo_line_owners), its demonstrations' qualities (DEMO_KINDS) over the seeds it has runs of.
    `summary` turns them into the plotted rows."""
    parts = []
    head = {"figure": figure, "panel": c.curve.panel, "curve": c.curve.label}
    metric = curve_metric(c, scale)
    aligned = align_seeds(c.series(METRICS[metric]))
    if not aligned.empty:
        parts.append(seed_rows({**head, "kind": "curve"}, aligned))
    if draws_demo:
        for team, kind in DEMO_KINDS.items():
            qualities = {seed: q for seed, q in c.demo_qualities(results_dir, metric, team).items()
                         if seed in c.runs}
            if qualities:
                one_row = pd.DataFrame([qualities], index=[np.nan])   # a horizontal line: no step
                parts.append(seed_rows({**head, "kind": kind}, one_row))
    return parts


def compute(name: str, results_dir: Path, band: str = "se", scale: str = "auto",
            n_seeds: int | None = None, backend: str = "smax", hp: tuple = (), maps=None,
            curves=None) -> FigureData:
    runs = load_runs(results_dir)
    if scale == "auto":
        scale = figure_def(name).scale or detect_scale([name], runs, backend, n_seeds, hp=hp, maps=maps, curves=curves)
    plan = expand(name, scale, n_seeds, maps, curves, backend=backend, hp=hp)
    curves = curve_runs(plan.curves, runs)
    owners = demo_line_owners(curves)
    seeds = seeds_frame([part for c in curves
                         for part in curve_table(name, c, results_dir, band, id(c) in owners, scale)])
    panels = list(dict.fromkeys(c.curve.panel for c in curves))
    table = summary(seeds, band)
    marks = figure_def(name).marks
    if marks:
        rows = [{"figure": name, "panel": c.curve.panel, "curve": f"{c.curve.label}: {label}", "kind": plotting.MARK_KIND,
                 "step": step} for c in curves for label, step in marks(c)]
        table = pd.concat([table, pd.DataFrame(rows, columns=table.columns)], ignore_index=True) if rows else table
    return FigureData(name, figure_def(name).title, scale, backend, band, panels, curves,
                      table, list(runs.damaged), seeds)


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
# Making figures
# ---------------------------------------------------------------------------------------------

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
