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


def check_trainer_overrides(argv: list[str]) -> None:
    """Exit 2 with one line when a ``trainer.<key>=`` override names no ``lightning.Trainer`` keyword.

    Hydra would refuse it with a multi-line "not in struct" message (configs/trainer lists
    every keyword, so a valid one needs no ``+``); this names the known keywords instead.
    """
    keys = []
    for argument in argv:
        name = argument.split("=", 1)[0].lstrip("+~")
        for prefix in ("trainer.", "teacher.trainer."):
            if name.startswith(prefix) and "." not in name[len(prefix):]:
                keys.append((prefix.rstrip("."), name[len(prefix):]))
    if not keys:
        return
    from avatar.errors import AvatarError
    from avatar.training import check_trainer_options

    try:
        for where, key in keys:
            check_trainer_options({key: 0}, where)
    except AvatarError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
