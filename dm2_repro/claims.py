"""Check the paper's findings on the logged runs.

    python -m dm2_repro.claims [--results results] [--out results/claims.md] [--scale auto]

Every finding the paper states becomes one or more comparisons between two curves of a figure
definition (or a curve and its demonstrations' quality), each tested with a stated statistic:

- auc: normalised area under the test win-rate curve, i.e. the mean win rate over training
  (trapezoid rule over the eval steps, divided by the step range). Both curves are cut to the
  step range every run of both covers, give or take half an eval spacing (evaluations land up to one
  rollout past their nominal step, and that jitter must not drop a run's last evaluation). Larger =
  faster learning.
- final: the mean win rate of the last 3 evaluations in that common range.
- above demo: per seed, final win rate minus the quality (greedy win rate) of that seed's
  demonstrations.

On maps where a scale's budget leaves IPPO's win rate at the floor (config.RETURN_STATISTIC_MAPS:
5m_vs_6m and 8m_vs_9m at cpu, declared from the budget pilot before any campaign run there), every
statistic is taken on the greedy test return divided by 20 (SMAC's reward: the best episode
return) instead of the win rate, and "above demo" against the demonstrations' greedy return / 20.
3s_vs_5z at cpu is judged on the win rate (primary) and, as a second statistic, on the test return
/ 20 (config.SECONDARY_RETURN_MAPS: only IPPO leaves the win-rate floor there in 200k steps); each of
its comparisons appears once per statistic, the second marked "secondary statistic".

Declared 2026-12-07, before the re-run of the DM²-family curves under the absorbing GAIL reward:
- The "~" margin is per map and statistic (EQUIVALENCE_MARGINS): a tenth of what IPPO gains over
  training above an untrained team, 0.1 x (IPPO's mean AUC - its mean value at step 0), from the
  committed IPPO runs of Figures 2/4 (not re-run). At cpu: 5m_vs_6m 0.028 (return / 20), 3s_vs_4z
  0.053, 3s_vs_3z 0.078, 3s_vs_5z 0.003 (win rate) and 0.039 (return / 20), 8m_vs_9m 0.024 (return /
  20). One margin of 0.1 for win rates and returns alike made "~" hold by construction on the return
  maps (every curve's AUC there lies within 0.24-0.31); other scales keep 0.1 until their own IPPO
  runs declare theirs. At paper_hp (declared before any run at that preset; docs/figures.md): the same
  rule from the paper_hp pilot's IPPO run over the budget the pilot sets (dm2_repro.verdicts.budget),
  committed with config.PAPER_HP_T_MAX before the panel's first run; its statistics are those above.
- "Learns faster" findings (DM² > IPPO, CTDE > DM²) are judged on the AUC over the whole common step
  range and, as a second row, over its first third (sweeps.plan.EARLY_WINDOW, "first third of
  training"): DM² can lead early and fall behind later, which a full-budget AUC mixes.
- "Above its demonstrations" against demonstrations at the floor (greedy win rate <= 0.05 on every
  seed, win-rate statistic) is reported as "trivially above", never "holds".
- Beside each verdict, the verdict after Holm–Bonferroni adjustment over every comparison of the
  report with data (the family; stats.holm): each verdict's p-value is that of the same t test
  (verdict_p: two-sided for ">" findings; two one-sided tests against the margins for "~") and the
  verdict stands where its adjusted p < 0.05, else "inconclusive". The family includes Figure 3's 2x2
  rows with a verdict (since 2026-12-08: until then they were left out of it by an omission; a larger
  family only makes the adjusted verdicts stricter).

Beyond the paper, declared before their runs (2026-12-07): the reward-form figure (reward_forms) compares,
per form of the GAIL reward, DM² with IPPO (auc, as C1) and GAIL-only's final greedy test episode length
with its demonstrations' mean episode length ("imitates the length": per seed final / demonstrations - 1,
paired by seed, one-sample t interval; holds if it lies inside +-0.25, does not hold if it lies entirely
outside); the departure ablation (departures) compares each DM² arm with IPPO and with the cpu preset's DM²
on the auc over the whole budget and over its first third ("early": the first third of the step range
every run of both covers), "~" with the margin above.

How the re-run moved each verdict: the column "before the re-run" judges the same comparison, with the same
statistic, on the DM²-family runs made before it (the log-odds GAIL reward without an absorbing state, at the
preset's own discriminator rate; sweeps.plan.BEFORE_RERUN): that verdict and estimate, the estimate's change
(now - before) and whether the verdict changed. Comparisons with no earlier arm (IPPO, QMIX and RMAPPO alone; the
reward-form and departure figures, which set their forms themselves) read "not re-run" (dm2_repro.verdicts.rerun).

Figure 3 as a 2x2 design (C5: co-training matters, concurrent sampling does not): per panel
(demonstration quality) and pooled over both, each learner seed with runs in every cell gives its
main effect of co-training (co-trained - independent AUC, averaged over both sampling styles), of
concurrent sampling (concurrent - non-concurrent, averaged over both expert kinds) and their
interaction (dm2_repro.results.stats.factorial_effects); each effect's 95% interval is the one-sample t
interval of its per-seed values (df = n - 1), BCa beside it. Co-training's effect is judged as an
"A > B" finding, concurrency's as an "A ~ B" one; the interaction is reported without a verdict. The
pooled row is the primary verdict of each factor (the panels' rows and the pairwise comparisons above
show where it comes from; all of them are in Holm's family); a main effect averages over the other factor, so
opposite simple effects could cancel in it: the pairwise rows are those simple effects.

Aggregate across maps (rliable's method, Agarwal et al. 2021, re-implemented in dm2_repro.results.stats):
for each algorithm of Fig. 2/4 against IPPO, on the maps where both have at least 5 seeds, the
interquartile mean (IQM) of the per-run AUC over all run x map scores, and the probability of
improvement P(X > IPPO) (per map P(X > Y) + 0.5 P(X = Y) over all run pairs, averaged over maps),
each with a 95% percentile CI from a stratified bootstrap (runs resampled within each map; 10,000
resamples, fixed generator seed). AUCs are on the step range both curves cover on that map; where
maps have different seed counts, each map contributes its first n seeds, n the smallest count.

Reference: docs/figures.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dm2_repro.sweeps.plan import BACKENDS, FIGURES, SCALES, expand
from dm2_repro.figures import report
from dm2_repro.figures.behaviour import behaviour_lines
from dm2_repro.envs import metric_of
from dm2_repro.results.runs import (CurveRuns, DamagedRun, curve_runs, damaged_lines, detect_scale, load_runs,
                                    range_problem)
from dm2_repro.validate import (InputError, Parser, at_least, atomic_write_text, check_hp_pairs, check_maps,
                                existing_dir, fail, first_line)
from dm2_repro.verdicts.findings import (COMPARISON_MAPS, FAILS, HOLDS, INCONCLUSIVE, MIN_SEEDS, NO_DATA, Outcome,
                                         TRIVIAL, comparisons, fig3)
from dm2_repro.verdicts.decide import evaluate, with_holm
from dm2_repro.verdicts import beside
from dm2_repro.verdicts.rerun import before_text, changed, with_before
from dm2_repro.verdicts.saturation import saturation_section
from dm2_repro.verdicts.factorial import (EffectRow, factorial, factorial_lines, factorial_section, fig3_effects,
                                          with_before_rerun)
from dm2_repro.verdicts.aggregate import AGGREGATE_BASELINE, Aggregate, aggregate_all


def report_extras(curves: dict, scale: str, results_dir: Path, effects, before: dict | None = None) -> dict[str, list[str]]:
    """The report's lines that come from the claims beyond the comparison table: Figure 3 as a 2x2
    design (when `effects`, verdicts.factorial's rows), Figure 7's saturation, and for every figure its
    end-of-training behaviour table (figures.behaviour) (report.block's `extra`);
    `before`: the curves before the re-run (load_curves(before_rerun=True))."""
    extra = {}
    if effects is not None:
        extra["fig3"] = factorial_section(effects, scale)
    if "fig7" in curves:
        extra["fig7"] = saturation_section(curves["fig7"], scale, results_dir, (before or {}).get("fig7"))
    for name, by_key in curves.items():   # every figure: what its learners do at the end, beside their demonstrations
        extra[name] = [*extra.get(name, []), *behaviour_lines(by_key, results_dir, (before or {}).get(name))]
    return extra


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def load_curves(results_dir: Path, scale: str, backend: str = "smax", n_seeds: int | None = None,
                figures=None, runs=None, hp: tuple = (), maps=None,
                curves=None, before_rerun: bool = False) -> dict[str, dict[tuple[str, str], CurveRuns]]:
    """Figure -> (map, curve key) -> the curve's COMPLETED runs (`runs`: a load_runs scan to use;
    its `.damaged` gains the runs whose metrics cannot be read); `hp`, `maps`, `curves` as given to
    dm2_repro.run for the runs; `before_rerun`: the DM²-family curves' runs before their re-run (plan.expand)."""
    runs = load_runs(results_dir, strict=True) if runs is None else runs
    figures = figures or list(dict.fromkeys(
        [c.figure for c in comparisons(scale, hp)] + list(COMPARISON_MAPS)))
    found = {}
    for figure in figures:
        plan = expand(figure, scale, n_seeds, maps, curves, backend=backend, hp=hp, before_rerun=before_rerun)
        found[figure] = {(c.curve.map, c.curve.key): c for c in curve_runs(plan.curves, runs)}
    return found


def selected(comparison, by_key: dict) -> bool:
    """Whether both curves of a comparison are among the loaded ones (--maps / --curves may leave
    either out)."""
    return all((comparison.map, key) in by_key for key in (comparison.a, comparison.b) if key)


def judge(results_dir: Path, scale: str, backend: str = "smax", n_seeds: int | None = None, curves=None,
          hp: tuple = ()) -> tuple[list[Outcome], list[EffectRow] | None]:
    """The report's verdicts: every comparison (outcomes) and Figure 3's 2x2 rows (None unless all eight of its
    curves are loaded), with Holm's adjustment over both: the family is every verdict of the report with data."""
    curves = curves or load_curves(results_dir, scale, backend, n_seeds, hp=hp)
    outcomes = []
    for comparison in comparisons(scale, hp):
        by_key = curves[comparison.figure]
        if not selected(comparison, by_key):
            continue
        a = by_key[(comparison.map, comparison.a)]
        b = by_key[(comparison.map, comparison.b)] if comparison.b else None
        outcomes.append(evaluate(comparison, a, b, results_dir))
    effects = fig3_effects(curves, scale)
    with_holm([*outcomes, *(effects or [])])
    return outcomes, effects


def evaluate_all(results_dir: Path, scale: str, backend: str = "smax",
                 n_seeds: int | None = None, curves=None, hp: tuple = ()) -> list[Outcome]:
    """judge()'s comparisons alone (their Holm column over the whole family, Figure 3's 2x2 rows included)."""
    return judge(results_dir, scale, backend, n_seeds, curves, hp)[0]


def _estimate(value: tuple[float, float, float]) -> str:
    estimate, low, high = value
    return f"{estimate:.3f} [{low:.3f}, {high:.3f}]"


def aggregate_lines(aggregates: list[Aggregate]) -> list[str]:
    lines = [f"| algorithm X | maps (runs X / {AGGREGATE_BASELINE}) | IQM AUC of X [95% CI] | "
             f"IQM AUC of {AGGREGATE_BASELINE} [95% CI] | P(X > {AGGREGATE_BASELINE}) [95% CI] |",
             "|---|---|---|---|---|"]
    for agg in aggregates:
        if agg.iqm is None:
            seen = ", ".join(f"{m} {nx}/{ny}" for m, (nx, ny) in agg.counts.items())
            lines.append(f"| {agg.key} | none with >= {MIN_SEEDS} seeds per side ({seen}) | "
                         f"{NO_DATA} | {NO_DATA} | {NO_DATA} |")
            continue
        n_x, n_y = agg.n_runs
        used = ", ".join(agg.maps) + f" ({n_x} / {n_y} runs each)"
        lines.append(f"| {agg.key} | {used} | {_estimate(agg.iqm)} | "
                     f"{_estimate(agg.iqm_baseline)} | {_estimate(agg.improvement)} |")
    return lines


def markdown(outcomes: list[Outcome], results_dir: Path, scale: str,
             aggregates: list[Aggregate] | None = None, options: str = "",
             effects: list[EffectRow] | None = None) -> str:
    """The report; `options` are the selection options it was made with (regenerate line)."""
    lines = [f"# The paper's claims on the logged runs ({scale} scale)", "",
             f"Runs: `{results_dir}/runs` (COMPLETED runs only). Regenerate with "
             f"`python -m dm2_repro.claims --results {results_dir} --scale {scale}{options}`.", "",
             "## Statistic", "", __doc__.split("\n\n", 2)[2].strip(), "",
             "## Results", "",
             "| # | finding | comparison | paper | per-seed values (seed order) | measured | "
             "verdict | Holm | before the re-run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        c = o.comparison
        lines.append(f"| {i} | {c.finding} | {c.description} | {c.paper} | {report.cell(o.values)} | "
                     f"{o.measured} | **{o.verdict}** | {o.holm} | {before_text(o)} |")
    verdicts = (HOLDS, TRIVIAL, FAILS, INCONCLUSIVE, NO_DATA)
    for name, of in (("Summary", lambda o: o.verdict), ("After Holm's adjustment", lambda o: o.holm)):
        tally = {v: sum(of(o) == v for o in outcomes) for v in verdicts}
        lines += ["", f"{name}: " + ", ".join(f"{n} {v}" for v, n in tally.items())]
    moved = [changed(o) for o in outcomes if changed(o) is not None]
    lines += ["", f"Changed by the re-run: {sum(moved)} of the {len(moved)} re-run comparisons with data before "
                  "and after it"]
    if effects is not None:
        lines += ["", "## Figure 3 as a 2x2 design", "",
                  f"Effects on {fig3.MAP}'s AUC, paired by learner seed (see Statistic).", "",
                  *factorial_lines(effects, metric_of(fig3.MAP, scale))]
    if aggregates is not None:
        lines += ["", "## Aggregate across maps", "",
                  f"Normalised AUC of Fig. 2/4 curves against {AGGREGATE_BASELINE} on the maps "
                  f"where both have >= {MIN_SEEDS} seeds (rliable-style; see Statistic).", "",
                  *aggregate_lines(aggregates)]
    lines += ["", "## Runs used", "", "Sacred run ids (directories under runs/) per compared curve.",
              ""]
    for i, o in enumerate(outcomes, 1):
        used = "; ".join(f"{key}: {', '.join(ids) or 'none'}" for key, ids in o.run_ids.items())
        lines.append(f"{i}. {used}")
    return "\n".join(lines) + "\n"


def print_table(outcomes: list[Outcome]) -> None:
    rows = [("claim", "paper", "measured", "verdict")]
    rows += [(o.comparison.description, o.comparison.finding, o.measured, o.verdict)
             for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(prog="python -m dm2_repro.claims", description=__doc__)
    parser.add_argument("--results", default="results", help="results directory")
    parser.add_argument("--out", default=None, help="Markdown report (default: RESULTS/claims.md)")
    parser.add_argument("--scale", choices=("auto", *SCALES), default="auto",
                        help="preset whose runs to use (auto: the largest with any runs)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per curve (default: the preset's)")
    parser.add_argument("--maps", nargs="+", default=None,
                        help="only the comparisons on these maps (as given to dm2_repro.run)")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="only the comparisons whose curves match these globs (as given to dm2_repro.run)")
    parser.add_argument("--hp", nargs="+", default=None, metavar="KEY=VALUE",
                        help="the hp overrides the runs were made with (as given to dm2_repro.run)")
    parser.add_argument("--backend", choices=BACKENDS, default="smax", help="environment backend of the runs")
    parser.add_argument("--readme", default=None, metavar="docs/report.md",
                        help="also write the reproduction report (dm2_repro.figures.report) into this file, between "
                             "its markers")
    parser.add_argument("--summary", default=None, metavar="README.md",
                        help="also write the claims at a glance (one row per finding and figure, linking to --readme's "
                             "file) into this file, between its markers")
    parser.add_argument("--beside", choices=SCALES, default=None, metavar="SCALE",
                        help="also judge the same comparisons at this preset (its whole report) and set its verdicts "
                             "beside these (verdicts.beside), e.g. --scale paper_hp --beside cpu; with --beside-into")
    parser.add_argument("--beside-into", default=None, metavar="README.md",
                        help="write the presets side by side into this file, between its markers")
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) if the existing report (and --readme's, --summary's and --beside-into's "
                             "blocks) differs "
                             "from the logged runs; write nothing")
    return parser.parse_args(argv)


def selection_options(args: argparse.Namespace) -> str:
    """The --maps / --curves / --hp given, as typed, for the report's regenerate line (a report made
    without them reads as before)."""
    words = []
    for option, values in (("--maps", args.maps), ("--curves", args.curves), ("--hp", args.hp)):
        if values:
            words += [option, *values]
    return "".join(f" {word}" for word in words)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results_dir = existing_dir("--results", args.results)
        at_least("--seeds", args.seeds, 1)
        check_maps(args.maps)
        hp = check_hp_pairs(args.hp)
        if args.out and Path(args.out).is_dir():
            raise InputError(f"--out {args.out}: is a directory, not a report file")
        readme = marked_file("--readme", args.readme, report.START, report.END, "the reproduction report's")
        if args.readme and args.beside_into and Path(args.readme).resolve() == Path(args.beside_into).resolve():
            raise InputError(f"--beside-into {args.beside_into}: the same file as --readme (give README.md)")
        summary = marked_file("--summary", args.summary, report.SUMMARY_START, report.SUMMARY_END,
                              "the claims at a glance's")
        if bool(args.beside) != bool(args.beside_into):
            raise InputError("--beside and --beside-into go together: the preset to set beside, and the file to write "
                             "the table into")
        if args.beside and args.beside == args.scale:
            raise InputError(f"--beside {args.beside}: the same preset as --scale")
        beside_into = marked_file("--beside-into", args.beside_into, beside.START, beside.END,
                                  "the presets side by side's")
    except InputError as error:
        fail(error)
    selection = dict(hp=hp, maps=args.maps, curves=args.curves)
    # win rates outside [0, 1] are reported below, not fatal here (the figures refuse them)
    runs = load_runs(results_dir, strict=True)
    scale = args.scale
    try:
        if scale == "auto":
            scale = detect_scale(FIGURES, runs, args.backend, args.seeds, **selection)
        curves = load_curves(results_dir, scale, args.backend, args.seeds, runs=runs, **selection)
        outcomes, effects = judge(results_dir, scale, args.backend, args.seeds, curves, hp)
        before = load_curves(results_dir, scale, args.backend, args.seeds, runs=runs, before_rerun=True, **selection)
        outcomes_before, effects_before = judge(results_dir, scale, args.backend, args.seeds, before, hp)
        with_before(outcomes, outcomes_before, curves, before)
        aggregates = aggregate_all(curves, scale)
        if effects is not None and effects_before is not None:
            with_before_rerun(effects, effects_before)
        extra = report_extras(curves, scale, results_dir, effects, before) if readme else {}
        if args.beside == scale:
            raise InputError(f"--beside {args.beside}: the same preset as the runs' ({scale})")
        # the other preset's whole report: its verdicts and Holm column as in its own claims file
        others = evaluate_all(results_dir, args.beside, args.backend, None,
                              load_curves(results_dir, args.beside, args.backend, runs=runs)) if args.beside else []
    except InputError as error:
        fail(error)
    except DamagedRun as error:   # e.g. a win rate outside [0, 1]: names the run
        for line in damaged_lines(runs):
            print(line)
        print(f"error: {' '.join(first_line(error).split())}", file=sys.stderr)
        return 1
    for line in damaged_lines(runs):
        print(line)
    used = {run.path: run for by_key in curves.values() for c in by_key.values() for run in c.runs.values()}
    out_of_range = [p for p in (range_problem(run) for run in used.values()) if p]
    if out_of_range:
        print(f"WARNING: {len(out_of_range)} run(s) used with win rates outside [0, 1] (their metrics.json is "
              "wrong: fix or remove them):")
        for problem in out_of_range:
            print(f"  {problem}")
    print_table(outcomes)
    print()
    print("\n".join(aggregate_lines(aggregates)))
    out = Path(args.out) if args.out else results_dir / "claims.md"
    text = markdown(outcomes, results_dir, scale, aggregates, selection_options(args), effects)
    readme_text = None
    if readme:
        beyond, beyond_before = (load_curves(results_dir, scale, args.backend, args.seeds, figures=list(report.BEYOND),
                                             runs=runs, before_rerun=earlier, **selection) for earlier in (False, True))
        extra = {**extra, **report_extras(beyond, scale, results_dir, None, beyond_before)}   # their behaviour tables
        figures = Path(os.path.relpath(Path("figures").resolve(), readme.resolve().parent)).as_posix()   # from cwd
        readme_text = report.replace_block(readme.read_text(),
                                           report.block(outcomes, {**curves, **beyond}, scale, extra, figures,
                                                        beyond_before, hp), str(readme))
    summary_text = None
    if summary:
        link = os.path.relpath(readme, summary.parent) if readme else str(out)
        block = report.summary_block(outcomes, Path(link).as_posix(), sections=bool(readme))
        summary_text = report.replace_block(summary.read_text(), block,
                                            str(summary), report.SUMMARY_START, report.SUMMARY_END)
    beside_text = None
    if beside_into:
        command = (f"python -m dm2_repro.claims --scale {scale}{selection_options(args)} --out {args.out or out} "
                   f"--beside {args.beside} --beside-into {args.beside_into}")
        same_file = summary is not None and beside_into.resolve() == summary.resolve()
        start_from = summary_text if same_file else beside_into.read_text()
        beside_text = report.replace_block(start_from, beside.block(outcomes, others, scale, args.beside, command),
                                           str(beside_into), beside.START, beside.END)
        if same_file:   # one file, both blocks: write it once, with both
            summary_text, beside_text = beside_text, None
    written = [(path, new) for path, new in ((out, text), (readme, readme_text), (summary, summary_text),
                                             (beside_into, beside_text)) if path and new is not None]
    if args.check:
        stale = [path for path, new in written if not path.exists() or path.read_text() != new]
        for path in stale:
            again = ((command if beside_into else "python -m dm2_repro.claims")
                     + (f" --readme {args.readme}" if args.readme else "")
                     + (f" --summary {args.summary}" if args.summary else ""))
            print(f"\n{path} is stale or missing: regenerate it with {again}", file=sys.stderr)
        if stale:
            return 1
        print(f"\n{' and '.join(str(path) for path, _ in written)} agree with the logged runs")
        return 0
    for path, new in written:
        atomic_write_text(path, new)
    print(f"\nwrote {', '.join(str(path) for path, _ in written)}")
    return 0


def marked_file(option: str, value: str | None, start: str, end: str, what: str) -> Path | None:
    """--readme / --summary: an existing file holding the block's two markers (InputError otherwise)."""
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise InputError(f"{option} {value}: no such file")
    if not all(marker in path.read_text() for marker in (start, end)):
        raise InputError(f"{option} {value}: lacks {what} markers (lines {start!r} and {end!r})")
    return path


if __name__ == "__main__":
    sys.exit(main())
