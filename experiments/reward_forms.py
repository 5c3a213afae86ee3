"""Beyond the paper: the three forms of the GAIL reward (train's `gail_reward`, docs/dm2.md).

IPPO, DM² and GAIL-only (IPPO on r_gail alone) with each form, on 5m_vs_6m and 3s_vs_4z, learning from the
later IPPO demonstrations of Figure 2 (the same demonstration jobs: no new experts). Curve keys are
"<algo>_<form>" (dm2_absorbing, dm2_paper, dm2_logit, gail_only_absorbing, ...) and "ippo". The `logit`
arm is Figure 6's DM² and GAIL-only with the later demonstrations (the same jobs, so the committed runs).

What it answers: whether the log-odds reward without an absorbing state (`logit`, every committed
DM²-family run before 2026-12-07) pays agents to end games early, and what the form does to DM²
against IPPO. Declared before its runs (commit of 2026-12-07; claims.py reads these):
- DM² vs IPPO: AUC of the map's statistic over the whole budget, per form (as Figure 2's C1);
- GAIL-only's final greedy test episode length (mean of the last 3 evaluations) against the mean
  episode length of its demonstrations, per form: "imitates the length" if the paired interval of
  the difference lies inside +-EPISODE_LENGTH_MARGIN of the demonstrations' mean length.

    python -m dm2_repro.run reward_forms --scale cpu
    python -m dm2_repro.figure reward_forms
"""
from __future__ import annotations

from dm2_repro.algos import GAIL_REWARDS
from dm2_repro.sweeps.plan import Context, Curve, FigureDef, format_steps

MAPS = ("5m_vs_6m", "3s_vs_4z")
ALGOS = {"dm2": ("DM²", "-"), "gail_only": ("GAIL only", "--")}   # one colour per form, a line style per algo
# "imitates its demonstrations' episode length": within +-25% of their mean length (declared before the runs)
EPISODE_LENGTH_MARGIN = 0.25


def build(context: Context) -> list[Curve]:
    curves = []
    for map_name in MAPS:
        step = context.demo_step(map_name, "late")

        def demo(seed, m=map_name, s=step):
            return context.ippo_demo(m, seed, s)

        for algo, (name, linestyle) in ALGOS.items():
            for form in GAIL_REWARDS:
                curves.append(context.curve(
                    "reward_forms", map_name, f"{algo}_{form}", f"{name}, {form} (IPPO demo, {format_steps(step)})",
                    algo, map_name, demo, gail_reward=form, color=f"form_{form}", linestyle=linestyle))
        curves.append(context.curve("reward_forms", map_name, "ippo", "IPPO", "ippo", map_name))
    return curves


FIGURE = FigureDef(name="reward_forms", title="The GAIL reward's form: absorbing, paper (softplus), logit "
                   "(beyond the paper)", build=build)


if __name__ == "__main__":   # python experiments/reward_forms.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("reward_forms")
