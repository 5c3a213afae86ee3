"""The GAIL diagnostics figure (python -m dm2_repro.figure gail_diagnostics).

`gail_diagnostics` is not a figure definition: it reads the runs of every DM²-family curve
(algorithms in DM2_FAMILY) of every figure definition, each distinct curve once, and draws per map
(a) the discriminators' accuracy on expert and on agent steps and (b) |c r_gail| / |r_env|, both as
logged once per update (mean over agents; the per-agent `NAME/k` metrics where a run has them,
else the agent-averaged `NAME`), averaged per seed within bins of the preset's evaluation interval
(a row's step is the bin's end), then mean and band over seeds. Its CSV has the same columns; kind
is the metric (disc_expert_acc, disc_agent_acc, gail_env_ratio). Runs that predate a metric add
no rows of it; with no such run at all the figure says so. The accuracies of the runs that counted the absorbing
row (accuracy_counts_absorbing) are left out, and the figure's report names those curves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dm2_repro.config import make_hp
from dm2_repro.figures import plotting
from dm2_repro.figures.tables import SEED_COLUMNS, seed_rows, seeds_frame, summary
from dm2_repro.results.runs import CurveRuns, align_seeds, curve_runs, demo_episode_length, detect_scale, load_runs
from dm2_repro.sweeps.plan import FIGURES, Curve, expand


GAIL_DIAGNOSTICS = "gail_diagnostics"
DM2_FAMILY = ("dm2", "dm2_state_action", "gail_only", "sil", "bc_dm2")   # learners with a GAIL term
GAIL_METRICS = ("disc_expert_acc", "disc_agent_acc", "gail_env_ratio")
# the incentive to end games (the GAIL-reward issue): the greedy test episode length beside the mean length of
# the demonstrations the curve imitates (an imitator should end games as often as its demonstrators)
LENGTH_METRIC, DEMO_LENGTH_KIND = plotting.LENGTH_KIND, plotting.DEMO_LENGTH_KIND
# The discriminator accuracies of runs with the absorbing reward made at these commits counted the absorbing row (the
# zero observation, ~80% of each data set's weight on 5m_vs_6m) as a step: whichever side z_k(0) fell on, one
# accuracy was pinned near that share (expert 0.14-0.36, agent 0.68-0.97 on 5m_vs_6m). 25c1189 takes them over real
# steps only; the campaign of reward_forms' and departures' absorbing arms (runs 347-410) ran at 8ec5814, before it.
# Their accuracy rows are left out (their other diagnostics are unaffected). Their sum still gives the real-step
# balanced accuracy, (E + A - a) / (2 (1 - a)) for absorbing share a, which the sign of z_k(0) cancels from.
ABSORBING_ROW_ACCURACY_COMMITS = ("8ec5814bd327e4820d01b5f8effbc9eb0dd27f1c",)
ACCURACY_METRICS = ("disc_expert_acc", "disc_agent_acc")


def accuracy_counts_absorbing(run) -> bool:
    """Whether a run's logged discriminator accuracies counted the absorbing row (ABSORBING_ROW_ACCURACY_COMMITS)."""
    return run.config.get("gail_reward") == "absorbing" and run.git_commit in ABSORBING_ROW_ACCURACY_COMMITS


def accuracy_note(c: CurveRuns) -> str:
    """The accuracy legend's note on a curve whose runs' accuracies are (partly) left out, else ""."""
    left_out = sum(accuracy_counts_absorbing(run) for run in c.runs.values())
    if not left_out:
        return ""
    return plotting.ACCURACY_LEFT_OUT if left_out == len(c.runs) else f" {plotting.ACCURACY_LEFT_OUT.strip()}{left_out}/{len(c.runs)}"


# runs before 2026-12-04 divided by max(mean |r_env|, 1e-12), so an update without any env reward logged
# ~1e10-1e12 instead of inf; no real ratio of the two reward terms comes near this
UNDEFINED_RATIO = 1e9


def undefined_ratios(series: pd.Series) -> pd.Series:
    """gail_env_ratio values of updates without any env reward (inf, or >= UNDEFINED_RATIO as older
    runs logged them) as inf."""
    return series.where(series.abs() < UNDEFINED_RATIO, np.inf)


def undefined_share(runs) -> float:
    """Of all (run, agent, update) gail_env_ratio values of these runs, the share that is undefined."""
    values = [undefined_ratios(run.metric(key)).to_numpy(dtype=float) for run in runs
              for key in run.metrics if key.startswith("gail_env_ratio/")]
    values = np.concatenate(values) if values else np.empty(0)
    return float(np.isinf(values).mean()) if values.size else 0.0


def agent_mean(run, name: str) -> pd.Series:
    """A per-update metric averaged over agents, by env step, finite values only: the mean of the
    per-agent `name/k` series where the run logged them, else the run's agent-averaged `name`.
    gail_env_ratio: an agent's undefined ratios (no env reward in that update) are left out."""
    prefix = f"{name}/"
    per_agent = sorted((key for key in run.metrics
                        if key.startswith(prefix) and key[len(prefix):].isdigit()),
                       key=lambda key: int(key[len(prefix):]))
    clean = undefined_ratios if name == "gail_env_ratio" else (lambda s: s)
    if per_agent:
        frame = pd.concat([clean(run.metric(key)) for key in per_agent], axis=1)
        series = frame.replace([np.inf, -np.inf], np.nan).mean(axis=1, skipna=True)
    else:
        series = clean(run.metric(name))
    series = series[np.isfinite(series.to_numpy(dtype=float))]
    series.index.name = "step"
    return series


def binned(series: pd.Series, width: int) -> pd.Series:
    """Mean of the values within each bin (k-1)*width < step <= k*width, indexed by k*width."""
    if series.empty:
        return series
    ends = (np.ceil(np.asarray(series.index, dtype=float) / width) * width).astype(np.int64)
    out = series.groupby(ends).mean()
    out.index.name = "step"
    return out


def diagnostics_label(curve: Curve) -> str:
    """The curve's legend name, with what its figure's panel said besides the map (fig3's
    demonstration quality, fig5's "(IPPO demo, 100k)"): diagnostics panels are maps."""
    extra = curve.panel.removeprefix(curve.map).strip().removeprefix("(").removesuffix(")")
    return f"{curve.label} ({extra})" if extra and extra not in curve.label else curve.label


def gail_family_curves(scale: str, n_seeds: int | None, backend: str, hp: tuple, maps=None,
                       curves=None) -> list[tuple[str, Curve]]:
    """Every distinct DM²-family curve of the figure definitions (one per set of jobs; the first
    figure naming it gives the label), with a label unique within its map."""
    found: dict[tuple, tuple[str, Curve]] = {}
    used: set[tuple[str, str]] = set()
    for name in FIGURES:
        for curve in expand(name, scale, n_seeds, maps, curves, backend=backend, hp=hp).curves:
            if curve.jobs[0].algo not in DM2_FAMILY or curve.jobs in found:
                continue
            label = diagnostics_label(curve)
            for candidate in (label, f"{label} [{name}]", f"{label} [{name}: {curve.key}]"):
                if (curve.map, candidate) not in used:
                    label = candidate
                    break
            used.add((curve.map, label))
            found[curve.jobs] = (label, curve)
    return list(found.values())


@dataclass
class DiagnosticsData:
    """What gail_diagnostics plots: like FigureData, a table in the figures' CSV format."""
    name: str
    title: str
    scale: str
    band: str
    panels: list[str]                      # maps with any diagnostics rows
    entries: list[tuple[str, CurveRuns]]   # (label, runs) of the curves with runs
    table: pd.DataFrame
    damaged: list = field(default_factory=list)   # (run dir, reason) of the runs that cannot be read
    seeds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SEED_COLUMNS))
    undefined: dict = field(default_factory=dict)  # (map, label) -> share of undefined ratios, where > 0

    def rows(self, label: str, c: CurveRuns) -> pd.DataFrame:
        """A curve's rows (labels are unique within a map only)."""
        return self.table[(self.table["panel"] == c.curve.map) & (self.table["curve"] == label)]

    def legend(self) -> list[plotting.LegendEntry]:
        """The curves with rows; partial ones say how many of their seeds have runs."""
        entries = []
        for label, c in self.entries:
            seeds = self.rows(label, c)["n_seeds"]
            if seeds.empty:
                continue
            n, expected = int(seeds.max()), c.n_expected
            partial = f" (n={n}/{expected})" if n < expected else ""
            share = self.undefined.get((c.curve.map, label), 0.0)
            note = f" [no r_env: {100 * share:.0f}% of updates left out]" if share else ""
            entries.append(plotting.LegendEntry(c.curve.map, label, label + partial,
                                                f"{c.curve.figure}:{c.curve.key}", ratio_note=note,
                                                accuracy_note=accuracy_note(c)))
        return entries

    def draw(self) -> plotting.plt.Figure:
        return plotting.draw_gail_diagnostics(self.table, self.panels, self.legend(), self.band,
                                              f"{self.name}: {self.title} [{self.scale}]")

    def report(self) -> None:
        if not self.panels:
            print(f"{self.name}: {plotting.NO_GAIL_RUNS} ({len(self.entries)} DM²-family curves "
                  f"with runs at scale {self.scale})")
            return
        left_out = [f"{c.curve.map} / {label}" for label, c in self.entries if accuracy_note(c)]
        if left_out:
            print(f"{self.name}: accuracies left out (logged with the absorbing row, code before 25c1189) of: "
                  f"{'; '.join(left_out)}")
        without_ratio = [f"{c.curve.map} / {label}" for label, c in self.entries
                         if not (self.rows(label, c)["kind"] == "gail_env_ratio").any()]
        if without_ratio:
            print(f"{self.name}: no gail_env_ratio logged by the runs of: {'; '.join(without_ratio)}")
        for (map_name, label), share in self.undefined.items():
            print(f"{self.name}: {map_name} / {label}: {100 * share:.1f}% of its (agent, update) ratios are "
                  f"undefined (no env reward in the update) and left out")


def episode_length_rows(label: str, c: CurveRuns, width: int, results_dir: Path) -> list[pd.DataFrame]:
    """A curve's greedy test episode length per seed (kind LENGTH_METRIC) and the mean episode length of
    each seed's demonstrations (kind DEMO_LENGTH_KIND, one row without a step: a horizontal line) where
    recorded (results.demo_episode_length)."""
    head = {"figure": GAIL_DIAGNOSTICS, "panel": c.curve.map, "curve": label}
    parts = []
    aligned = align_seeds({seed: binned(run.metric(LENGTH_METRIC), width) for seed, run in c.runs.items()
                           if LENGTH_METRIC in run.metrics})
    if not aligned.empty:
        parts.append(seed_rows({**head, "kind": LENGTH_METRIC}, aligned))
    lengths = {job.seed: demo_episode_length(job.demo, c.runs[job.seed], results_dir)
               for job in c.curve.jobs if job.demo and job.seed in c.runs}
    lengths = {seed: v for seed, v in lengths.items() if v is not None}
    if lengths:
        parts.append(seed_rows({**head, "kind": DEMO_LENGTH_KIND}, pd.DataFrame([lengths], index=[np.nan])))
    return parts


def compute_gail_diagnostics(results_dir: Path, band: str = "se", scale: str = "auto",
                             n_seeds: int | None = None, backend: str = "smax",
                             hp: tuple = (), maps=None, curves=None) -> DiagnosticsData:
    runs = load_runs(results_dir)
    if scale == "auto":
        scale = detect_scale(FIGURES, runs, backend, n_seeds, hp=hp, maps=maps, curves=curves)
    found = gail_family_curves(scale, n_seeds, backend, hp, maps, curves)
    by_curve = curve_runs([curve for _, curve in found], runs)
    entries = [(label, c) for (label, _), c in zip(found, by_curve) if c.runs]
    parts = []
    for label, c in entries:
        job = c.curve.jobs[0]
        width = make_hp(job.algo, job.map, job.scale, dict(job.hp)).eval_every
        for metric in GAIL_METRICS:
            aligned = align_seeds({seed: binned(agent_mean(run, metric), width) for seed, run in c.runs.items()
                                   if not (metric in ACCURACY_METRICS and accuracy_counts_absorbing(run))})
            if aligned.empty:
                continue
            parts.append(seed_rows({"figure": GAIL_DIAGNOSTICS, "panel": c.curve.map,
                                    "curve": label, "kind": metric}, aligned))
        parts += episode_length_rows(label, c, width, results_dir)
    seeds = seeds_frame(parts)
    table = summary(seeds, band)
    panels = list(dict.fromkeys(table["panel"]))
    shares = {(c.curve.map, label): undefined_share(c.runs.values()) for label, c in entries}
    title = "GAIL discriminator accuracy, reward scale and episode length of the DM²-family runs"
    return DiagnosticsData(GAIL_DIAGNOSTICS, title, scale, band, panels, entries, table,
                           list(runs.damaged), seeds, {k: v for k, v in shares.items() if v > 0})
