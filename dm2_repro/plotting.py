"""Drawing a figure from its table of plotted numbers (see dm2_repro.figure).

The plot is made from the same long table that is written to figures/FIGURE.csv, so the CSV is
exactly what is drawn: mean curves with a band, and demonstration qualities as dashed lines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

WIN_RATE_LIMITS = (-0.05, 1.05)


def _steps_label(value: float, _pos=None) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


@dataclass(frozen=True)
class LegendEntry:
    panel: str
    curve: str       # the curve's name in the table
    text: str        # what the legend says (with n=k/N where seeds are missing)
    color_key: str   # curves with the same key share a colour across panels


def curve_colors(keys: list[str]) -> dict[str, tuple]:
    palette = sns.color_palette("tab10" if len(keys) <= 10 else "husl", len(keys))  # tab10: red and orange stay apart
    return dict(zip(keys, palette))


def draw(table: pd.DataFrame, panels: list[str], legend: list[LegendEntry], band: str,
         title: str) -> plt.Figure:
    """One axes per panel.

    table: rows of kind "curve" (step, mean, band) and "demo_quality" (mean only); curves in the
    legend but not in the table have no data yet and appear in the legend only.
    """
    sns.set_theme(style="whitegrid", context="paper")
    key_colors = curve_colors(list(dict.fromkeys(entry.color_key for entry in legend)))
    colors = {(e.panel, e.curve): key_colors[e.color_key] for e in legend}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        rows = table[table["panel"] == panel]
        handles = []
        for entry in (e for e in legend if e.panel == panel):
            color = colors[(panel, entry.curve)]
            data = rows[(rows["curve"] == entry.curve) & (rows["kind"] == "curve")]
            if len(data):
                ax.plot(data["step"], data["mean"], color=color, linewidth=1.5)
                ax.fill_between(data["step"], data["mean"] - data[band], data["mean"] + data[band],
                                color=color, alpha=0.2, linewidth=0)
            handles.append(Line2D([], [], color=color, label=entry.text))
        for _, demo in rows[rows["kind"] == "demo_quality"].iterrows():
            ax.axhline(demo["mean"], color=colors[(panel, demo["curve"])], linestyle="--",
                       linewidth=1.0)
        if (rows["kind"] == "demo_quality").any():
            handles.append(Line2D([], [], color="grey", linestyle="--",
                                  label="demonstration quality"))
        if not (rows["kind"] == "curve").any():
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center",
                    color="grey", fontsize=12)
        ax.set_title(panel)
        ax.set_ylim(*WIN_RATE_LIMITS)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("test win rate")
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    band_name = "standard error" if band == "se" else "standard deviation"
    fig.suptitle(f"{title}\n(mean over seeds, band: {band_name})", fontsize=10)
    fig.tight_layout()
    return fig
