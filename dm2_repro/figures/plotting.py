"""Drawing a figure from its table of plotted numbers (see dm2_repro.figure).

The plot is made from the same long table that is written to figures/FIGURE.csv, so the CSV is
exactly what is drawn: mean curves with a band, and demonstration qualities as dotted lines.
`draw_gail_diagnostics` draws the gail_diagnostics table (discriminator accuracies, and
|c r_gail| / |r_env| on a log axis) the same way.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from dm2_repro.sweeps.plan import format_steps  # noqa: E402

WIN_RATE_LIMITS = (-0.05, 1.05)
# TrueType (Type 42) fonts in PDF/PS: journals reject Type 3 fonts, and the text stays editable
FONT_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}
matplotlib.rcParams.update(FONT_RC)


def _steps_label(value: float, _pos=None) -> str:
    """An axis tick in the legends' step format (format_steps); fractional ticks as %g."""
    if not float(value).is_integer():
        return f"{value:g}"
    steps = int(value)
    return ("-" if steps < 0 else "") + format_steps(abs(steps))


@dataclass(frozen=True)
class LegendEntry:
    panel: str
    curve: str       # the curve's name in the table
    text: str        # what the legend says (with n=k/N where seeds are missing)
    color_key: str   # curves with the same key share a colour across panels
    ratio_note: str = ""   # what the GAIL diagnostics' ratio legend adds (updates left out)
    accuracy_note: str = ""   # what the GAIL diagnostics' accuracy legend adds (ACCURACY_LEFT_OUT: runs left out)
    linestyle: str = "-"


SWEEP_KEY = re.compile(r"^(?P<family>.+)_(?P<step>\d+(\.\d+)?[kM]?)$")  # e.g. dm2_ippo_15k: one snapshot of a sweep


def curve_colors(keys: list[str]) -> dict[str, tuple]:
    """A colour per key. Up to ten keys: tab10 (red and orange stay apart). More (Figure 7's snapshot sweep):
    the sweep's keys (`<family>_<step>`) in viridis, ordered as given, so colour reads as position in the
    sweep, and the other keys in tab10's red, orange, ... , which viridis does not contain; a circular
    palette over eleven curves made neighbours and the first and last curve look alike."""
    if len(keys) <= 10:
        return dict(zip(keys, sns.color_palette("tab10", len(keys))))
    sweep = [k for k in keys if SWEEP_KEY.match(k)]
    others = [k for k in keys if k not in sweep]
    if not sweep:
        return dict(zip(keys, sns.color_palette("husl", len(keys))))
    tab10 = sns.color_palette("tab10", 10)
    other_colors = [tab10[i] for i in (3, 1, 5, 6, 7, 0, 2, 4, 8, 9)]  # red, orange, brown, pink, grey, ...
    colors = dict(zip(sweep, sns.color_palette("viridis", len(sweep))))
    if len(others) > len(other_colors):  # more than tab10 holds (the GAIL diagnostics): distinct hues instead
        other_colors = sns.color_palette("husl", len(others))
    colors.update(zip(others, other_colors))
    return colors


MARK_KIND = "mark"   # rows of a vertical line (FigureDef.marks): its step and, in `curve`, what it marks
MARK_STYLES = ("--", "-.", ":")
DRAWN_DEMO_KIND = "demo_sampled"   # the demonstration rows drawn as dotted lines: the team DM² imitates
DEMO_LINE_LABEL = "demonstrations (sampled episodes)"


def draw(table: pd.DataFrame, panels: list[str], legend: list[LegendEntry], band: str,
         title: str, metrics: dict[str, str] | None = None, ncols: int | None = None) -> plt.Figure:
    """One axes per panel.

    table: rows of kind "curve" (step, mean, band) and DRAWN_DEMO_KIND (mean only: a dotted line; rows
    of other kinds are not drawn); curves in the
    legend but not in the table have no data yet and appear in the legend only.
    metrics: panel -> "win_rate" (default) or "return" (the task's metric: free y range).
    ncols: panels per row (default: up to 3).
    """
    sns.set_theme(style="whitegrid", context="paper", rc=FONT_RC)
    key_colors = curve_colors(list(dict.fromkeys(entry.color_key for entry in legend)))
    colors = {(e.panel, e.curve): key_colors[e.color_key] for e in legend}
    ncols = min(ncols or 3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    # a panel is as wide as its two-column legend (7-pt labels are ~0.055 in per character), so the
    # legends of neighbouring panels never overlap
    longest = max((len(e.text) for e in legend), default=0)
    width = max(4.6, 2 * (0.055 * longest + 0.45))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 4.4 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        rows = table[table["panel"] == panel]
        handles = []
        for entry in (e for e in legend if e.panel == panel):
            color = colors[(panel, entry.curve)]
            data = rows[(rows["curve"] == entry.curve) & (rows["kind"] == "curve")]
            if len(data):
                ax.plot(data["step"], data["mean"], color=color, linewidth=1.5, linestyle=entry.linestyle)
                ax.fill_between(data["step"], data["mean"] - data[band], data["mean"] + data[band],
                                color=color, alpha=0.2, linewidth=0)
            handles.append(Line2D([], [], color=color, linestyle=entry.linestyle, label=entry.text))
        for _, demo in rows[rows["kind"] == DRAWN_DEMO_KIND].iterrows():
            ax.axhline(demo["mean"], color=colors[(panel, demo["curve"])], linestyle=":",
                       linewidth=1.6)
        if (rows["kind"] == DRAWN_DEMO_KIND).any():
            handles.append(Line2D([], [], color="grey", linestyle=":", label=DEMO_LINE_LABEL))
        for (_, mark), style in zip(rows[rows["kind"] == MARK_KIND].iterrows(), itertools.cycle(MARK_STYLES)):
            ax.axvline(mark["step"], color="dimgrey", linestyle=style, linewidth=1.2)
            handles.append(Line2D([], [], color="dimgrey", linestyle=style,
                                  label=f"{mark['curve']}: {int(mark['step']):,} steps"))
        if not (rows["kind"] == "curve").any():
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center",
                    color="grey", fontsize=12)
        ax.set_title(panel)
        if (metrics or {}).get(panel, "win_rate") == "win_rate":
            ax.set_ylim(*WIN_RATE_LIMITS)
            ax.set_ylabel("test win rate")
        else:
            ax.set_ylabel("test return")
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.19),
                  ncol=2, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    band_name = "standard error" if band == "se" else "standard deviation"
    fig.suptitle(f"{title}\n(mean over seeds, band: {band_name})", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# GAIL diagnostics (dm2_repro.figure gail_diagnostics)
# ---------------------------------------------------------------------------------------------

NO_GAIL_RUNS = "no runs with GAIL diagnostics yet"
ACCURACY_KINDS = {"disc_expert_acc": ("-", "on expert steps"),
                  "disc_agent_acc": ("--", "on agent steps")}
RATIO_KIND = "gail_env_ratio"
LENGTH_KIND, DEMO_LENGTH_KIND = "test_ep_length_mean", "demo_ep_length"   # diagnostics.py's episode length rows


def _band(ax, data, band, color, linestyle="-", positive=False) -> None:
    mean = data["mean"].to_numpy(dtype=float)
    spread = data[band].to_numpy(dtype=float)
    low, high = mean - spread, mean + spread
    if positive:   # log axis: a band reaching below 0 is cut at 1% of the mean
        low = np.where(low > 0, low, mean / 100)
    ax.plot(data["step"], mean, color=color, linewidth=1.5, linestyle=linestyle)
    ax.fill_between(data["step"], low, high, color=color, alpha=0.15, linewidth=0)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.62, text, transform=ax.transAxes, ha="center", va="center", color="grey",
            fontsize=10, bbox=dict(facecolor="white", edgecolor="none", alpha=0.9))


# the accuracy legend's mark of a curve whose runs' accuracies are left out (diagnostics.accuracy_note: "*" all of
# them, "*k/n" k of its n runs), explained by one more legend line
ACCURACY_LEFT_OUT = " *"
ACCURACY_LEFT_OUT_TEXT = "* accuracy left out: logged with the absorbing row"


def draw_gail_diagnostics(table: pd.DataFrame, panels: list[str], legend: list[LegendEntry],
                          band: str, title: str) -> plt.Figure:
    """Three axes per map (one row each): (a) discriminator accuracy on expert steps (solid) and on
    the agents' own steps (dashed) with the chance line at 0.5, (b) |c r_gail| / |r_env| on a log
    axis with the line where both terms are equally large, (c) the greedy test episode length with the
    mean episode length of the curve's demonstrations (dotted, same colour): an imitator should end games
    as its demonstrators do. One colour per curve of a map. Without any panel the figure is one empty
    row saying NO_GAIL_RUNS."""
    sns.set_theme(style="whitegrid", context="paper", rc=FONT_RC)
    rows_of_panels = panels or [None]
    # each row is as tall as its plots plus its legend (two columns of ~0.14 in per line), so a map with many
    # curves pushes the next row down instead of its legend running into it
    legend_lines = max([math.ceil((sum(e.panel == p for e in legend) + 3) / 2) for p in rows_of_panels])
    fig, axes = plt.subplots(len(rows_of_panels), 3,
                             figsize=(17.0, (3.4 + 0.14 * legend_lines) * len(rows_of_panels) + 0.6),
                             squeeze=False, sharex="row")
    for (ax_acc, ax_ratio, ax_len), panel in zip(axes, rows_of_panels):
        rows = table[table["panel"] == panel] if panel is not None else table.iloc[:0]
        handles, ratio_handles = [], []   # (b) lists only the curves with ratio data
        mine_entries = [e for e in legend if e.panel == panel]
        # colours per map (the maps hold different curves): a map with four curves gets four distinct ones
        key_colors = curve_colors(list(dict.fromkeys(e.color_key for e in mine_entries)))
        for entry in mine_entries:
            color = key_colors[entry.color_key]
            mine = rows[rows["curve"] == entry.curve]
            for kind, (style, _) in ACCURACY_KINDS.items():
                data = mine[mine["kind"] == kind].sort_values("step")
                if len(data):
                    _band(ax_acc, data, band, color, style)
            data = mine[(mine["kind"] == RATIO_KIND) & (mine["mean"] > 0)].sort_values("step")
            if len(data):
                _band(ax_ratio, data, band, color, positive=True)
                ratio_handles.append(Line2D([], [], color=color, label=entry.text + entry.ratio_note))
            data = mine[mine["kind"] == LENGTH_KIND].sort_values("step")
            if len(data):
                _band(ax_len, data, band, color)
            demo = mine[mine["kind"] == DEMO_LENGTH_KIND]
            if len(demo):
                ax_len.axhline(float(demo["mean"].iloc[0]), color=color, linestyle=":", linewidth=1.3)
            handles.append(Line2D([], [], color=color, label=entry.text + entry.accuracy_note))
        has_acc = rows["kind"].isin(list(ACCURACY_KINDS)).any()
        if panel is not None and not (rows["kind"] == LENGTH_KIND).any():
            _note(ax_len, "no test episode lengths yet")
        has_ratio = ((rows["kind"] == RATIO_KIND) & (rows["mean"] > 0)).any()
        ax_acc.axhline(0.5, color="grey", linestyle=":", linewidth=1.0)
        ax_ratio.axhline(1.0, color="grey", linestyle=":", linewidth=1.0)
        ax_ratio.set_yscale("log")
        if panel is None:
            _note(ax_acc, NO_GAIL_RUNS)
            _note(ax_ratio, NO_GAIL_RUNS)
        else:
            if not has_acc:
                _note(ax_acc, "no runs with discriminator accuracies yet")
            if not has_ratio:
                _note(ax_ratio, f"no runs with {RATIO_KIND} yet\n(runs older than the metric)")
        name = panel or "no runs"
        ax_acc.set_title(f"{name}: (a) discriminator accuracy")
        ax_ratio.set_title(f"{name}: (b) |c r_gail| / |r_env|")
        ax_len.set_title(f"{name}: (c) test episode length")
        ax_len.set_ylabel("greedy test episode length (steps)")
        ax_len.set_ylim(bottom=0)
        ax_len.legend(handles=[Line2D([], [], color="grey", linestyle=":",
                                      label="demonstrations' mean episode length (sampled team)")],
                      fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.19), frameon=False)
        ax_acc.set_ylim(*WIN_RATE_LIMITS)
        ax_acc.set_ylabel("discriminator accuracy (mean over agents)")
        ax_ratio.set_ylabel("|c r_gail| / |r_env| (mean over agents, log)")
        for ax in (ax_acc, ax_ratio, ax_len):
            ax.set_xlabel("environment steps")
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        styles = [Line2D([], [], color="black", linestyle=style, label=f"accuracy {text}")
                  for style, text in ACCURACY_KINDS.values()]
        styles.append(Line2D([], [], color="grey", linestyle=":", label="chance (0.5)"))
        if any(e.accuracy_note for e in mine_entries):
            styles.append(Line2D([], [], color="none", label=ACCURACY_LEFT_OUT_TEXT))
        ax_acc.legend(handles=handles + styles, fontsize=7, loc="upper center",
                      bbox_to_anchor=(0.5, -0.19), ncol=2, frameon=False)
        ax_ratio.legend(handles=ratio_handles + [Line2D([], [], color="grey", linestyle=":",
                                                  label="|c r_gail| = |r_env|")],
                        fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.19), ncol=2,
                        frameon=False)
    band_name = "standard error" if band == "se" else "standard deviation"
    fig.suptitle(f"{title}\n(mean over agents and seeds, binned per evaluation interval; "
                 f"band: {band_name} over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))  # the two-line title keeps its half inch
    return fig
