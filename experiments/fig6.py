"""Figure 6 (Appendix B): IPPO trained on the GAIL reward alone, against IPPO on the environment
reward and DM² (environment + GAIL reward), with both IPPO demonstration qualities."""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)

MAPS = ("5m_vs_6m", "3s_vs_4z")


def build(context: Context) -> list[Curve]:
    curves = []
    for map_name in MAPS:
        for level in ("early", "late"):
            step = context.demo_step(map_name, level)
            suffix = f"(IPPO demo, {format_steps(step)})"

            def demo(seed, m=map_name, s=step):
                return context.ippo_demo(m, seed, s)

            curves.append(context.curve("fig6", map_name, f"dm2_{level}", f"DM² {suffix}", "dm2",
                                        map_name, demo))
            curves.append(context.curve("fig6", map_name, f"gail_only_{level}",
                                        f"GAIL reward only {suffix}", "gail_only", map_name, demo))
        curves.append(context.curve("fig6", map_name, "ippo", "IPPO", "ippo", map_name))
    return curves


FIGURE = FigureDef(name="fig6", title="GAIL reward only against IPPO and DM²", build=build,
                   gail_reward=PAPER_FIGURES_GAIL_REWARD,
                   paper_rate=PAPER_FIGURES_PAPER_RATE)


if __name__ == "__main__":   # python experiments/fig6.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig6")
