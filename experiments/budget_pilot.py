"""Beyond the paper: the pilot that set each map's cpu budget (`dm2_repro.config.CPU_T_MAX`).

IPPO at the cpu preset, one seed, on the maps whose budget was not yet known, each with a generous
`t_max` (PILOT_T_MAX). The budget chosen per map is the smallest at which IPPO's test win rate has
clearly left the floor and is still rising or has plateaued, within the campaign's compute envelope
(README "Compute plan"). Curve keys are "ippo"; panels are maps.

    python -m dm2_repro.run budget_pilot --scale cpu
    python -m dm2_repro.figure budget_pilot
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import Context, Curve, FigureDef

PILOT_T_MAX = {"5m_vs_6m": 500_000, "3s_vs_4z": 500_000, "3s_vs_5z": 500_000, "8m_vs_9m": 500_000}


def build(context: Context) -> list[Curve]:
    """Each map twice: the test win rate (the row that sets the budget) and the test return (the
    row that shows what IPPO learns where it wins nothing), the same runs."""
    return [context.curve("budget_pilot", f"{m}: {what}", key, "IPPO", "ippo", m, hp={"t_max": t_max},
                          metric=metric, color="ippo")
            for key, metric, what in (("ippo", "win_rate", "win rate"), ("ippo_return", "return", "return"))
            for m, t_max in PILOT_T_MAX.items()]


FIGURE = FigureDef(name="budget_pilot", title="Budget pilot: IPPO at the cpu preset, one seed",
                   build=build, n_seeds=1, ncols=len(PILOT_T_MAX))


if __name__ == "__main__":   # python experiments/budget_pilot.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("budget_pilot")
