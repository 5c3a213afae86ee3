"""figures/theory.{png,pdf,csv} from results/theory/*.csv (written by experiments.run_all)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# panel name -> (title, x label, y label, x scale, y scale); scales: "linear", "log", "symlog", "category"
PANEL_STYLE = {
    "convergence": ("(a) convergence to the joint expert", "single-agent update", "gap to maximum (K = max)",
                    "linear", "log"),
    "monotonicity": ("(b) does L increase at every update?", "single-agent update",
                     "fraction of starts with >= 1 drop so far", "linear", "linear"),
    "incompatible": ("(c) four-tile gridworld demonstrations", "single-agent update",
                     "mismatch  $\\sum_i$ JS($\\rho_i$, $\\rho_{E_i}$)", "linear", "log"),
    "cotrained": ("(d) co-trained vs different-seed experts", "single-agent update", "task return / optimum",
                  "linear", "linear"),
    "theorem3": ("(e) Theorem 3: best-response gain", "$\\lambda$ in $R_T + \\lambda R_{I,i}$",
                 "gain (normalised return)", "symlog", "symlog"),
    "condition1": ("(f) Condition 1: slip probability", "slip (0 = deterministic, $\\epsilon$ = 0)",
                   "final value (mean over starts)", "category", "log"),
}


def load_curves(results_dir: str) -> pd.DataFrame:
    frames = []
    for panel in PANEL_STYLE:
        df = pd.read_csv(os.path.join(results_dir, f"{panel}.csv"))
        df.insert(0, "panel", panel)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "figure", "theory")
    return out[["figure", "panel", "curve", "step", "mean", "se", "n_seeds"]]


def _draw_panel(ax, panel: str, df: pd.DataFrame) -> None:
    title, xlabel, ylabel, xscale, yscale = PANEL_STYLE[panel]
    curves = list(dict.fromkeys(df["curve"]))
    cats = sorted(df["step"].unique()) if xscale == "category" else None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, name in enumerate(curves):
        c = df[df["curve"] == name]
        x = np.searchsorted(cats, c["step"]) if cats is not None else c["step"].to_numpy()
        y, se = c["mean"].to_numpy(), c["se"].to_numpy()
        style = dict(color=colors[k % len(colors)], lw=1.4)
        if panel == "theorem3":  # agents 1 and 2 of one case share a colour
            style["color"] = colors[(k // 2) % len(colors)]
            style["ls"] = "-" if name.endswith("agent 1") else "--"
            style["marker"] = "o" if name.endswith("agent 1") else "x"
            style["ms"] = 4
        if "K - L" in name or "L_bar" in name:  # K - J and K - L nearly coincide: tell them apart
            style["ls"] = "--"
        if "lower bound" in name:
            style.update(color="k", ls=":")
        if xscale == "category":
            style["marker"] = "o"
        if yscale == "log":
            y = np.where(y > 0, y, np.nan)  # log axes cannot show exact zeros; the CSV keeps them
        ax.plot(x, y, label=name, **style)
        if np.any(se > 0):
            lo = y - se if yscale != "log" else np.maximum(y - se, y * 0.1)
            ax.fill_between(x, lo, y + se, color=style["color"], alpha=0.2, lw=0)
    if xscale == "category":
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels([f"{v:g}" for v in cats])
    elif xscale == "symlog":
        ax.set_xscale("symlog", linthresh=0.1)
    if yscale == "symlog":
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.axhline(0.0, color="grey", lw=0.6)
    elif yscale == "log":
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")


def make_figure(results_dir: str = "results/theory", out_dir: str = "figures") -> list[str]:
    """Read the experiment CSVs, draw the six panels, write theory.png / .pdf / .csv; return their paths."""
    data = load_curves(results_dir)
    os.makedirs(out_dir, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, panel in zip(axes.ravel(), PANEL_STYLE):
        _draw_panel(ax, panel, data[data["panel"] == panel])
    fig.suptitle("DM² theory on exact tabular Markov games (independent GAIL learners, exact discriminators)",
                 fontsize=11)
    fig.tight_layout()
    paths = [os.path.join(out_dir, f"theory.{ext}") for ext in ("png", "pdf", "csv")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # reproducible bytes
    plt.close(fig)
    data.to_csv(paths[2], index=False)
    return paths
