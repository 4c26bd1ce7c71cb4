"""Checks that must run before Hydra starts: Hydra creates the run directory itself and
reports a failure there as a multi-line traceback, so an unwritable ``hydra.run.dir``
is caught here and reported in one line."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from avatar.cli import EXIT_USER_ERROR


def _writable(directory: Path) -> str | None:
    """``None`` when ``directory`` can be created and written (root ignores permission bits,
    so this really creates it and a probe file); else the reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def check_output_dir(argv: list[str]) -> None:
    """Exit 2 with one line when ``hydra.run.dir=`` / ``hydra.sweep.dir=`` cannot be written."""
    for argument in argv:
        for key in ("hydra.run.dir=", "hydra.sweep.dir="):
            if argument.startswith(key):
                directory = Path(argument[len(key) :]).expanduser()
                reason = _writable(directory)
                if reason is not None:
                    print(f"error: output directory {directory} is not writable ({reason})", file=sys.stderr)
                    sys.exit(EXIT_USER_ERROR)
