"""Beyond the paper: which departure of the cpu preset from the paper moves DM² against IPPO.

On 5m_vs_6m, with the default GAIL reward (absorbing), 5 seeds each:
- dm2:          DM² at the cpu preset as is (the later, 25% demonstrations of Figure 2; the same jobs as
                reward_forms' dm2_absorbing on this map);
- dm2_disc_rate: the paper's discriminator steps per collected episode (120 per 1024-episode update:
                round(120 * 16 / 1024) = 2 steps per 16-episode update, sweeps.plan.paper_rate_gail_epochs) instead of 40;
- dm2_c0.1:     c = 0.1 instead of Table 2's 0.3;
- dm2_demo50, dm2_demo70: demonstrations from the experts' 50% and 70% snapshots (the paper's 5M and
                7M of 10M) instead of 15% / 25%: Figure 7's experts (tag fig7), whose every snapshot is kept;
- ippo:         the baseline.

Declared before its runs (commit of 2026-12-07; claims.py reads these): each DM² arm against IPPO on the
AUC of test return / 20 (5m_vs_6m's statistic at cpu) over the full budget and over the first
sweeps.plan.EARLY_WINDOW of it (the first third: 0-50k of 150k steps, where the committed DM² runs led IPPO); and each
arm against `dm2` on the same two AUCs, "~" within the equivalence margin the re-run issue declares
for this map (until then the report's margin, 0.1).

    python -m dm2_repro.run departures --scale cpu
    python -m dm2_repro.figure departures
"""
from __future__ import annotations

from dm2_repro.sweeps.plan import Context, Curve, FigureDef, definition, format_steps, paper_rate_gail_epochs

EXPERT_TAG = definition("fig7").EXPERT_TAG   # Figure 7's own expert runs: their 50% / 70% snapshots

MAP = "5m_vs_6m"
DEMO_FRACTIONS = {"demo50": 0.5, "demo70": 0.7}   # the paper's 5M / 7M of 10M
LOW_C = 0.1


def build(context: Context) -> list[Curve]:
    late = context.demo_step(MAP, "late")

    def late_demo(seed):
        return context.ippo_demo(MAP, seed, late)

    grid = context.snapshot_grid(MAP)
    rate = paper_rate_gail_epochs(context.scale, MAP)
    curves = [
        context.curve("departures", MAP, "dm2", f"DM², cpu preset (IPPO demo, {format_steps(late)})", "dm2", MAP,
                      late_demo),
        context.curve("departures", MAP, "dm2_disc_rate", f"DM², paper's discriminator rate ({rate} steps/update)",
                      "dm2", MAP, late_demo, hp={"gail_epochs": rate}),
        context.curve("departures", MAP, f"dm2_c{LOW_C:g}", f"DM², c = {LOW_C:g}", "dm2", MAP, late_demo,
                      hp={"gail_coef": LOW_C}),
    ]
    for key, fraction in DEMO_FRACTIONS.items():
        step = min(grid, key=lambda s: (abs(s - fraction * grid[-1]), s))
        curves.append(context.curve(
            "departures", MAP, f"dm2_{key}", f"DM² (IPPO demo, {format_steps(step)} = {fraction:.0%})", "dm2", MAP,
            lambda seed, s=step: context.ippo_demo(MAP, seed, s, expert_tag=EXPERT_TAG)))
    curves.append(context.curve("departures", MAP, "ippo", "IPPO", "ippo", MAP))
    return curves


FIGURE = FigureDef(name="departures", title="DM² on 5m_vs_6m with one departure of the cpu preset undone "
                   "(beyond the paper)", build=build)


if __name__ == "__main__":   # python experiments/departures.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("departures")
