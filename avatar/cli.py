"""Command-line plumbing: every fault a user can meet ends in one line on stderr.

``avatar check-task <task>``, ``avatar compare <runs>``, ``avatar export <student>`` and
``avatar predict <student> <file>`` are the console commands; ``search.py`` and
``train.py`` are the Hydra entry points. Exit codes: 2 for a
one-line error (bad input, a full or read-only disk), 130 for Ctrl-C (like a shell), and
anything else is a bug with its traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from avatar.errors import AvatarError, storage_error

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted: run the same command again to resume"


class _InterruptWatch:
    """Remembers that SIGINT arrived while it was installed.

    Why: Lightning catches the ``KeyboardInterrupt`` of a Ctrl-C inside ``fit``, shuts down
    and calls ``sys.exit(1)`` (and leaves SIGINT ignored), so the teacher, distillation and
    surrogate stages would end with exit 1 and no word of what happened. The watch lets
    ``report_errors`` tell that exit from a real one.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.SIG_DFL)


def _fail(message: str, code: int) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def report_errors(function: Callable[[], Any], run_dir: str | os.PathLike[str] | None = None) -> Any:
    """Run ``function``; every fault a user can meet becomes one stderr line and an exit code.

    ``AvatarError``: ``error: ...``, exit 2. An ``OSError`` of a full or read-only disk (or
    denied permission): ``error: cannot write <path>: <reason> (<ERRNO>); <what to do>``,
    exit 2 (a failed ``write()`` names no file: then ``run_dir`` is named). Ctrl-C, including
    the ``sys.exit(1)`` Lightning turns it into: ``interrupted: ...``, exit 130.
    """
    watch = _InterruptWatch()
    try:
        return function()
    except AvatarError as error:
        _fail(f"error: {error}", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        _fail(INTERRUPTED, EXIT_INTERRUPTED)
    except SystemExit:
        if watch.seen:
            _fail(INTERRUPTED, EXIT_INTERRUPTED)
        raise
    except OSError as error:
        where = f"a file under {run_dir} or the cache" if run_dir is not None else "a file"
        described = storage_error(error, fallback=where)
        if described is None:
            raise
        _fail(f"error: {described}", EXIT_USER_ERROR)
    finally:
        watch.restore()


def exit_code(function: Callable[[], int]) -> int:
    """``function``'s exit code under ``report_errors``: for console commands that return one."""
    try:
        return int(report_errors(function) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


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
