"""`python -m dm2_repro.demos`: the CLI of dm2_repro/demos/cli.py; a bad argument or demonstration
file is one line and exit code 2."""
from dm2_repro.cli_io import InputError, fail
from dm2_repro.demos.cli import main
from dm2_repro.demos.files import DemoError

if __name__ == "__main__":
    try:
        main()
    except (InputError, DemoError) as exc:
        fail(exc)
