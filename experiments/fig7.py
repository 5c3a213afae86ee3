"""Figure 7 (Appendix B): sensitivity to demonstration quality.

DM² with demonstrations from every saved snapshot of the IPPO experts (paper: every 1M steps;
presets with more than ten snapshots use ten evenly spaced ones), QMIX as the centralised
reference. The paper does not name the map; we use 5m_vs_6m, the map of
the other ablations. Curve keys are "dm2_ippo_<step>" (e.g. dm2_ippo_5M) and "qmix".

The experts are IPPO runs of their own (tag EXPERT_TAG): the same configuration and seeds as Figure 2's
experts, run again because a sweep needs every snapshot of the expert runs, and the campaign had kept only
the snapshots Figure 2's and 3's demonstrations were taken from (the others went with a machine; a
re-run on another CPU is not the same run bit for bit, so they could not be restored). A separate job
keeps the two sets of experts apart in the job graph and in the demonstration file names (`ippo-fig7`).
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)

MAP = "5m_vs_6m"
EXPERT_TAG = "fig7"


def build(context: Context) -> list[Curve]:
    curves = []
    for step in context.quality_sweep(MAP):
        curves.append(context.curve(
            "fig7", MAP, f"dm2_ippo_{format_steps(step)}", f"DM² (IPPO demo, {format_steps(step)})",
            "dm2", MAP, lambda seed, s=step: context.ippo_demo(MAP, seed, s, expert_tag=EXPERT_TAG)))
    curves.append(context.curve("fig7", MAP, "qmix", "QMIX", "qmix", MAP))
    return curves


FIGURE = FigureDef(name="fig7", title="DM² with demonstrations of every expert snapshot",
                   build=build,
                   gail_reward=PAPER_FIGURES_GAIL_REWARD,
                   paper_rate=PAPER_FIGURES_PAPER_RATE)


if __name__ == "__main__":   # python experiments/fig7.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig7")
