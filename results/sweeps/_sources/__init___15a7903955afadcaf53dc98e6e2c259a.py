"""Sweeps: a figure's job graph and its execution, the pipeline's stage between training and results.

    plan.py          experiment definitions (experiments/*.py) -> curves -> jobs (train, demonstrations) in
                     dependency order; the vocabulary a definition is written in (Context, Curve, FigureDef)
    status.py        what of a plan is done, resumable or running elsewhere; each job's command line
    runner.py        the scheduler: locks shared by runners, parallel jobs, progress
    launchers.py     where jobs run: subprocesses, Ray, SLURM (submitit)
    record.py        a sweep as a Sacred run of its own (RESULTS/sweeps)
    command_line.py  `python experiments/<figure>.py with KEY=VALUE ...`

`python -m dm2_repro.run` is the command line over them.
"""
