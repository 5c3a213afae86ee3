"""What every command line and every writer of the package shares, importing nothing of the package (so
any module may use it without an import circle): the one-line input errors and `fail`, the argparse
`Parser` (one-line errors, --help with defaults), value checks of the CLIs, and atomic file writes.

Writing: every file the package writes goes to a unique temporary name in the target's folder
and is renamed over the target (`atomic_write`, `atomic_copy`): a kill mid-write leaves the old
file or the new one, never half of one, and two writers never interleave.

The checks of what a value means to the package (maps, hp fields, demonstrations, run configs) are in
dm2_repro/validate.py, which re-exports everything here.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable

EXIT_BAD_INPUT = 2
DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class InputError(ValueError):
    """A bad input: its message is one line naming the value and what would be valid."""


class MissingInput(InputError, FileNotFoundError):
    """A file or directory an input names does not exist."""


class DamagedFile(InputError):
    """A file that exists but cannot be read: truncated, garbage, or of another kind."""


def fail(message: str, code: int = EXIT_BAD_INPUT):
    """Print `error: message` (one line) to stderr and exit."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    raise SystemExit(code)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help keeps the module doc's layout and shows every option's default, except where there is
    none to show (None, a flag's False) or the help already says it."""

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if (default is None or default is False or default in ("", argparse.SUPPRESS) or "default" in text
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return text
        # a list reads as on the command line (1 2, not [1, 2]); the help is %-formatted afterwards
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (`prog: error: ...`, no usage block) and whose --help shows
    the defaults (HelpFormatter)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_INPUT)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


def at_least(name: str, value, low, kind: str = "an integer") -> None:
    """`name` must be `kind` (integer / number) >= low (argparse values of the other CLIs)."""
    if value is None:
        return
    ok = _is_int(value) if kind == "an integer" else _is_number(value) and math.isfinite(value)
    if not ok or value < low:
        raise InputError(f"{name} {value!r}: must be {kind} >= {low}")


def existing_dir(name: str, path, what: str = "results directory") -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{name} {path}: no such {what}")
    if not path.is_dir():
        raise InputError(f"{name} {path}: is a file, not a {what}")
    return path


def not_a_file(name: str, path) -> Path:
    """A directory that may not exist yet (it is created), but must not be a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{name} {path}: is a file, not a directory")
    return path


# ---------------------------------------------------------------------------------------------
# Paths recorded in files
# ---------------------------------------------------------------------------------------------
# Files the package writes into a results directory (a run's config.json `demo`, a demonstration's json
# `source_runs`) record paths relative to that directory, so that they mean the same in
# any clone or copy of it (RESULTS/demos/NAME.npz is recorded as demos/NAME.npz).

def relative_to_results(path, results_dir) -> str:
    """`path` as recorded in a file under `results_dir`: relative to it (POSIX separators)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(results_dir).resolve())).as_posix()


def resolve_in_results(path, results_dir) -> Path:
    """A recorded or given path: absolute as it is; relative, from the working directory where it exists
    there (a path typed on a command line), else from `results_dir` (a path recorded in a file)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return Path(results_dir) / path


# ---------------------------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------------------------

def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Write `path` via `write(tmp)` to a unique temporary file next to it, then rename it over
    `path` (atomic on POSIX). The temporary file is removed if writing fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_copy(src, dst) -> Path:
    import shutil

    return atomic_write(dst, lambda tmp: shutil.copy2(src, tmp))


def sha256_file(path) -> str:
    """The file's sha256 (hex), read in chunks (demonstration files are large)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
