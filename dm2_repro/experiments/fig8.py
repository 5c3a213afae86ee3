"""Figure 8 (Appendix C): QMIX with its own agent network (one fully connected layer before the
GRU) against QMIX with the IPPO agent network (two), on 5m_vs_6m."""
from __future__ import annotations

from dm2_repro.experiments import Context, Curve, FigureDef

MAP = "5m_vs_6m"


def build(context: Context) -> list[Curve]:
    return [context.curve("fig8", MAP, "qmix", "QMIX", "qmix", MAP),
            context.curve("fig8", MAP, "qmix_ippo_arch", "QMIX (IPPO agent architecture)",
                          "qmix_ippo_arch", MAP)]


FIGURE = FigureDef(name="fig8", title="QMIX's sensitivity to the agent architecture", build=build)
