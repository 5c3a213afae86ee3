"""The paper's findings as comparisons between two curves of a figure definition, with the statistics,
margins and levels declared for them (the declarations: dm2_repro.claims' docstring, docs/figures.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace


from dm2_repro.algos import GAIL_REWARDS
from dm2_repro.config import MAX_RETURN, SECONDARY_RETURN_MAPS
from dm2_repro.envs import metric_of
from dm2_repro.sweeps.plan import EARLY_WINDOW, definition, demo_step, expand, format_steps, quality_sweep


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
                               ("3s_vs_5z", "return"): 0.039, ("8m_vs_9m", "return"): 0.024},
                      # the same rule from the paper_hp pilot's IPPO run over the budget it set (verdicts.budget:
                      # 0.1 x (AUC over [0, 1.3M] 0.560 - 0.000)), committed with PAPER_HP_T_MAX before the panel
                      "paper_hp": {("3s_vs_3z", "win_rate"): 0.056}}
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
    estimate: float | None = None  # the measured difference (A - B, or final / demo - 1); None: no data
    # the same comparison on the runs before the re-run (verdicts.rerun.with_before); None where neither
    # curve was re-run
    before: Outcome | None = None


# ---------------------------------------------------------------------------------------------
# The paper's findings
# ---------------------------------------------------------------------------------------------

# The maps of the figure definitions themselves: a map added to Fig. 2 or 4 is compared too.
COMPARISON_MAPS = {"fig2": fig2.MAPS, "fig4": fig4.MAPS}

# The paper's claims as the report and README number them (docs/report.md, "Why our verdicts differ from the
# paper"): finding -> label. A comparison beyond the paper (its `paper` says so) has none.
CLAIM_LABELS = {
    "DM² learns faster than IPPO": "C1",
    "CTDE (QMIX, RMAPPO) learns faster than DM²": "C2",
    "DM² surpasses its IPPO demonstrations": "C3",
    "Little sensitivity to demonstration quality": "C4",
    "Little sensitivity to demonstration quality beyond a threshold": "C4",
    "Co-trained demonstrations matter": "C5",
    "Concurrent sampling does not matter": "C5",
    "GAIL reward alone is far worse": "C6",
    "The benefit of BC pretraining vanishes": "C7",
    "QMIX is sensitive to its agent architecture": "C8",
}
BEYOND_THE_PAPER = "Beyond the paper"


def claim_label(c: Comparison) -> str:
    """The paper's claim a comparison tests (CLAIM_LABELS), "" beyond the paper."""
    return "" if c.paper.startswith(BEYOND_THE_PAPER) else CLAIM_LABELS[c.finding]


def comparisons(scale: str, hp: tuple = ()) -> list[Comparison]:
    """Every comparison, each of curves of its figure definition (checked: see check_curve_keys); `hp`: the
    overrides the runs were made with (`run --hp`), which can move Figure 7's snapshots."""
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
    sweep = quality_sweep(fig7.MAP, scale, hp)
    late = min(sweep, key=lambda s: abs(s - demo_step(fig7.MAP, scale, "late", hp)))
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
    check_curve_keys(found, scale, hp)
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
                f"{BEYOND_THE_PAPER}: C1 under each form of the GAIL reward", "reward_forms", m, f"dm2_{form}",
                "ippo", GREATER))
            found.append(Comparison(
                f"GAIL-only ({form}) ends games as its demonstrations do",
                f"{BEYOND_THE_PAPER}: an imitator reproduces its demonstrators' episode lengths", "reward_forms", m,
                f"gail_only_{form}", None, DEMO_LENGTH, "final"))
    arms = [c.key for c in expand("departures", scale).curves if c.key.startswith("dm2")]
    for window in (1.0, EARLY_WINDOW):
        for arm in arms:
            found.append(Comparison(
                "DM² learns faster than IPPO", f"{BEYOND_THE_PAPER}: C1 with one departure of the cpu preset undone",
                "departures", departures.MAP, arm, "ippo", GREATER, window=window))
        for arm in arms[1:]:
            found.append(Comparison(
                "The departure does not matter", f"{BEYOND_THE_PAPER}: the arm against the cpu preset's DM²",
                "departures", departures.MAP, arm, "dm2", EQUIVALENT, window=window))
    return found


def check_curve_keys(found: list[Comparison], scale: str, hp: tuple = ()) -> None:
    """Every curve a comparison names is a curve (Curve.key on that map) of its figure definition (made with the
    runs' `hp`): a curve renamed there fails here, naming the comparison, instead of silently dropping out."""
    keys = {figure: {(c.map, c.key) for c in expand(figure, scale, hp=tuple(sorted(dict(hp).items()))).curves}
            for figure in dict.fromkeys(c.figure for c in found)}
    for comparison in found:
        for key in (comparison.a, comparison.b):
            if key is not None and (comparison.map, key) not in keys[comparison.figure]:
                there = sorted(k for m, k in keys[comparison.figure] if m == comparison.map)
                raise ValueError(f"claim {comparison.description!r}: {comparison.figure} has no curve "
                                 f"{key!r} on {comparison.map} (its curves there: {', '.join(there)})")
