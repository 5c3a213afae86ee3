"""Verdicts: each of the paper's findings judged on the runs (python -m dm2_repro.claims writes them).

    findings.py    the findings as comparisons of two curves, with their declared statistics and margins
    decide.py      one comparison -> an interval and a verdict (Welch t, BCa, Holm, TOST for "~")
    factorial.py   Figure 3's 2 x 2 design: main effects and interaction per map
    saturation.py  which maps have room above IPPO's final value (where a "faster" claim can show)
    aggregate.py   across maps: IQM AUC and probability of improvement (rliable's method)
    rerun.py       how each verdict moved with the re-run of the DM²-family curves (the runs before it)
    budget.py      the paper_hp pilot's reading: each map's budget and "~" margin at the paper's per-update settings
"""
