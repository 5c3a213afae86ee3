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
  runs declare theirs.
- "Learns faster" findings (DM² > IPPO, CTDE > DM²) are judged on the AUC over the whole common step
  range and, as a second row, over its first third (sweeps.plan.EARLY_WINDOW, "first third of
  training"): DM² can lead early and fall behind later, which a full-budget AUC mixes.
- "Above its demonstrations" against demonstrations at the floor (greedy win rate <= 0.05 on every
  seed, win-rate statistic) is reported as "trivially above", never "holds".
- Beside each verdict, the verdict after Holm–Bonferroni adjustment over every comparison of the
  report with data (the family; stats.holm): each verdict's p-value is that of the same t test
  (verdict_p: two-sided for ">" findings; two one-sided tests against the margins for "~") and the
  verdict stands where its adjusted p < 0.05, else "inconclusive".

Beyond the paper, declared before their runs (2026-12-07): the reward-form figure (reward_forms) compares,
per form of the GAIL reward, DM² with IPPO (auc, as C1) and GAIL-only's final greedy test episode length
with its demonstrations' mean episode length ("imitates the length": per seed final / demonstrations - 1,
paired by seed, one-sample t interval; holds if it lies inside +-0.25, does not hold if it lies entirely
outside); the departure ablation (departures) compares each DM² arm with IPPO and with the cpu preset's DM²
on the auc over the whole budget and over its first third ("early": the first third of the step range
every run of both covers), "~" with the margin above.

Figure 3 as a 2x2 design (C5: co-training matters, concurrent sampling does not): per panel
(demonstration quality) and pooled over both, each learner seed with runs in every cell gives its
main effect of co-training (co-trained - independent AUC, averaged over both sampling styles), of
concurrent sampling (concurrent - non-concurrent, averaged over both expert kinds) and their
interaction (dm2_repro.stats.factorial_effects); each effect's 95% interval is the one-sample t
interval of its per-seed values (df = n - 1), BCa beside it. Co-training's effect is judged as an
"A > B" finding, concurrency's as an "A ~ B" one; the interaction is reported without a verdict. The
pooled row is the primary verdict of each factor (the panels' rows and the pairwise comparisons above,
no multiplicity correction, show where it comes from); a main effect averages over the other factor, so
opposite simple effects could cancel in it: the pairwise rows are those simple effects.

Aggregate across maps (rliable's method, Agarwal et al. 2021, re-implemented in dm2_repro.stats):
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
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dm2_repro.algos import GAIL_REWARDS
from dm2_repro.sweeps.plan import (BACKENDS, EARLY_WINDOW, FIGURES, SCALES, demo_step, expand, format_steps,
                                   quality_sweep)
from dm2_repro.sweeps.plan import definition
from dm2_repro import report, stats
from dm2_repro.curve_values import (FINAL_EVALS, common_range, final_win_rate, format_values,  # noqa: F401
                                    in_range, metric_scale, normalised_auc, seed_values)   # (re-exported)
from dm2_repro.config import MAX_RETURN, SECONDARY_RETURN_MAPS
from dm2_repro.envs import metric_of
from dm2_repro.results import (CurveRuns, DamagedRun, curve_runs, damaged_lines, demo_episode_length, detect_scale,
                               load_runs, range_problem)
from dm2_repro.validate import (InputError, Parser, at_least, atomic_write_text, check_hp_pairs, check_maps,
                                existing_dir, fail, first_line)
# the definitions whose maps and settings the paper's claims name (experiments/*.py)
fig2, fig3, fig4, fig5, fig6, fig7, fig8, reward_forms, departures = map(
    definition, ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "reward_forms", "departures"))

CONFIDENCE = 0.95
N_BCA = 9_999
N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 20220601
EQUIVALENCE_MARGIN = 0.1   # "~" margin where EQUIVALENCE_MARGINS declares none (smoke, paper scale)
# Per map and statistic (declared 2026-12-07, before the re-run of the DM²-family curves): a tenth of what IPPO gains
# over training above an untrained team, 0.1 x (IPPO's mean AUC - its mean value at step 0), from the committed
# IPPO runs (Figures 2/4, 5 seeds; they are not re-run): the smallest difference a reader would care about, on
# that map's own scale (one constant for win rates and returns alike made "~" hold by construction on return maps)
EQUIVALENCE_MARGINS = {"cpu": {("5m_vs_6m", "return"): 0.028, ("3s_vs_4z", "win_rate"): 0.053,
                               ("3s_vs_3z", "win_rate"): 0.078, ("3s_vs_5z", "win_rate"): 0.003,
                               ("3s_vs_5z", "return"): 0.039, ("8m_vs_9m", "return"): 0.024}}
FLOOR_WIN_RATE = 0.05   # demonstrations whose greedy win rate is at most this are at the floor
ALPHA = 1 - 0.95        # the verdicts' level (two-sided), before and after Holm's adjustment
MIN_SEEDS = 5
MIN_QUALITIES = 5   # Fig. 7 may be thinned to this many snapshots (issue 13), never below

GREATER, EQUIVALENT, ABOVE_DEMO = "greater", "equivalent", "above_demo"
DEMO_LENGTH = "demo_length"   # A's final test episode length matches its demonstrations' (reward_forms)
EPISODE_LENGTH = "test_ep_length_mean"
HOLDS, FAILS, INCONCLUSIVE, NO_DATA = "holds", "does not hold", "inconclusive", "not enough data"
TRIVIAL = "trivially above"   # "above its demonstrations" when they are at the floor: true by construction


def equivalence_margin(map_name: str, metric: str, scale: str) -> float:
    """The "~" margin of a map's statistic at a scale (EQUIVALENCE_MARGINS, else EQUIVALENCE_MARGIN)."""
    return EQUIVALENCE_MARGINS.get(scale, {}).get((map_name, metric), EQUIVALENCE_MARGIN)


def map_statistics(map_name: str, scale: str) -> tuple[str, ...]:
    """The map's statistics at a scale: its primary one (envs.metric_of), then the secondary return
    where config.SECONDARY_RETURN_MAPS declares one."""
    primary = metric_of(map_name, scale)
    secondary = ("return",) if map_name in SECONDARY_RETURN_MAPS.get(scale, ()) and primary != "return" else ()
    return (primary, *secondary)


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
    paired: bool = False   # runs paired by design (same learner seed); ABOVE_DEMO always is
    metric: str = "win_rate"   # or "return" (test return / MAX_RETURN) on config.RETURN_STATISTIC_MAPS
    window: float = 1.0    # the statistic on the first `window` of the common step range (1: all of it)
    margin: float = EQUIVALENCE_MARGIN   # "~" margin (equivalence_margin of the map and metric)
    secondary: bool = False   # a second statistic of the map (SECONDARY_RETURN_MAPS)

    @property
    def is_paired(self) -> bool:
        return self.paired or self.test in (ABOVE_DEMO, DEMO_LENGTH)

    @property
    def description(self) -> str:
        relation = {GREATER: ">", EQUIVALENT: "~"}.get(self.test)
        of = "" if self.metric == "win_rate" else f" of test return / {MAX_RETURN:g}"
        if self.secondary:
            of += ", secondary statistic"
        if self.test == EQUIVALENT:
            of += f", ±{self.margin:g}"
        if self.window < 1:
            of += f", first {'third' if abs(self.window - 1 / 3) < 1e-9 else f'{self.window:.0%}'} of training"
        if self.test == DEMO_LENGTH:
            return (f"{self.figure} {self.map}: {self.a}'s final test episode length ~ its demonstrations' "
                    f"(±{reward_forms.EPISODE_LENGTH_MARGIN:.0%})")
        if self.test == ABOVE_DEMO:
            what = "win rate" if self.metric == "win_rate" else f"test return / {MAX_RETURN:g}"
            extra = ", secondary statistic" if self.secondary else ""
            return f"{self.figure} {self.map}: {self.a} > its demonstrations (final {what}{extra})"
        return f"{self.figure} {self.map}: {self.a} {relation} {self.b} ({self.statistic}{of})"


@dataclass
class Outcome:
    comparison: Comparison
    verdict: str
    measured: str
    run_ids: dict[str, list[str]] = field(default_factory=dict)
    values: str = ""   # the per-seed values of both sides, "A: ... | B: ..."
    p_value: float | None = None   # p of the test behind the verdict's direction (verdict_p); None: no data
    direction: str = ""            # the verdict that p_value < ALPHA gives (HOLDS or FAILS)
    holm: str = ""                 # the verdict after Holm's adjustment over the report (with_holm)


# ---------------------------------------------------------------------------------------------
# The paper's findings
# ---------------------------------------------------------------------------------------------

# The maps of the figure definitions themselves: a map added to Fig. 2 or 4 is compared too.
COMPARISON_MAPS = {"fig2": fig2.MAPS, "fig4": fig4.MAPS}


def comparisons(scale: str) -> list[Comparison]:
    """Every comparison, each of curves of its figure definition (checked: see check_curve_keys)."""
    found = []
    for figure, maps in COMPARISON_MAPS.items():
        for m in maps:
            for window in (1.0, EARLY_WINDOW):   # "learns faster": the whole budget and its first third
                for variant in ("dm2_ippo_early", "dm2_ippo_late", "dm2_qmix"):
                    found.append(Comparison(
                        "DM² learns faster than IPPO",
                        f"Sec. 6 (Fig. {figure[-1]}): DM² significantly improves learning speed over "
                        "IPPO in all tasks", figure, m, variant, "ippo", GREATER, window=window))
                for ctde in ("qmix", "rmappo"):
                    found.append(Comparison(
                        "CTDE (QMIX, RMAPPO) learns faster than DM²",
                        "Sec. 6: QMIX and RMAPPO learn faster than DM² and IPPO",
                        figure, m, ctde, "dm2_ippo_late", GREATER, window=window))
            for level in ("early", "late"):
                found.append(Comparison(
                    "DM² surpasses its IPPO demonstrations",
                    "Sec. 6: for IPPO demonstrations DM² surpasses the demonstrations' win rate",
                    figure, m, f"dm2_ippo_{level}", None, ABOVE_DEMO, "final"))
            # Same learner seed, demonstrations of the same expert run at two snapshots.
            found.append(Comparison(
                "Little sensitivity to demonstration quality",
                "Sec. 6: despite the variance in demonstration win rates DM² performs similarly",
                figure, m, "dm2_ippo_late", "dm2_ippo_early", EQUIVALENT, paired=True))
    # Saturation: the best snapshot against the "late" one (paper: 10M against 7M).
    sweep = quality_sweep(fig7.MAP, scale)
    late = min(sweep, key=lambda s: abs(s - demo_step(fig7.MAP, scale, "late")))
    found.append(Comparison(
        "Little sensitivity to demonstration quality beyond a threshold",
        "App. B, Fig. 7: improves with demonstration quality but quickly saturates",
        "fig7", fig7.MAP, f"dm2_ippo_{format_steps(sweep[-1])}",
        f"dm2_ippo_{format_steps(late)}", EQUIVALENT, paired=True))
    # Figure 3: the same learner seed with demonstrations of different styles.
    for level in ("early", "late"):
        for co, indep in (("co_concurrent", "indep_concurrent"),
                          ("co_nonconcurrent", "indep_nonconcurrent")):
            found.append(Comparison(
                "Co-trained demonstrations matter",
                "Sec. 6, Fig. 3: whether experts were co-trained makes the greatest difference",
                "fig3", fig3.MAP, f"{level}_{co}", f"{level}_{indep}", GREATER, paired=True))
        for first, second in (("co_concurrent", "co_nonconcurrent"),
                              ("indep_concurrent", "indep_nonconcurrent")):
            found.append(Comparison(
                "Concurrent sampling does not matter",
                "Sec. 6, Fig. 3: whether demonstrations were concurrently sampled does not "
                "significantly impact learning", "fig3", fig3.MAP, f"{level}_{first}",
                f"{level}_{second}", EQUIVALENT, paired=True))
    for m in dict.fromkeys(fig6.MAPS + fig5.MAPS):
        for level in ("early", "late") if m in fig6.MAPS else ():
            for better in ("ippo", f"dm2_{level}"):
                found.append(Comparison(
                    "GAIL reward alone is far worse",
                    "App. B, Fig. 6: IPPO on the GAIL reward achieves a far lower win rate than "
                    "IPPO or DM²", "fig6", m, better, f"gail_only_{level}", GREATER))
        if m in fig5.MAPS:
            found.append(Comparison(
                "The benefit of BC pretraining vanishes",
                "App. B, Fig. 5: the benefits of BC vanish as IPPO training proceeds",
                "fig5", m, "bc_dm2", "dm2", EQUIVALENT, "final"))
    found += beyond_the_paper(scale)
    found.append(Comparison(
        "QMIX is sensitive to its agent architecture",
        "App. C, Fig. 8: QMIX with the IPPO agent network performs significantly worse",
        "fig8", fig8.MAP, "qmix", "qmix_ippo_arch", GREATER))
    check_curve_keys(found, scale)
    return [replace(c, metric=metric, secondary=i > 0,
                    margin=reward_forms.EPISODE_LENGTH_MARGIN if c.test == DEMO_LENGTH
                    else equivalence_margin(c.map, metric, scale))
            for c in found for i, metric in enumerate(map_statistics(c.map, scale))]


def beyond_the_paper(scale: str) -> list[Comparison]:
    """The reward-form figure's and the departure ablation's comparisons (declared in claims' doc)."""
    found = []
    for m in reward_forms.MAPS:
        for form in GAIL_REWARDS:
            found.append(Comparison(
                f"DM² ({form} GAIL reward) learns faster than IPPO",
                "Beyond the paper: C1 under each form of the GAIL reward", "reward_forms", m, f"dm2_{form}",
                "ippo", GREATER))
            found.append(Comparison(
                f"GAIL-only ({form}) ends games as its demonstrations do",
                "Beyond the paper: an imitator reproduces its demonstrators' episode lengths", "reward_forms", m,
                f"gail_only_{form}", None, DEMO_LENGTH, "final"))
    arms = [c.key for c in expand("departures", scale).curves if c.key.startswith("dm2")]
    for window in (1.0, EARLY_WINDOW):
        for arm in arms:
            found.append(Comparison(
                "DM² learns faster than IPPO", "Beyond the paper: C1 with one departure of the cpu preset undone",
                "departures", departures.MAP, arm, "ippo", GREATER, window=window))
        for arm in arms[1:]:
            found.append(Comparison(
                "The departure does not matter", "Beyond the paper: the arm against the cpu preset's DM²",
                "departures", departures.MAP, arm, "dm2", EQUIVALENT, window=window))
    return found


def check_curve_keys(found: list[Comparison], scale: str) -> None:
    """Every curve a comparison names is a curve (Curve.key on that map) of its figure definition:
    a curve renamed there fails here, naming the comparison, instead of silently dropping out."""
    keys = {figure: {(c.map, c.key) for c in expand(figure, scale).curves}
            for figure in dict.fromkeys(c.figure for c in found)}
    for comparison in found:
        for key in (comparison.a, comparison.b):
            if key is not None and (comparison.map, key) not in keys[comparison.figure]:
                there = sorted(k for m, k in keys[comparison.figure] if m == comparison.map)
                raise ValueError(f"claim {comparison.description!r}: {comparison.figure} has no curve "
                                 f"{key!r} on {comparison.map} (its curves there: {', '.join(there)})")


# ---------------------------------------------------------------------------------------------
# Per-seed values
# ---------------------------------------------------------------------------------------------

# common_range, in_range, normalised_auc, final_win_rate, metric_scale, seed_values, format_values:
# dm2_repro/curve_values.py (report.py uses them too), imported above


def _ci(low: float, high: float) -> str:
    return f"[{low:+.3f}, {high:+.3f}]"


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------

def verdict(test: str, low: float, high: float, margin: float = EQUIVALENCE_MARGIN) -> str:
    if test in (EQUIVALENT, DEMO_LENGTH):
        if -margin < low and high < margin:
            return HOLDS
        if low > margin or high < -margin:
            return FAILS
        return INCONCLUSIVE
    if low > 0:
        return HOLDS
    if high < 0:
        return FAILS
    return INCONCLUSIVE


def verdict_p(test: str, a: np.ndarray, b: np.ndarray, paired: bool, margin: float) -> tuple[float, str]:
    """(p, direction): the p-value of the t test (the interval's own) whose rejection at ALPHA gives the
    verdict `direction` (HOLDS or FAILS), for Holm's adjustment:
    - ">" findings: the two-sided p of H0: A - B = 0, the direction by the sign of A - B;
    - "~" findings: holds when both one-sided tests against -+margin reject (TOST, each at ALPHA / 2):
      p = 2 max(p(A - B > -m), p(A - B < m)); does not hold when A - B lies beyond one margin:
      p = 2 min(p(A - B > m), p(A - B < -m)); the smaller of the two.
    p < ALPHA exactly when the 95% interval gives that verdict (tests/test_claims.py checks it)."""
    if test not in (EQUIVALENT, DEMO_LENGTH):
        p = stats.t_test_p(a, b, paired)
        return p, HOLDS if float(np.mean(a) - np.mean(b)) > 0 else FAILS
    tp = lambda null, alt: stats.t_test_p(a, b, paired, null, alt)  # noqa: E731
    p_holds = min(1.0, 2 * max(tp(-margin, "greater"), tp(margin, "less")))
    p_fails = min(1.0, 2 * min(tp(margin, "greater"), tp(-margin, "less")))
    return (p_holds, HOLDS) if p_holds <= p_fails else (p_fails, FAILS)


def with_holm(outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes with their Holm-adjusted verdicts: Holm–Bonferroni over every outcome with data in the
    report (the family), each verdict kept where its adjusted p < ALPHA, inconclusive otherwise."""
    judged = [o for o in outcomes if o.p_value is not None]
    adjusted = stats.holm([o.p_value for o in judged]) if judged else []
    for o, p in zip(judged, adjusted):
        o.holm = o.direction if p < ALPHA else INCONCLUSIVE
    for o in outcomes:
        o.holm = o.holm or o.verdict
    return outcomes


def bca_text(low: float, high: float) -> str:
    """A BCa interval as the report writes it ("n/a" where BCa is undefined, e.g. all values equal)."""
    return f"BCa {_ci(low, high)}" if math.isfinite(low) and math.isfinite(high) else "BCa n/a"


def interval(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[str, float, float, float, str]:
    """(test name, estimate, low, high, BCa text) for A - B: paired t or Welch t, and BCa."""
    if paired:
        estimate, low, high, dof = stats.paired_t_interval(a, b, CONFIDENCE)
        _, bca_low, bca_high = stats.bca_interval(a - b, confidence=CONFIDENCE,
                                                  n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
        name = f"paired t, df={dof:g}"
    else:
        estimate, low, high, dof = stats.welch_t_interval(a, b, CONFIDENCE)
        _, bca_low, bca_high = stats.bca_interval(a, b, statistic=stats.mean_difference,
                                                  confidence=CONFIDENCE, n_resamples=N_BCA,
                                                  seed=BOOTSTRAP_SEED)
        name = f"Welch t, df={dof:.1f}"
    return name, estimate, low, high, bca_text(bca_low, bca_high)


def evaluate(comparison: Comparison, a: CurveRuns, b: CurveRuns | None,
             results_dir: Path) -> Outcome:
    run_ids = {comparison.a: sorted(r.run_id for r in a.runs.values())}
    if b is not None:
        run_ids[comparison.b] = sorted(r.run_id for r in b.runs.values())
    sides = [a] if b is None else [a, b]
    span = common_range(sides)
    if span and comparison.window < 1:
        span = (span[0], span[0] + comparison.window * (span[1] - span[0]))
    if comparison.test == DEMO_LENGTH:
        return demo_length_outcome(comparison, a, span, results_dir, run_ids)
    if comparison.test == ABOVE_DEMO:
        finals = seed_values(a, "final", *span, comparison.metric) if span else {}
        qualities = {seed: q / metric_scale(comparison.metric)
                     for seed, q in a.demo_qualities(results_dir, comparison.metric).items()}
        seeds = [seed for seed in finals if seed in qualities]
        known = " ".join(f"{qualities[s]:.3f}" if s in qualities else "?" for s in finals)
        values = f"{comparison.a} final: {format_values(finals.values())} | demo quality: " + (
            known or "none")
        if len(seeds) < MIN_SEEDS:
            return Outcome(comparison, NO_DATA,
                           f"n={len(seeds)} with known demo quality (needs {MIN_SEEDS})",
                           run_ids, values)
        left = np.array([finals[s] for s in seeds])
        right = np.array([qualities[s] for s in seeds])
        label, counts = "final - demo", f"n={len(seeds)} paired"
        # demonstrations at the floor: "above them" holds by construction
        floor = comparison.metric == "win_rate" and float(right.max()) <= FLOOR_WIN_RATE
    else:
        floor = False
        statistic = comparison.statistic
        per_side = [seed_values(side, statistic, *span, comparison.metric) if span else {}
                    for side in sides]
        values = " | ".join(f"{key}: {format_values(v.values())}"
                            for key, v in zip((comparison.a, comparison.b), per_side))
        n_a, n_b = (len(v) for v in per_side)
        counts = f"n={n_a} vs {n_b}"
        if min(n_a, n_b) < MIN_SEEDS:
            return Outcome(comparison, NO_DATA, f"{counts} (needs {MIN_SEEDS} per side)",
                           run_ids, values)
        if comparison.is_paired:
            seeds = [seed for seed in per_side[0] if seed in per_side[1]]
            if len(seeds) < MIN_SEEDS:
                return Outcome(comparison, NO_DATA,
                               f"{counts}, {len(seeds)} paired (needs {MIN_SEEDS} pairs)",
                               run_ids, values)
            left = np.array([per_side[0][s] for s in seeds])
            right = np.array([per_side[1][s] for s in seeds])
            if len(seeds) < max(n_a, n_b):
                counts += f", {len(seeds)} paired: seeds {' '.join(map(str, seeds))}"
            else:
                counts = f"n={len(seeds)} paired"
        else:
            left, right = (np.array(list(v.values())) for v in per_side)
        label = "ΔAUC" if statistic == "auc" else "Δfinal"
        if comparison.metric != "win_rate":
            label += f"(return/{MAX_RETURN:g})"
    name, estimate, low, high, bca = interval(left, right, comparison.is_paired)
    measured = f"{label} = {estimate:+.3f} {_ci(low, high)} ({name}); {bca} ({counts})"
    judged = verdict(comparison.test, low, high, comparison.margin)
    p, direction = verdict_p(comparison.test, left, right, comparison.is_paired, comparison.margin)
    if comparison.test == ABOVE_DEMO and floor:
        measured += f"; demonstrations at the floor (greedy win rate <= {FLOOR_WIN_RATE:g})"
        judged, direction = (TRIVIAL if judged == HOLDS else judged), (TRIVIAL if direction == HOLDS else direction)
    return Outcome(comparison, judged, measured, run_ids, values, p, direction)


def demo_length_outcome(comparison: Comparison, a: CurveRuns, span, results_dir: Path,
                        run_ids: dict) -> Outcome:
    """A's final greedy test episode length against its demonstrations' mean episode length, per seed as
    final / demonstrations - 1, one-sample t interval; "~" within +-EPISODE_LENGTH_MARGIN."""
    finals = {seed: final_win_rate(s, span[1]) for seed, s in sorted(a.series(EPISODE_LENGTH).items())
              if len(s)} if span else {}
    demo = {job.seed: demo_episode_length(job.demo, a.runs.get(job.seed), results_dir) for job in a.curve.jobs
            if job.demo and job.seed in finals}
    seeds = [s for s in finals if demo.get(s)]
    known = " ".join(f"{demo[s]:.1f}" if demo.get(s) else "?" for s in finals)
    values = f"{comparison.a} final length: " + " ".join(f"{v:.1f}" for v in finals.values()) + \
        f" | demo mean length: {known or 'none'}"
    if len(seeds) < MIN_SEEDS:
        return Outcome(comparison, NO_DATA, f"n={len(seeds)} with known demo length (needs {MIN_SEEDS})",
                       run_ids, values)
    ratio = np.array([finals[s] / demo[s] - 1.0 for s in seeds])
    estimate, low, high, dof = stats.paired_t_interval(ratio, np.zeros_like(ratio), CONFIDENCE)
    _, bca_low, bca_high = stats.bca_interval(ratio, confidence=CONFIDENCE, n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
    held = verdict(DEMO_LENGTH, low, high, comparison.margin)
    p, direction = verdict_p(DEMO_LENGTH, ratio, np.zeros_like(ratio), True, comparison.margin)
    measured = (f"final / demo - 1 = {estimate:+.3f} {_ci(low, high)} (t, df={dof:g}); {bca_text(bca_low, bca_high)} "
                f"(n={len(seeds)} paired)")
    return Outcome(comparison, held, measured, run_ids, values, p, direction)


# ---------------------------------------------------------------------------------------------
# Figure 7: where DM²'s curve saturates in demonstration quality
# ---------------------------------------------------------------------------------------------

@dataclass
class SaturationRow:
    key: str
    quality: float | None              # mean demonstration quality over the curve's seeds
    auc: dict[int, float]              # seed -> AUC
    delta: tuple[float, float, float] | None = None   # paired ΔAUC to the last snapshot: est, low, high
    equivalent: bool | None = None     # interval inside +-EQUIVALENCE_MARGIN (None: < MIN_SEEDS pairs)
    differs: bool | None = None        # interval excludes 0: a difference from the last is detected


def saturation(curves: list[CurveRuns], results_dir: Path, metric: str = "win_rate",
               margin: float = EQUIVALENCE_MARGIN) -> tuple[list[SaturationRow], str]:
    """Fig. 7's snapshot curves in sweep order, each against the last (best) snapshot, paired by
    learner seed: ΔAUC with a paired t interval. Snapshots with fewer than MIN_SEEDS seeds paired with
    the last are left out of the finding (the sweep may be thinned), which needs MIN_QUALITIES
    snapshots, the last included. The curve saturates at the first snapshot from which every later one,
    itself included, is equivalent to the last (interval inside +-margin); the finding also
    names the first snapshot from which no later one differs detectably (interval holding 0), the
    stricter reading. Returns the rows and the finding in words."""
    span = common_range([c for c in curves if c.runs])
    rows = []
    for c in curves:
        auc = seed_values(c, "auc", *span, metric) if span and c.runs else {}
        qualities = c.demo_qualities(results_dir, metric)
        quality = float(np.mean(list(qualities.values()))) / metric_scale(metric) if qualities else None
        rows.append(SaturationRow(c.curve.key, quality, auc))
    best = rows[-1]
    for row in rows[:-1]:
        seeds = [s for s in row.auc if s in best.auc]
        if len(seeds) >= MIN_SEEDS:
            a, b = (np.array([r.auc[s] for s in seeds]) for r in (row, best))
            estimate, low, high, _ = stats.paired_t_interval(a, b, CONFIDENCE)
            row.delta = (estimate, low, high)
            row.equivalent = -margin < low and high < margin
            row.differs = not low <= 0.0 <= high
    done = [row for row in rows[:-1] if row.equivalent is not None]
    left_out = [f"{row.key} ({len(row.auc)} seed{'' if len(row.auc) == 1 else 's'})" for row in rows[:-1]
                if row.equivalent is None]
    omitted = f"; left out, fewer than {MIN_SEEDS} seeds: {', '.join(left_out)}" if left_out else ""
    if len(best.auc) < MIN_SEEDS or len(done) + 1 < MIN_QUALITIES:
        return rows, (f"{NO_DATA} (needs {MIN_QUALITIES} snapshots with {MIN_SEEDS} seeds paired with the last, "
                      f"the last included; has {len(done) + (len(best.auc) >= MIN_SEEDS)}){omitted}")

    def first_from(holds) -> SaturationRow:   # the first complete row from which `holds` is true to the end
        first = len(done)
        while first > 0 and holds(done[first - 1]):
            first -= 1
        return (done + [best])[first]

    def named(row: SaturationRow) -> str:
        return row.key + (f" (demonstration quality {row.quality:.3f})" if row.quality is not None else "")

    at, no_difference = first_from(lambda r: r.equivalent), first_from(lambda r: not r.differs)
    stricter = (f"; no difference from the last is detected from {named(no_difference)} on"
                if no_difference is not at else "")
    if at is best:
        return rows, (f"does not saturate before the last snapshot ({best.key}): no earlier one is equivalent "
                      f"to it{omitted}")
    return rows, (f"saturates at {named(at)}: it and every later snapshot are within +-{margin:g} "
                  f"AUC of the last{stricter}{omitted}")


# ---------------------------------------------------------------------------------------------
# Figure 3 as a 2x2 design (C5)
# ---------------------------------------------------------------------------------------------

# cells[a][b]: factor A = the experts (co-trained, independent), B = sampling (concurrent, not)
FIG3_CELLS = (("co_concurrent", "co_nonconcurrent"), ("indep_concurrent", "indep_nonconcurrent"))
FIG3_LEVELS = ("early", "late")
POOLED = "both"
# stats.factorial_effects' key -> (what it measures, test of its finding or None, the finding)
FIG3_EFFECTS = {
    "A": ("co-trained - independent", GREATER, "Co-trained demonstrations matter"),
    "B": ("concurrent - non-concurrent", EQUIVALENT, "Concurrent sampling does not matter"),
    "AB": ("interaction: co-training's effect with concurrent sampling minus without", None, None),
}


@dataclass
class EffectRow:
    panel: str                  # a demonstration quality of FIG3_LEVELS, or POOLED
    effect: str                 # a key of FIG3_EFFECTS
    values: dict[int, float]    # learner seed -> that seed's effect
    measured: str
    verdict: str                # "" for the interaction (no finding)


def fig3_cells(curves: dict, level: str, metric: str) -> dict[int, np.ndarray]:
    """Learner seed -> its AUCs cells[2, 2] (FIG3_CELLS) in one panel, for the seeds with a run in every
    cell; the AUCs are on the step range all four curves' runs cover."""
    grid = [[curves[(fig3.MAP, f"{level}_{style}")] for style in row] for row in FIG3_CELLS]
    span = common_range([c for row in grid for c in row if c.runs])
    auc = [[seed_values(c, "auc", *span, metric) if span and c.runs else {} for c in row] for row in grid]
    seeds = sorted(set.intersection(*(set(v) for row in auc for v in row)))
    return {s: np.array([[auc[a][b][s] for b in range(2)] for a in range(2)]) for s in seeds}


def effect_row(panel: str, effect: str, values: dict[int, float], margin: float = EQUIVALENCE_MARGIN) -> EffectRow:
    _, test, _ = FIG3_EFFECTS[effect]
    if len(values) < MIN_SEEDS:
        return EffectRow(panel, effect, values, f"n={len(values)} seeds with every cell (needs {MIN_SEEDS})",
                         NO_DATA if test else "")
    x = np.array(list(values.values()))
    estimate, low, high, dof = stats.paired_t_interval(x, np.zeros_like(x), CONFIDENCE)
    _, bca_low, bca_high = stats.bca_interval(x, confidence=CONFIDENCE, n_resamples=N_BCA, seed=BOOTSTRAP_SEED)
    measured = f"{estimate:+.3f} {_ci(low, high)} (t, df={dof:g}); {bca_text(bca_low, bca_high)} (n={len(x)} seeds)"
    return EffectRow(panel, effect, values, measured, verdict(test, low, high, margin) if test else "")


def factorial(curves: dict, metric: str = "win_rate", margin: float = EQUIVALENCE_MARGIN) -> list[EffectRow]:
    """Figure 3's main effects and interaction (stats.factorial_effects) per panel and pooled over both
    panels (per seed, the mean of its two panels' effects; seeds with all eight runs)."""
    per_panel = {}
    for level in FIG3_LEVELS:
        cells = fig3_cells(curves, level, metric)
        effects = stats.factorial_effects(np.stack(list(cells.values()))) if cells else {}
        per_panel[level] = {e: dict(zip(cells, effects[e].tolist())) if cells else {} for e in FIG3_EFFECTS}
    rows = []
    for effect in FIG3_EFFECTS:
        for level in FIG3_LEVELS:
            rows.append(effect_row(level, effect, per_panel[level][effect], margin))
        both = [s for s in per_panel[FIG3_LEVELS[0]][effect] if all(s in per_panel[lv][effect] for lv in FIG3_LEVELS)]
        rows.append(effect_row(POOLED, effect, {s: float(np.mean([per_panel[lv][effect][s] for lv in FIG3_LEVELS]))
                                                for s in both}, margin))
    return rows


def has_fig3_cells(curves: dict) -> bool:
    """Whether the loaded curves (claims.load_curves) hold all eight of Figure 3's (not cut by --curves)."""
    return all((fig3.MAP, f"{level}_{style}") in curves.get("fig3", {})
               for level in FIG3_LEVELS for row in FIG3_CELLS for style in row)


def factorial_lines(rows: list[EffectRow], metric: str = "win_rate") -> list[str]:
    of = "win rate" if metric == "win_rate" else f"test return / {MAX_RETURN:g}"
    lines = [f"| effect (AUC of {of}) | panel | per-seed effect (seed order) | measured (95%) | verdict |",
             "|---|---|---|---|---|"]
    for row in rows:
        what, _, _ = FIG3_EFFECTS[row.effect]
        shown = f"**{row.verdict}**" if row.verdict else "(no finding)"
        lines.append(f"| {what} | {row.panel} | {format_values(row.values.values())} | {row.measured} | {shown} |")
    return lines


def factorial_section(effects: list, scale: str) -> list[str]:
    """Figure 3 as a 2x2 design (C5): both factors' main effects and their interaction, the rows
    claims.factorial made for results/claims.md."""
    return ["Both factors at once (C5): a 2x2 design per panel and pooled over both panels, each effect's "
            "per-seed values and one-sample t interval.", "",
            *factorial_lines(effects, metric_of(fig3.MAP, scale)), ""]


def saturation_section(curves: dict, scale: str, results_dir) -> list[str]:
    """Figure 7: each snapshot's curve against the last one (claims.saturation)."""
    snapshots = [c for (m, key), c in curves.items() if key != "qmix"]
    metric = metric_of(fig7.MAP, scale)
    margin = equivalence_margin(fig7.MAP, metric, scale)
    rows, finding = saturation(snapshots, results_dir, metric, margin)
    lines = ["Where the curve saturates (C4): each snapshot's AUC against the last snapshot's, paired by seed.", "",
             f"| snapshot | demo quality (mean) | AUC per seed | ΔAUC to the last [95% paired t] | "
             f"within ±{margin:g} | differs (interval excludes 0) |",
             "|---|---|---|---|---|---|"]
    yes_no = lambda flag: "—" if flag is None else ("yes" if flag else "no")  # noqa: E731
    for row in rows:
        quality = "—" if row.quality is None else f"{row.quality:.3f}"
        delta = "—" if row.delta is None else f"{row.delta[0]:+.3f} [{row.delta[1]:+.3f}, {row.delta[2]:+.3f}]"
        lines.append(f"| {row.key} | {quality} | {format_values(row.auc.values())} | {delta} | "
                     f"{yes_no(row.equivalent)} | {yes_no(row.differs)} |")
    return lines + ["", f"Finding: {finding}.", ""]


def report_extras(curves: dict, scale: str, results_dir: Path, effects) -> dict[str, list[str]]:
    """The report's lines that come from the claims beyond the comparison table: Figure 3 as a 2x2
    design (when `effects`, claims.factorial's rows), Figure 7's saturation (report.block's `extra`)."""
    extra = {}
    if effects is not None:
        extra["fig3"] = factorial_section(effects, scale)
    if "fig7" in curves:
        extra["fig7"] = saturation_section(curves["fig7"], scale, results_dir)
    return extra


# ---------------------------------------------------------------------------------------------
# Aggregate across maps (rliable-style)
# ---------------------------------------------------------------------------------------------

AGGREGATE_BASELINE = "ippo"


@dataclass
class Aggregate:
    key: str
    baseline: str
    counts: dict[str, tuple[int, int]]     # map -> (seeds of key, seeds of baseline)
    maps: list[str]                        # the maps used (>= MIN_SEEDS seeds on both sides)
    iqm: tuple[float, float, float] | None = None            # (estimate, low, high)
    iqm_baseline: tuple[float, float, float] | None = None
    improvement: tuple[float, float, float] | None = None    # P(key > baseline)
    n_runs: tuple[int, int] | None = None  # runs per map used, per side


def aggregate(key: str, pairs: dict[str, tuple[CurveRuns, CurveRuns]],
              baseline: str = AGGREGATE_BASELINE, metrics: dict[str, str] | None = None) -> Aggregate:
    """`pairs`: map -> (curve `key`, curve `baseline`) on that map; `metrics`: map -> its
    statistic's metric (default win rate)."""
    per_map, counts = {}, {}
    for map_name, (x, y) in pairs.items():
        span = common_range([x, y])
        metric = (metrics or {}).get(map_name, "win_rate")
        values = [seed_values(c, "auc", *span, metric) if span else {} for c in (x, y)]
        counts[map_name] = (len(values[0]), len(values[1]))
        if min(counts[map_name]) >= MIN_SEEDS:
            per_map[map_name] = values
    found = Aggregate(key, baseline, counts, list(per_map))
    if not per_map:
        return found
    n_x = min(len(v[0]) for v in per_map.values())
    n_y = min(len(v[1]) for v in per_map.values())
    x = np.array([list(v[0].values())[:n_x] for v in per_map.values()]).T   # runs x maps
    y = np.array([list(v[1].values())[:n_y] for v in per_map.values()]).T
    ci = dict(confidence=CONFIDENCE, n_resamples=N_BOOTSTRAP, seed=BOOTSTRAP_SEED)
    found.iqm = stats.stratified_bootstrap_ci(x, stats.iqm, **ci)
    found.iqm_baseline = stats.stratified_bootstrap_ci(y, stats.iqm, **ci)
    found.improvement = stats.stratified_bootstrap_ci((x, y), stats.probability_of_improvement,
                                                      **ci)
    found.n_runs = (n_x, n_y)
    return found


def aggregate_curves(curves: dict[str, dict[tuple[str, str], CurveRuns]]) -> list[str]:
    """The curve keys of the Fig. 2 and Fig. 4 definitions other than the baseline, sorted."""
    keys = {key for figure in COMPARISON_MAPS for _, key in curves[figure]}
    return sorted(keys - {AGGREGATE_BASELINE})


def aggregate_all(curves: dict[str, dict[tuple[str, str], CurveRuns]], scale: str) -> list[Aggregate]:
    """Every aggregate_curves key against IPPO over the Fig. 2 and Fig. 4 maps (where a map has
    both curves), each map scored by its statistic at `scale` (win rate, or return / MAX_RETURN)."""
    found = []
    for key in aggregate_curves(curves):
        pairs = {}
        for figure, maps in COMPARISON_MAPS.items():
            by_key = curves[figure]
            for m in maps:
                if (m, key) in by_key and (m, AGGREGATE_BASELINE) in by_key:
                    pairs[m] = (by_key[(m, key)], by_key[(m, AGGREGATE_BASELINE)])
        found.append(aggregate(key, pairs, metrics={m: metric_of(m, scale) for m in pairs}))
    return found


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def load_curves(results_dir: Path, scale: str, backend: str = "smax", n_seeds: int | None = None,
                figures=None, runs=None, hp: tuple = (), maps=None,
                curves=None) -> dict[str, dict[tuple[str, str], CurveRuns]]:
    """Figure -> (map, curve key) -> the curve's COMPLETED runs (`runs`: a load_runs scan to use;
    its `.damaged` gains the runs whose metrics cannot be read); `hp`, `maps`, `curves` as given to
    dm2_repro.run for the runs."""
    runs = load_runs(results_dir, strict=True) if runs is None else runs
    figures = figures or list(dict.fromkeys(
        [c.figure for c in comparisons(scale)] + list(COMPARISON_MAPS)))
    found = {}
    for figure in figures:
        plan = expand(figure, scale, n_seeds, maps, curves, backend=backend, hp=hp)
        found[figure] = {(c.curve.map, c.curve.key): c for c in curve_runs(plan.curves, runs)}
    return found


def selected(comparison, by_key: dict) -> bool:
    """Whether both curves of a comparison are among the loaded ones (--maps / --curves may leave
    either out)."""
    return all((comparison.map, key) in by_key for key in (comparison.a, comparison.b) if key)


def evaluate_all(results_dir: Path, scale: str, backend: str = "smax",
                 n_seeds: int | None = None, curves=None) -> list[Outcome]:
    curves = curves or load_curves(results_dir, scale, backend, n_seeds)
    outcomes = []
    for comparison in comparisons(scale):
        by_key = curves[comparison.figure]
        if not selected(comparison, by_key):
            continue
        a = by_key[(comparison.map, comparison.a)]
        b = by_key[(comparison.map, comparison.b)] if comparison.b else None
        outcomes.append(evaluate(comparison, a, b, results_dir))
    return with_holm(outcomes)


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
             "verdict | Holm |",
             "|---|---|---|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        c = o.comparison
        lines.append(f"| {i} | {c.finding} | {c.description} | {c.paper} | {report.cell(o.values)} | "
                     f"{o.measured} | **{o.verdict}** | {o.holm} |")
    verdicts = (HOLDS, TRIVIAL, FAILS, INCONCLUSIVE, NO_DATA)
    for name, of in (("Summary", lambda o: o.verdict), ("After Holm's adjustment", lambda o: o.holm)):
        tally = {v: sum(of(o) == v for o in outcomes) for v in verdicts}
        lines += ["", f"{name}: " + ", ".join(f"{n} {v}" for v, n in tally.items())]
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
    parser.add_argument("--readme", default=None, metavar="README.md",
                        help="also write the reproduction report (dm2_repro.report) into this file, between its markers")
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) if the existing report (and --readme's block) differs from the logged "
                             "runs; write nothing")
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
        readme = Path(args.readme) if args.readme else None
        if readme and not readme.is_file():
            raise InputError(f"--readme {args.readme}: no such file")
        if readme and not all(marker in readme.read_text() for marker in (report.START, report.END)):
            raise InputError(f"--readme {args.readme}: lacks the reproduction report's markers (lines "
                             f"{report.START!r} and {report.END!r})")
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
        outcomes = evaluate_all(results_dir, scale, args.backend, args.seeds, curves)
        aggregates = aggregate_all(curves, scale)
        metric = metric_of(fig3.MAP, scale)
        effects = (factorial(curves["fig3"], metric, equivalence_margin(fig3.MAP, metric, scale))
                   if has_fig3_cells(curves) else None)
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
        beyond = load_curves(results_dir, scale, args.backend, args.seeds, figures=list(report.BEYOND), runs=runs,
                             **selection)
        extra = report_extras(curves, scale, results_dir, effects)
        readme_text = report.replace_block(readme.read_text(), report.block(outcomes, {**curves, **beyond}, scale, extra),
                                           str(readme))
    if args.check:
        stale = [path for path, new in ((out, text), (readme, readme_text))
                 if path and (not path.exists() or path.read_text() != new)]
        for path in stale:
            print(f"\n{path} is stale or missing: regenerate it with python -m dm2_repro.claims"
                  + (f" --readme {args.readme}" if args.readme else ""), file=sys.stderr)
        if stale:
            return 1
        print(f"\n{out}{' and ' + str(readme) if readme else ''} agree with the logged runs")
        return 0
    atomic_write_text(out, text)
    print(f"\nwrote {out}")
    if readme:
        atomic_write_text(readme, readme_text)
        print(f"wrote the reproduction report into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
