"""One preset's verdicts beside another preset's on the same comparisons: the paper-hyperparameter panel (`paper_hp`,
issue 32) beside the `cpu` preset's verdicts on the same map, so a reader sees whether a verdict changes with the
regime (1024-episode batches, the paper's discriminator and demonstration settings) or stays.

    python -m dm2_repro.claims --scale paper_hp --maps 3s_vs_3z --curves ippo dm2_ippo_early dm2_ippo_late \\
        --out results/claims_paper_hp.md --beside cpu --beside-into README.md

Comparisons are matched on what they compare (figure, map, curves, test, statistic, metric, window), not on the "~"
margin, which each preset declares for itself. Each side keeps its own Holm family: the selected comparisons on the
first preset's side, that preset's whole report on the other (its Holm column as in results/claims.md).
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import SCALE_SETTINGS
from dm2_repro.verdicts.findings import EQUIVALENCE_MARGINS, EQUIVALENT, NO_DATA, Comparison, Outcome

START = ("<!-- presets side by side: made by `python -m dm2_repro.claims ... --beside SCALE --beside-into FILE`; "
         "do not edit by hand -->")
END = "<!-- end of the presets side by side -->"


def comparison_key(c: Comparison) -> tuple:
    """What a comparison compares, the same at every preset (its margin is the preset's own; whether a statistic is
    a map's primary or secondary one may differ between presets, so only the metric counts)."""
    return c.figure, c.map, c.a, c.b, c.test, c.statistic, c.metric, c.window, c.is_paired


def shared_description(c: Comparison) -> str:
    """The comparison's description without its "~" margin (each preset's cell gives its own)."""
    return c.description.replace(f", ±{c.margin:g}", "")


def margin_text(c: Comparison, scale: str) -> str:
    """A "~" comparison's margin at a preset, saying when it is the default rather than one the preset declared."""
    if c.test != EQUIVALENT:
        return ""
    declared = (c.map, c.metric) in EQUIVALENCE_MARGINS.get(scale, {})
    return f"±{c.margin:g}" + ("" if declared else ", the default until this preset declares its own")


def paired(outcomes: list[Outcome], others: list[Outcome]) -> list[tuple[Outcome, Outcome | None]]:
    """Each outcome with the other preset's outcome of the same comparison (None where it has none)."""
    by_key = {comparison_key(o.comparison): o for o in others}
    return [(o, by_key.get(comparison_key(o.comparison))) for o in outcomes]


def verdict_cell(o: Outcome | None, scale: str) -> str:
    """"**verdict** (estimate; after Holm: verdict)" with a "~" comparison's margin, or the verdict alone where there
    is no estimate."""
    if o is None:
        return "— (not compared there)"
    margin = margin_text(o.comparison, scale)
    if o.estimate is None:
        return o.verdict + (f" ({margin})" if margin else "")
    return f"**{o.verdict}** ({o.estimate:+.3f}{'; ' + margin if margin else ''}; after Holm: {o.holm or o.verdict})"


def agreement(o: Outcome, other: Outcome | None) -> str:
    """Whether the two presets reach the same verdict ("—" until both have the data)."""
    if other is None or NO_DATA in (o.verdict, other.verdict):
        return "—"
    return "same" if o.verdict == other.verdict else "**differs**"


def levels(scale: str) -> str:
    """"`scale`: early = 15%, late = 25% of the budget": what dm2_ippo_early / _late mean at a preset."""
    fractions = SCALE_SETTINGS[scale].demo_fractions
    return f"`{scale}`: " + ", ".join(f"{level} = {fraction:.0%}" for level, fraction in fractions.items()) + \
        " of the experts' budget"


def block(outcomes: list[Outcome], others: list[Outcome], scale: str, other_scale: str, command: str) -> str:
    """The table between START and END: one row per comparison of `outcomes` (at `scale`), beside `others`."""
    lines = [START, "",
             f"Each comparison at the `{scale}` preset beside the same comparison at the `{other_scale}` preset: verdict, "
             f"estimate (95% intervals and per-seed values: each preset's claims file) and the verdict after Holm's "
             f"adjustment (`{scale}`: over these comparisons; `{other_scale}`: over its whole report). The "
             f"demonstration levels are each preset's own snapshots ({levels(scale)}; {levels(other_scale)}). Made by "
             f"`{command}`.", "",
             f"| finding | comparison | `{scale}` | `{other_scale}` | verdicts |", "|---|---|---|---|---|"]
    for o, other in paired(outcomes, others):
        lines.append(f"| {o.comparison.finding} | {shared_description(o.comparison)} | {verdict_cell(o, scale)} | "
                     f"{verdict_cell(other, other_scale)} | {agreement(o, other)} |")
    return "\n".join([*lines, "", END])
