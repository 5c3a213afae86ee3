"""Figure 7 (Appendix B): sensitivity to demonstration quality.

DM² with demonstrations from every saved snapshot of the IPPO experts (paper: every 1M steps;
presets with more than ten snapshots use ten evenly spaced ones), QMIX as the centralised
reference. The paper does not name the map; we use 5m_vs_6m, the map of
the other ablations. Curve keys are "dm2_ippo_<step>" (e.g. dm2_ippo_5M) and "qmix".
"""
from __future__ import annotations

from dm2_repro.experiments import Context, Curve, FigureDef, format_steps

MAP = "5m_vs_6m"


def build(context: Context) -> list[Curve]:
    curves = []
    for step in context.quality_sweep(MAP):
        curves.append(context.curve(
            "fig7", MAP, f"dm2_ippo_{format_steps(step)}", f"DM² (IPPO demo, {format_steps(step)})",
            "dm2", MAP, lambda seed, s=step: context.ippo_demo(MAP, seed, s)))
    curves.append(context.curve("fig7", MAP, "qmix", "QMIX", "qmix", MAP))
    return curves


FIGURE = FigureDef(name="fig7", title="DM² with demonstrations of every expert snapshot",
                   build=build)
