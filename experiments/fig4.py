"""Figure 4 (Appendix B): the Figure 2 comparison on 3s_vs_5z and 8m_vs_9m."""
from __future__ import annotations

from dm2_repro.sweeps.plan import PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE, FigureDef, definition

comparison_curves = definition("fig2").comparison_curves

MAPS = ("3s_vs_5z", "8m_vs_9m")

FIGURE = FigureDef(
    name="fig4",
    title="DM² compared to baselines on additional maps",
    build=lambda context: comparison_curves("fig4", MAPS, context),
    gail_reward=PAPER_FIGURES_GAIL_REWARD,
    paper_rate=PAPER_FIGURES_PAPER_RATE,
)


if __name__ == "__main__":   # python experiments/fig4.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("fig4")
