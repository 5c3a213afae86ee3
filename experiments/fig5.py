"""Figure 5 (Appendix B): IPPO with the mixed reward, with and without BC pretraining.

Both use the early (paper: 5M steps) IPPO demonstrations, whose quality is the dotted line. The
paper does not name the maps of this figure; we use the two maps of Figure 6.
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)

MAPS = ("5m_vs_6m", "3s_vs_4z")


def build(context: Context) -> list[Curve]:
    curves = []
    for map_name in MAPS:
        step = context.demo_step(map_name, "early")
        panel = f"{map_name} (IPPO demo, {format_steps(step)})"

        def demo(seed, m=map_name, s=step):
            return context.ippo_demo(m, seed, s)

        curves.append(context.curve("fig5", panel, "dm2", "DM² (ours)", "dm2", map_name, demo))
        curves.append(context.curve("fig5", panel, "bc_dm2", "BC pretraining + DM²", "bc_dm2",
                                    map_name, demo))
    return curves


FIGURE = FigureDef(name="fig5", title="DM² with and without behavioural-cloning pretraining",
                   build=build,
                   gail_reward=PAPER_FIGURES_GAIL_REWARD,
                   paper_rate=PAPER_FIGURES_PAPER_RATE)


if __name__ == "__main__":   # python experiments/fig5.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig5")
