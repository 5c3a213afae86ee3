"""Beyond the paper: the pilot that sets each map's budget at the `paper_hp` preset (`config.PAPER_HP_T_MAX`).

`paper_hp` keeps every per-update setting of the paper (1024-episode PPO batches, 120 discriminator steps of
64 + 64 episodes, 1000 demonstration episodes) and shortens only the budget. At those settings an update
collects ~50-100k env steps, so IPPO may need far fewer than the paper's 10M steps on SMAX's small maps: this
pilot measures how many. IPPO, one seed, each map with a generous `t_max` (PILOT_T_MAX). The budget chosen per
map is the smallest at which IPPO's test win rate has risen and plateaued, read by the rule declared before the
pilot ran (dm2_repro/verdicts/budget.py: `python -m dm2_repro.verdicts.budget`); the pilot's curves and that reasoning
go into README. Curve keys are "ippo"; panels are maps.

    python -m dm2_repro.run paper_hp_pilot            # at its own preset, paper_hp
    python -m dm2_repro.figure paper_hp_pilot
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import Context, Curve, FigureDef
from dm2_repro.verdicts.budget import pilot_marks

# 3s_vs_3z: the panel's map; 3s_vs_4z: if the pilot fits the envelope (the optional second map)
PILOT_T_MAX = {"3s_vs_3z": 4_000_000, "3s_vs_4z": 5_000_000}


def build(context: Context) -> list[Curve]:
    return [context.curve("paper_hp_pilot", m, "ippo", "IPPO", "ippo", m, hp={"t_max": t_max}, metric="win_rate")
            for m, t_max in PILOT_T_MAX.items()]


FIGURE = FigureDef(name="paper_hp_pilot", title="Budget pilot at the paper's per-update settings: IPPO, one seed",
                   build=build, n_seeds=1, ncols=len(PILOT_T_MAX), scale="paper_hp", marks=pilot_marks)


if __name__ == "__main__":   # python experiments/paper_hp_pilot.py with jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("paper_hp_pilot")
