"""Figure 3: the demonstration ablation on 5m_vs_6m.

Four demonstration styles (co-trained or independent experts x concurrently sampled or not), with
a lower-quality (left panel) and a higher-quality (right panel) IPPO expert snapshot. Co-trained +
concurrent is DM² itself. Curve keys are "<quality>_<style>", e.g. `--curves 'early_*'` runs the
left panel.
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)

MAP = "5m_vs_6m"

STYLE_LABELS = {
    "co_concurrent": "Co-trained, concurrent (DM²)",
    "co_nonconcurrent": "Co-trained, non-concurrent",
    "indep_concurrent": "Independent, concurrent",
    "indep_nonconcurrent": "Independent, non-concurrent",
}


def build(context: Context) -> list[Curve]:
    curves = []
    for level in ("early", "late"):
        step = context.demo_step(MAP, level)
        panel = f"IPPO demo, {format_steps(step)}"
        for style, label in STYLE_LABELS.items():
            curves.append(context.curve(
                "fig3", panel, f"{level}_{style}", label, "dm2", MAP,
                lambda seed, s=step, st=style: context.ippo_demo(MAP, seed, s, st),
                color=style))  # a style keeps its colour in both panels
    return curves


FIGURE = FigureDef(name="fig3", title="Demonstration ablation on 5m_vs_6m", build=build,
                   gail_reward=PAPER_FIGURES_GAIL_REWARD,
                   paper_rate=PAPER_FIGURES_PAPER_RATE)


if __name__ == "__main__":   # python experiments/fig3.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig3")
