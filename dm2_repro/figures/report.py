"""The reproduction report: for each figure of the paper, the paper's statements, our figure, the runs
behind each curve, every comparison's per-seed values, interval and verdict, and what differs from the
paper's setting. Made from the claims' outcomes (dm2_repro.claims), so its numbers are the logged
runs' numbers; written into docs/report.md between two markers, and a table of the claims at a glance into
README.md between two others:

    python -m dm2_repro.claims --readme docs/report.md --summary README.md          # rewrites both blocks
    python -m dm2_repro.claims --check --readme docs/report.md --summary README.md  # CI: fails if one is stale

Reference: docs/figures.md.
"""
from __future__ import annotations

import unicodedata

from dm2_repro.config import MAX_RETURN, make_hp, paper_tables
from dm2_repro.results.curves import common_range, format_values, seed_values
from dm2_repro.envs import metric_of
from dm2_repro.sweeps.plan import figure_def, paper_rate_gail_epochs
from dm2_repro.verdicts.findings import BEYOND_THE_PAPER, NO_DATA, claim_label
from dm2_repro.verdicts.rerun import before_text, changed

START = "<!-- reproduction report: made by `python -m dm2_repro.claims --readme docs/report.md`; do not edit by hand -->"
END = "<!-- end of the reproduction report -->"
# The paper's figures in the order the paper discusses them (main text, then the appendices).
ORDER = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "reward_forms", "departures")
BEYOND = ("c_sensitivity",)   # figures beyond the paper: their curves' values, no verdicts
DOTTED_LINES = ("Dotted lines: the win rate (or return) of the SAMPLED episodes of each curve's demonstrations, the team "
                "DM² imitates (json `demo_win_rate`, `demo_return_mean`). The figure's CSV also holds the GREEDY win "
                "rate (or return) of the source team (kind `demo_greedy`; json `quality`, `quality_return`), the "
                "paper's demonstration quality, which the \"above its demonstrations\" findings use as declared.")
PAPER_ALGO = "ippo"   # the budget quoted per map is the one of this learner (every curve shares it)


def section_heading(name: str) -> str:
    """The report's heading of a figure's section (the summary table links to it by its anchor)."""
    return f"{name}: {figure_def(name).title}"


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case; letters, marks, decimal and letter digits, connector
    punctuation ('_'), spaces and '-' kept (so "DM²" becomes "dm", "a & b" "a--b"); spaces become '-'."""
    kept = (ch for ch in heading.lower()
            if ch in " -" or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) in ("Nd", "Nl", "Pc"))
    return "".join(kept).replace(" ", "-")


def _steps(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def setting_line(maps: list[str], scale: str, paper_rate: bool = False, hp: tuple = ()) -> str:
    """What differs from the paper's setting on these maps at this scale (budgets, statistic); `paper_rate`: the
    figure's DM²-family jobs take the paper's discriminator steps per collected episode (FigureDef.paper_rate);
    `hp`: the overrides the runs were made with (`--hp`, e.g. a shorter t_max)."""
    paper = paper_tables()["maps"]
    parts = []
    overrides = dict(hp)
    for m in maps:
        hp = make_hp(PAPER_ALGO, m, scale, overrides)
        statistic = "win rate" if metric_of(m, scale) == "win_rate" else f"test return / {MAX_RETURN:g}"
        budget = f"{_steps(hp.t_max)} steps (paper {_steps(int(paper[m]['t_max']))})" if m in paper \
            else f"{_steps(hp.t_max)} steps"
        parts.append(f"{m}: {budget}, {hp.test_episodes} test episodes, statistic {statistic}")
    return "; ".join(parts) + batch_line(maps[0], scale, paper_rate) if maps else ""


def batch_line(map_name: str, scale: str, paper_rate: bool = False) -> str:
    """The batch sizes of this scale against the paper preset's (the same on every map; the whole
    list: config.DEPARTURES)."""
    if scale == "paper":
        return ""
    ours, paper = make_hp("dm2", map_name, scale), make_hp("dm2", map_name, "paper")
    steps = (f"{paper_rate_gail_epochs(scale, map_name)} discriminator steps per update, the paper's per collected "
             f"episode" if paper_rate else f"{ours.gail_epochs} discriminator steps per update")
    return (f"; {ours.buffer_episodes}-episode PPO batches (paper {paper.buffer_episodes}), "
            f"{steps} (paper {paper.gail_epochs} per {paper.buffer_episodes}), "
            f"{ours.demo_episodes} demonstration episodes per agent (paper {paper.demo_episodes})")


def runs_table(curves: dict) -> list[str]:
    """Seeds with a COMPLETED run, per curve (rows) and panel (columns: a map, or fig3's demonstration
    quality, where one map has two panels with the same curve names)."""
    panels = list(dict.fromkeys(c.curve.panel for c in curves.values()))
    labels = list(dict.fromkeys(c.curve.label for c in curves.values()))
    cells = {(c.curve.label, c.curve.panel): f"{len(c.runs)}/{c.n_expected}" for c in curves.values()}
    lines = ["| curve | " + " | ".join(panels) + " |", "|---" * (len(panels) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells.get((label, p), "—") for p in panels) + " |" for label in labels]
    return lines


def figure_section(name: str, outcomes: list, curves: dict, scale: str, extra: list[str] = (),
                   figures: str = "figures", hp: tuple = ()) -> list[str]:
    """One figure's section; `extra`: lines the claims made for it (Figure 3's 2x2, Figure 7's saturation),
    shown where the figure has runs."""
    fig = figure_def(name)
    mine = [o for o in outcomes if o.comparison.figure == name]
    maps = list(dict.fromkeys(m for m, _ in curves))
    lines = [f"### {section_heading(name)}", ""]
    statements = list(dict.fromkeys(o.comparison.paper for o in mine))
    lines += [f"Paper: {'; '.join(statements)}." if statements else "Paper: no comparison is drawn from it.", "",
              f"![{name}]({figures}/{name}.png)", ""]
    if any(c.curve.demos for c in curves.values()):
        lines += [DOTTED_LINES, ""]
    lines += ["Runs (seeds with a completed run):", "", *runs_table(curves), ""]
    if not any(c.runs for c in curves.values()):
        lines += ["No runs yet: every comparison is \"not enough data\".", ""]
    else:
        with_runs = [o for o in mine if any(o.run_ids.values())]
        lines += ["| comparison | per-seed values (seed order) | measured (95%) | verdict | Holm | before the re-run |",
                  "|---|---|---|---|---|---|"]
        for o in with_runs:
            lines.append(f"| {o.comparison.description} | {cell(o.values)} | {cell(o.measured)} | **{o.verdict}** | "
                         f"{o.holm} | {before_text(o)} |")
        idle = [o for o in mine if o not in with_runs]
        if idle:
            idle_maps = ", ".join(dict.fromkeys(o.comparison.map for o in idle))
            lines += ["", f"{len(idle)} more comparisons ({idle_maps}) have no runs on either side yet."]
        lines.append("")
    if extra and any(c.runs for c in curves.values()):
        lines += list(extra)
    lines += [f"Setting here: SMAX, the `{scale}` preset; {setting_line(maps, scale, fig.paper_rate, hp)}.", ""]
    return lines


def mean_aucs(curves: dict, scale: str) -> dict:
    """(map, key) -> (per-seed AUCs, their mean or None) of each curve, on the step range every curve's runs cover."""
    span = common_range([c for c in curves.values() if c.runs])
    found = {}
    for (m, key), c in curves.items():
        auc = seed_values(c, "auc", *span, c.curve.metric or metric_of(m, scale)) if span and c.runs else {}
        found[(m, key)] = (auc, sum(auc.values()) / len(auc) if auc else None)
    return found


def values_section(name: str, curves: dict, scale: str, figures: str = "figures", before: dict | None = None,
                   hp: tuple = (), extra: list[str] = ()) -> list[str]:
    """A figure beyond the paper (no claim to judge): each curve's per-seed AUC and final value; `before`: the
    figure's curves on the runs before the re-run (their mean AUC beside); `extra`: lines the claims made for it
    (its end-of-training behaviour table), shown where it has runs."""
    fig = figure_def(name)
    maps = list(dict.fromkeys(m for m, _ in curves))
    lines = [f"### {section_heading(name)}", "", f"![{name}]({figures}/{name}.png)", ""]
    span = common_range([c for c in curves.values() if c.runs])
    now = mean_aucs(curves, scale)
    earlier = mean_aucs(before, scale) if before else {}
    lines += ["| curve | seeds | AUC per seed (seed order) | mean AUC | final per seed |"
              + (" mean AUC before the re-run |" if earlier else ""), "|---|---|---|---|---|" + ("---|" if earlier else "")]
    for (m, key), c in curves.items():
        auc, mean = now[(m, key)]
        final = seed_values(c, "final", *span, c.curve.metric or metric_of(m, scale)) if span and c.runs else {}
        rerun = bool(before) and before[(m, key)].curve.jobs != c.curve.jobs
        old = earlier.get((m, key), ({}, None))[1]
        old = ("—" if old is None else f"{old:.3f}") if rerun else "not re-run"
        lines.append(f"| {c.curve.label} | {len(c.runs)}/{c.n_expected} | {format_values(auc.values())} | "
                     f"{'—' if mean is None else f'{mean:.3f}'} | {format_values(final.values())} |"
                     + (f" {old} |" if earlier else ""))
    lines.append("")
    if extra and any(c.runs for c in curves.values()):
        lines += list(extra)
    lines += [f"Setting here: SMAX, the `{scale}` preset; {setting_line(maps, scale, fig.paper_rate, hp)}.", ""]
    return lines


def cell(text: str) -> str:
    """Text for a Markdown table cell (its pipes escaped)."""
    return text.replace("|", "\\|")


def rerun_section(outcomes: list) -> list[str]:
    """What the re-run of the DM²-family curves changed: every comparison whose verdict moved (verdicts.rerun), and how
    many kept theirs, among those with data before and after it."""
    compared = [o for o in outcomes if changed(o) is not None]
    moved = [o for o in compared if changed(o)]
    lines = ["### What the re-run changed", "",
             f"Of the {len(compared)} comparisons with data both before the re-run of the DM²-family curves (the log-odds "
             f"GAIL reward, which paid agents to end episodes early, at the preset's own discriminator rate) and after "
             f"it, {len(moved)} changed verdict" + (":" if moved else "."), ""]
    if moved:
        lines += ["| finding | comparison | before the re-run | now |", "|---|---|---|---|"]
        lines += [f"| {cell(o.comparison.finding)} | {cell(o.comparison.description)} | {o.before.verdict} "
                  f"({o.before.estimate:+.3f}) | **{o.verdict}** ({o.estimate:+.3f}) |" for o in moved]
        lines.append("")
    waiting = sum(o.before is not None and o.verdict == NO_DATA and o.before.verdict != NO_DATA for o in outcomes)
    if waiting:
        lines += [f"{waiting} more re-run comparisons have no complete curve of the re-run yet; their verdicts before it "
                  "are in results/claims.md's last column.", ""]
    return lines


def block(outcomes: list, curves: dict, scale: str, extra: dict[str, list[str]] | None = None,
          figures: str = "figures", before: dict | None = None, hp: tuple = ()) -> str:
    """The report between START and END. `curves`: claims.load_curves' figure -> (map, key) -> runs;
    `extra`: figure -> lines the claims made for it (claims.report_extras); `figures`: the figures folder as a
    link from the report's file; `before`: the BEYOND figures' curves before the re-run (their mean AUCs beside)."""
    lines = [START, "", *rerun_section(outcomes)]
    for name in ORDER:
        if name in curves:
            lines += figure_section(name, outcomes, curves[name], scale, (extra or {}).get(name, ()), figures, hp)
    for name in BEYOND:
        if name in curves:
            lines += values_section(name, curves[name], scale, figures, (before or {}).get(name), hp,
                                    (extra or {}).get(name, ()))
    return "\n".join(lines + [END])


# README's table of the claims at a glance (claims --summary README.md): one row per finding and figure
SUMMARY_START = ("<!-- claims at a glance: made by `python -m dm2_repro.claims --summary README.md`; "
                 "do not edit by hand -->")
SUMMARY_END = "<!-- end of the claims at a glance -->"
VERDICT_COLUMNS = ("holds", "does not hold", "inconclusive", "trivially above", "not enough data")


def summary_block(outcomes: list, report_path: str, sections: bool = True) -> str:
    """The claims at a glance: per finding and figure, its maps and how many of its comparisons have each
    verdict (unadjusted, and "holds" after Holm's adjustment), linking to the full report (`sections`: each
    figure to its section there; False where `report_path` is the claims file, which has no such headings)."""
    groups: dict[tuple[str, str], list] = {}
    for o in outcomes:
        groups.setdefault((o.comparison.finding, o.comparison.figure), []).append(o)
    lines = [SUMMARY_START, "",
             f"Comparisons per verdict (95% intervals, 5 seeds a side; the rows, per-seed values and intervals: "
             f"[the reproduction report]({report_path}) and results/claims.md). Changed by the re-run: of the comparisons "
             f"with data both before and after the re-run of the DM²-family curves (before: the log-odds GAIL reward that "
             f"paid agents to end episodes early), how many have another verdict now. Claim: the paper's claim the "
             f"finding tests, numbered as in "
             + (f"[why our verdicts differ from the paper]({report_path}#why-our-verdicts-differ-from-the-paper)"
                if sections else "the reproduction report's \"Why our verdicts differ from the paper\"") + ".", "",
             "| claim | finding | figure: maps | " + " | ".join(VERDICT_COLUMNS) + " | holds after Holm | "
             "changed by the re-run |",
             "|---|---|---|" + "---|" * (len(VERDICT_COLUMNS) + 2)]
    for (finding, figure), group in groups.items():
        maps = ", ".join(dict.fromkeys(o.comparison.map for o in group))
        counts = [sum(o.verdict == v for o in group) for v in VERDICT_COLUMNS]
        holm = sum(o.holm == VERDICT_COLUMNS[0] for o in group)
        moved = [changed(o) for o in group if changed(o) is not None]
        link = f"[{figure}]({report_path}#{anchor(section_heading(figure))})" if sections else figure
        claim = claim_label(group[0].comparison) or BEYOND_THE_PAPER.lower()
        lines.append(f"| {claim} | {cell(finding)} | {link}: {maps} | " + " | ".join(str(n or "") for n in counts)
                     + f" | {holm or ''} | " + (f"{sum(moved)} of {len(moved)}" if moved else "") + " |")
    return "\n".join(lines + ["", SUMMARY_END])


def replace_block(text: str, new_block: str, where: str = "README.md", start_marker: str = START,
                  end_marker: str = END) -> str:
    """`text` with its block between the markers (default: the report's) replaced by `new_block` (ValueError
    if the markers are missing)."""
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"{where}: no markers (a line {start_marker!r}, later a line {end_marker!r}); "
                         "add both where the block goes")
    return text[:start] + new_block + text[end + len(end_marker):]
