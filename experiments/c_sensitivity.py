"""Beyond the paper: DM²'s sensitivity to the GAIL reward coefficient c (r_mix = r_env + c r_GAIL).

DM² on 3s_vs_3z over c in {0.1, 0.3, 1, 3} (Table 2's value for 3s_vs_3z is 0.3), each with the
"late" IPPO demonstrations of Figure 2 (the same demonstration jobs, so no extra experts or demos),
and IPPO on the environment reward alone for reference. Curve keys are "dm2_c<c>" (dm2_c0.1,
dm2_c0.3, dm2_c1, dm2_c3) and "ippo". The c that equals the preset's value carries no override,
so that curve is Figure 2's DM² (IPPO demo, late) curve and shares its runs.

    python -m dm2_repro.run c_sensitivity --scale cpu
    python -m dm2_repro.figure c_sensitivity
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import (PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, Context, Curve, FigureDef,
                                   format_steps)
from dm2_repro.config import make_hp

MAP = "3s_vs_3z"
GAIL_COEFS = (0.1, 0.3, 1.0, 3.0)


def build(context: Context) -> list[Curve]:
    step = context.demo_step(MAP, "late")
    panel = f"{MAP} (IPPO demo, {format_steps(step)})"
    default = make_hp("dm2", MAP, context.scale).gail_coef

    def demo(seed):
        return context.ippo_demo(MAP, seed, step)

    curves = []
    for c in GAIL_COEFS:
        label = f"DM², c={c:g}" + (" (paper)" if c == default else "")
        curves.append(context.curve("c_sensitivity", panel, f"dm2_c{c:g}", label, "dm2", MAP,
                                    demo, hp={"gail_coef": c}))
    curves.append(context.curve("c_sensitivity", panel, "ippo", "IPPO", "ippo", MAP))
    return curves


FIGURE = FigureDef(name="c_sensitivity",
                   title="DM² over the GAIL reward coefficient c (beyond the paper)", build=build,
                   gail_reward=PAPER_FIGURES_GAIL_REWARD,
                   paper_rate=PAPER_FIGURES_PAPER_RATE)


if __name__ == "__main__":   # python experiments/c_sensitivity.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("c_sensitivity")
