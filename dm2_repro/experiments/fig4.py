"""Figure 4 (Appendix B): the Figure 2 comparison on 3s_vs_5z and 8m_vs_9m."""
from __future__ import annotations

from dm2_repro.experiments import FigureDef, PAPER_FIGURES_GAIL_REWARD, PAPER_FIGURES_PAPER_RATE
from dm2_repro.experiments.fig2 import comparison_curves

MAPS = ("3s_vs_5z", "8m_vs_9m")

FIGURE = FigureDef(
    name="fig4",
    title="DM² compared to baselines on additional maps",
    build=lambda context: comparison_curves("fig4", MAPS, context),
    gail_reward=PAPER_FIGURES_GAIL_REWARD,
    paper_rate=PAPER_FIGURES_PAPER_RATE,
)
