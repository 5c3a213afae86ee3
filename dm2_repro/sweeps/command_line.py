"""A figure definition's own command line, in Sacred's words (the layout issue, item 2):

    python experiments/fig2.py with scale=cpu jobs=2                    # = python -m dm2_repro.run fig2 --jobs 2
    python experiments/fig2.py with scale=cpu maps=[3s_vs_3z] seeds=2   # one panel, two seeds
    python experiments/fig3.py with curves=early_* hp.n_envs=8          # a curve glob, an hp override
    python experiments/fig2.py print_config with scale=smoke            # the plan, run nothing (= dry_run=True)

Each KEY=VALUE after `with` is the runner's --KEY (dashes for underscores; a list for options that take several
words; True for a flag), read as Sacred reads a config update; `hp.KEY=VALUE` is one --hp override. The sweep is
then what `python -m dm2_repro.run` makes of it: a Sacred run of its own in RESULTS/sweeps with the plan as config
and every job's run as info (dm2_repro.sweeps.record).
"""
from __future__ import annotations

import sys

COMMANDS = ("print_config",)   # Sacred's command that shows the config without running: the plan, as --dry-run


def runner_argv(figure: str, words: list[str]) -> list[str]:
    """`[print_config] with KEY=VALUE ...` -> the argv of `python -m dm2_repro.run FIGURE ...`."""
    from sacred.arg_parser import get_config_updates

    from dm2_repro.cli_io import InputError
    from dm2_repro.run import build_parser

    words = list(words)
    dry_run = bool(words) and words[0] in COMMANDS
    if dry_run:
        words = words[1:]
    if words and words[0] != "with":
        raise InputError(f"{words[0]!r}: expected `with KEY=VALUE ...`" + (f" or one of {', '.join(COMMANDS)}"
                                                                            if not dry_run else ""))
    updates, named = get_config_updates(words[1:])
    if named:
        raise InputError(f"{named[0]!r}: not KEY=VALUE (a figure has no named configs)")
    options = {a.dest: a for a in build_parser()._actions if a.option_strings}
    argv = [figure] + (["--dry-run"] if dry_run else [])
    for key, value in updates.items():
        if key == "hp":
            value = [f"{k}={v}" for k, v in value.items()] if isinstance(value, dict) else value
        action = options.get(key)
        if action is None or key in ("help",):
            raise InputError(f"{key}={value!r}: unknown key; valid keys: {', '.join(sorted(set(options) - {'help'}))}")
        flag = action.option_strings[-1] if key != "progress" else "--progress"
        if action.nargs == 0 or isinstance(value, bool):   # a flag: key=True / key=False
            if not isinstance(value, bool):
                raise InputError(f"{key}={value!r}: True or False")
            if key == "progress":
                argv.append("--progress" if value else "--no-progress")
            elif value:
                argv.append(flag)
            continue
        if action.nargs == "+":
            if isinstance(value, str):   # maps=[3s_vs_3z,5m_vs_6m] reaches us as a string
                value = value.strip("[]").replace(",", " ").split()
            argv += [flag, *map(str, value if isinstance(value, (list, tuple)) else [value])]
        else:
            argv += [flag, str(value)]
    return argv


def main(figure: str, words: list[str] | None = None) -> None:
    from dm2_repro.cli_io import InputError
    from dm2_repro import run

    words = sys.argv[1:] if words is None else words
    if words[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        sys.exit(0)
    try:
        argv = runner_argv(figure, words)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run.main(argv))
