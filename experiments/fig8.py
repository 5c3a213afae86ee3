"""Figure 8 (Appendix C): QMIX with its own agent network (one fully connected layer before the
GRU) against QMIX with the IPPO agent network (two), on 5m_vs_6m."""
from __future__ import annotations

from dm2_repro.sweeps.plan import Context, Curve, FigureDef

MAP = "5m_vs_6m"


def build(context: Context) -> list[Curve]:
    return [context.curve("fig8", MAP, "qmix", "QMIX", "qmix", MAP),
            context.curve("fig8", MAP, "qmix_ippo_arch", "QMIX (IPPO agent architecture)",
                          "qmix_ippo_arch", MAP)]


FIGURE = FigureDef(name="fig8", title="QMIX's sensitivity to the agent architecture", build=build)


if __name__ == "__main__":   # python experiments/fig8.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig8")
