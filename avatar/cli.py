"""Command-line plumbing: user errors become one line on stderr and exit code 2.

``avatar check-task <task>``, ``avatar compare <runs>``, ``avatar export <student>``,
``avatar predict <student> <file>``
are the console commands; ``search.py`` and ``train.py`` are the Hydra entry points.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from avatar.errors import AvatarError

EXIT_USER_ERROR = 2


def report_errors(function: Callable[[], Any]) -> Any:
    """Run ``function``; an ``AvatarError`` prints ``error: ...`` and exits 2, nothing else."""
    try:
        return function()
    except AvatarError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        sys.exit(130)


COMMANDS = {
    "check-task": "avatar.contract",
    "compare": "avatar.compare",
    "export": "avatar.export",
    "predict": "avatar.predict",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: avatar {{{','.join(COMMANDS)}}} ...  (search and train: python search.py / train.py)")
        return EXIT_USER_ERROR
    import importlib

    module = importlib.import_module(COMMANDS[args[0]])
    return int(module.main(args[1:]) or 0)
