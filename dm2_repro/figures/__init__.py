"""Figures: how results are drawn and reported.

    plotting.py     the paper's figure style: curves with bands, demonstration lines, legends
    tables.py       the figures' CSV format: per-seed and plotted rows, comparison with a committed CSV
    diagnostics.py  the GAIL diagnostics figure: discriminator accuracy, reward scale, episode length
    report.py       the reproduction report (docs/report.md) and README's claims at a glance, between markers

`python -m dm2_repro.figure` draws a figure; `python -m dm2_repro.claims` judges the paper's claims.
"""
