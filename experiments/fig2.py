"""Figure 2: DM² against IPPO, RMAPPO, QMIX and SIL on 5m_vs_6m, 3s_vs_4z and 3s_vs_3z.

DM² learns from IPPO demonstrations of two qualities (an early and a later expert snapshot) and
from epsilon-greedy QMIX demonstrations; the demonstrations' win rates are the dotted lines.
Figure 4 is the same comparison on two more maps (`comparison_curves`).
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)


def comparison_curves(figure: str, maps: tuple[str, ...], context: Context) -> list[Curve]:
    curves = []
    for map_name in maps:
        def curve(key, label, algo, demo=None):
            return context.curve(figure, map_name, key, label, algo, map_name, demo)

        for level in ("early", "late"):
            step = context.demo_step(map_name, level)
            curves.append(curve(f"dm2_ippo_{level}", f"DM² (IPPO demo, {format_steps(step)})", "dm2",
                                lambda seed, m=map_name, s=step: context.ippo_demo(m, seed, s)))
        curves.append(curve("dm2_qmix", "DM² (QMIX demo)", "dm2",
                            lambda _seed, m=map_name: context.qmix_demo(m)))
        curves.append(curve("ippo", "IPPO", "ippo"))
        curves.append(curve("rmappo", "RMAPPO", "rmappo"))
        curves.append(curve("qmix", "QMIX", "qmix"))
        curves.append(curve("sil", "SIL", "sil"))
    return curves


MAPS = ("5m_vs_6m", "3s_vs_4z", "3s_vs_3z")

FIGURE = FigureDef(
    name="fig2",
    title="DM² compared to IPPO, RMAPPO and QMIX",
    build=lambda context: comparison_curves("fig2", MAPS, context),
    gail_reward=PAPER_FIGURES_GAIL_REWARD,
    paper_rate=PAPER_FIGURES_PAPER_RATE,
)


if __name__ == "__main__":   # python experiments/fig2.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig2")
