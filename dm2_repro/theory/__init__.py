"""Exact checks of the paper's theory (Section 4, Appendix A) on small tabular Markov games.

games.py        finite K-agent Markov games, exact visitation distributions, best responses
gail.py         independent GAIL learners with closed-form discriminators (Algorithm 2)
experiments.py  the experiments behind figures/theory.png (CSV output)
plot.py         make_figure(): the figure and its long-format CSV
__main__.py     `python -m dm2_repro.theory`: run every panel, write results/theory/*.csv
toy_coordination.py  the climbing-game check of DM² vs IPPO (`python -m dm2_repro.theory.toy_coordination`)

Reference: docs/theory.md.
"""
