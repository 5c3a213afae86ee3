"""Check the paper's findings on the logged runs.

    python -m dm2_repro.claims [--results results] [--out results/claims.md] [--scale auto]

Every finding the paper states becomes one or more comparisons between two curves of a figure
definition (or a curve and its demonstrations' quality), each tested with a stated statistic:

- auc: normalised area under the test win-rate curve, i.e. the mean win rate over training
  (trapezoid rule over the eval steps, divided by the step range). Both curves are cut to the
  step range every run of both covers. Larger = faster learning.
- final: the mean win rate of the last 3 evaluations in that common range.
- above demo: per seed, final win rate minus the quality (greedy win rate) of that seed's
  demonstrations; paired by seed.

The measured value is the difference of means (A - B) with a 95% percentile bootstrap CI over
seeds (10,000 resamples, seeds resampled within each curve; fixed generator seed, so the report is
deterministic). Verdicts:
- "A > B" findings hold if the CI lies above 0, do not hold if it lies below 0;
- "A ~ B" findings (no real difference) hold if the CI lies inside +-0.1, do not hold if it lies
  entirely outside +-0.1;
- otherwise inconclusive; "not enough data" with fewer than 2 seeds on a side.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import (BACKENDS, FIGURES, SCALES, demo_step, expand, format_steps,
                         quality_sweep)
from dm2_repro.results import CurveRuns, curve_runs, detect_scale, load_runs

N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 20220601
EQUIVALENCE_MARGIN = 0.1
FINAL_EVALS = 3
MIN_SEEDS = 2

GREATER, EQUIVALENT, ABOVE_DEMO = "greater", "equivalent", "above_demo"
HOLDS, FAILS, INCONCLUSIVE, NO_DATA = "holds", "does not hold", "inconclusive", "not enough data"


@dataclass(frozen=True)
class Comparison:
    finding: str      # what the paper claims, in a few words
    paper: str        # where and how the paper says it
    figure: str
    map: str
    a: str            # curve key
    b: str | None     # curve key (None for ABOVE_DEMO: A against its demonstrations)
    test: str         # GREATER, EQUIVALENT or ABOVE_DEMO
    statistic: str = "auc"

    @property
    def description(self) -> str:
        relation = {GREATER: ">", EQUIVALENT: "~"}.get(self.test)
        if self.test == ABOVE_DEMO:
            return f"{self.figure} {self.map}: {self.a} > its demonstrations (final win rate)"
        return f"{self.figure} {self.map}: {self.a} {relation} {self.b} ({self.statistic})"


@dataclass
class Outcome:
    comparison: Comparison
    verdict: str
    measured: str
    run_ids: dict[str, list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The paper's findings
# ---------------------------------------------------------------------------------------------

COMPARISON_MAPS = {"fig2": ("5m_vs_6m", "3s_vs_4z", "3s_vs_3z"), "fig4": ("3s_vs_5z", "8m_vs_9m")}


def comparisons(scale: str) -> list[Comparison]:
    found = []
    for figure, maps in COMPARISON_MAPS.items():
        for m in maps:
            for variant in ("dm2_ippo_early", "dm2_ippo_late", "dm2_qmix"):
                found.append(Comparison(
                    "DM² learns faster than IPPO",
                    f"Sec. 6 (Fig. {figure[-1]}): DM² significantly improves learning speed over "
                    "IPPO in all tasks", figure, m, variant, "ippo", GREATER))
            for ctde in ("qmix", "rmappo"):
                found.append(Comparison(
                    "CTDE (QMIX, RMAPPO) learns faster than DM²",
                    "Sec. 6: QMIX and RMAPPO learn faster than DM² and IPPO",
                    figure, m, ctde, "dm2_ippo_late", GREATER))
            for level in ("early", "late"):
                found.append(Comparison(
                    "DM² surpasses its IPPO demonstrations",
                    "Sec. 6: for IPPO demonstrations DM² surpasses the demonstrations' win rate",
                    figure, m, f"dm2_ippo_{level}", None, ABOVE_DEMO, "final"))
            found.append(Comparison(
                "Little sensitivity to demonstration quality",
                "Sec. 6: despite the variance in demonstration win rates DM² performs similarly",
                figure, m, "dm2_ippo_late", "dm2_ippo_early", EQUIVALENT))
    # Saturation: the best snapshot against the "late" one (paper: 10M against 7M).
    sweep = quality_sweep("5m_vs_6m", scale)
    late = min(sweep, key=lambda s: abs(s - demo_step("5m_vs_6m", scale, "late")))
    found.append(Comparison(
        "Little sensitivity to demonstration quality beyond a threshold",
        "App. B, Fig. 7: improves with demonstration quality but quickly saturates",
        "fig7", "5m_vs_6m", f"dm2_ippo_{format_steps(sweep[-1])}",
        f"dm2_ippo_{format_steps(late)}", EQUIVALENT))
    for level in ("early", "late"):
        for co, indep in (("co_concurrent", "indep_concurrent"),
                          ("co_nonconcurrent", "indep_nonconcurrent")):
            found.append(Comparison(
                "Co-trained demonstrations matter",
                "Sec. 6, Fig. 3: whether experts were co-trained makes the greatest difference",
                "fig3", "5m_vs_6m", f"{level}_{co}", f"{level}_{indep}", GREATER))
        for first, second in (("co_concurrent", "co_nonconcurrent"),
                              ("indep_concurrent", "indep_nonconcurrent")):
            found.append(Comparison(
                "Concurrent sampling does not matter",
                "Sec. 6, Fig. 3: whether demonstrations were concurrently sampled does not "
                "significantly impact learning", "fig3", "5m_vs_6m", f"{level}_{first}",
                f"{level}_{second}", EQUIVALENT))
    for m in ("5m_vs_6m", "3s_vs_4z"):
        for level in ("early", "late"):
            for better in ("ippo", f"dm2_{level}"):
                found.append(Comparison(
                    "GAIL reward alone is far worse",
                    "App. B, Fig. 6: IPPO on the GAIL reward achieves a far lower win rate than "
                    "IPPO or DM²", "fig6", m, better, f"gail_only_{level}", GREATER))
        found.append(Comparison(
            "The benefit of BC pretraining vanishes",
            "App. B, Fig. 5: the benefits of BC vanish as IPPO training proceeds",
            "fig5", m, "bc_dm2", "dm2", EQUIVALENT, "final"))
    found.append(Comparison(
        "QMIX is sensitive to its agent architecture",
        "App. C, Fig. 8: QMIX with the IPPO agent network performs significantly worse",
        "fig8", "5m_vs_6m", "qmix", "qmix_ippo_arch", GREATER))
    return found


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def common_range(curves: list[CurveRuns]) -> tuple[float, float]:
    """The step range every run of these curves covers."""
    series = [s for c in curves for s in c.series().values() if len(s)]
    return max(s.index[0] for s in series), min(s.index[-1] for s in series)


def normalised_auc(series, lo: float, hi: float) -> float:
    part = series[(series.index >= lo) & (series.index <= hi)]
    steps = part.index.to_numpy(dtype=float)
    return float(np.trapezoid(part.to_numpy(), steps) / (steps[-1] - steps[0]))


def final_win_rate(series, hi: float) -> float:
    return float(series[series.index <= hi].iloc[-FINAL_EVALS:].mean())


def bootstrap_ci(a: np.ndarray, b: np.ndarray | None) -> tuple[float, float, float]:
    """Mean difference (a - b; or mean of a if b is None, for paired differences) and its 95%
    percentile bootstrap CI, resampling each sample with replacement."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.choice(a, size=(N_BOOTSTRAP, len(a))).mean(axis=1)
    estimate = a.mean()
    if b is not None:
        draws = draws - rng.choice(b, size=(N_BOOTSTRAP, len(b))).mean(axis=1)
        estimate = estimate - b.mean()
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(estimate), float(low), float(high)


def verdict(test: str, low: float, high: float) -> str:
    if test == EQUIVALENT:
        if -EQUIVALENCE_MARGIN < low and high < EQUIVALENCE_MARGIN:
            return HOLDS
        if low > EQUIVALENCE_MARGIN or high < -EQUIVALENCE_MARGIN:
            return FAILS
        return INCONCLUSIVE
    if low > 0:
        return HOLDS
    if high < 0:
        return FAILS
    return INCONCLUSIVE


def evaluate(comparison: Comparison, a: CurveRuns, b: CurveRuns | None,
             results_dir: Path) -> Outcome:
    run_ids = {comparison.a: sorted(r.run_id for r in a.runs.values())}
    if b is not None:
        run_ids[comparison.b] = sorted(r.run_id for r in b.runs.values())
    sides = [a] if b is None else [a, b]
    counts = " vs ".join(str(len(side.runs)) for side in sides)
    if any(len(side.runs) < MIN_SEEDS for side in sides):
        return Outcome(comparison, NO_DATA, f"n={counts}", run_ids)
    lo, hi = common_range(sides)
    if comparison.test == ABOVE_DEMO:
        qualities = a.demo_qualities(results_dir)
        seeds = [seed for seed in a.runs if seed in qualities]
        if len(seeds) < MIN_SEEDS:
            return Outcome(comparison, NO_DATA, f"n={len(seeds)} with known demo quality",
                           run_ids)
        diffs = np.array([final_win_rate(a.runs[s].metric(), hi) - qualities[s] for s in seeds])
        estimate, low, high = bootstrap_ci(diffs, None)
        label, counts = "final - demo", f"{len(seeds)} paired"
    else:
        stat = (lambda s: normalised_auc(s, lo, hi)) if comparison.statistic == "auc" else (
            lambda s: final_win_rate(s, hi))
        values = [np.array([stat(s) for s in side.series().values()]) for side in sides]
        estimate, low, high = bootstrap_ci(values[0], values[1])
        label = "ΔAUC" if comparison.statistic == "auc" else "Δfinal"
    measured = f"{label} = {estimate:+.3f} [{low:+.3f}, {high:+.3f}] (n={counts})"
    return Outcome(comparison, verdict(comparison.test, low, high), measured, run_ids)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def evaluate_all(results_dir: Path, scale: str, backend: str = "smax",
                 n_seeds: int | None = None) -> list[Outcome]:
    runs = load_runs(results_dir)
    by_figure: dict[str, dict[tuple[str, str], CurveRuns]] = {}
    outcomes = []
    for comparison in comparisons(scale):
        if comparison.figure not in by_figure:
            plan = expand(comparison.figure, scale, n_seeds, backend=backend)
            by_figure[comparison.figure] = {(c.curve.map, c.curve.key): c
                                            for c in curve_runs(plan.curves, runs)}
        curves = by_figure[comparison.figure]
        a = curves[(comparison.map, comparison.a)]
        b = curves[(comparison.map, comparison.b)] if comparison.b else None
        outcomes.append(evaluate(comparison, a, b, results_dir))
    return outcomes


def markdown(outcomes: list[Outcome], results_dir: Path, scale: str) -> str:
    lines = [f"# The paper's claims on the logged runs ({scale} scale)", "",
             f"Runs: `{results_dir}/runs` (COMPLETED runs only). Regenerate with "
             f"`python -m dm2_repro.claims --results {results_dir} --scale {scale}`.", "",
             "## Statistic", "", __doc__.split("\n\n", 2)[2].strip(), "",
             "## Results", "",
             "| # | finding | comparison | paper | measured | verdict |",
             "|---|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        c = o.comparison
        lines.append(f"| {i} | {c.finding} | {c.description} | {c.paper} | {o.measured} | "
                     f"**{o.verdict}** |")
    tally = {v: sum(o.verdict == v for o in outcomes) for v in (HOLDS, FAILS, INCONCLUSIVE, NO_DATA)}
    lines += ["", "Summary: " + ", ".join(f"{n} {v}" for v, n in tally.items()), "",
              "## Runs used", "", "Sacred run ids (directories under runs/) per compared curve.", ""]
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
    parser = argparse.ArgumentParser(prog="python -m dm2_repro.claims", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="results directory")
    parser.add_argument("--out", default=None, help="Markdown report (default RESULTS/claims.md)")
    parser.add_argument("--scale", choices=("auto", *SCALES), default="auto",
                        help="preset whose runs to use (auto: the largest with any runs)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per curve (preset's)")
    parser.add_argument("--backend", choices=BACKENDS, default="smax")
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) if the existing report differs from the logged runs; write nothing")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    results_dir = Path(args.results)
    scale = args.scale
    if scale == "auto":
        scale = detect_scale(FIGURES, load_runs(results_dir), args.backend, args.seeds)
    outcomes = evaluate_all(results_dir, scale, args.backend, args.seeds)
    print_table(outcomes)
    out = Path(args.out) if args.out else results_dir / "claims.md"
    report = markdown(outcomes, results_dir, scale)
    if args.check:
        if not out.exists() or out.read_text() != report:
            print(f"\n{out} is stale or missing: regenerate it with python -m dm2_repro.claims", file=sys.stderr)
            return 1
        print(f"\n{out} agrees with the logged runs")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
