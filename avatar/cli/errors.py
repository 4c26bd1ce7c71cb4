"""Command-line plumbing: every fault a user can meet ends in one line on stderr.

``avatar check-task <task>``, ``avatar compare <runs>``, ``avatar export <student>``,
``avatar predict <student> <file>``, ``avatar scan <student> <paths>`` and ``avatar serve
<student>`` are the console commands; ``search.py`` and ``train.py`` are the Hydra entry
points. Exit codes: 2 for a one-line error (bad input, a full or read-only disk), 130 for
Ctrl-C and 143 for SIGTERM (like a shell), and anything else is a bug with its traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from avatar.core.errors import AvatarError, storage_error, vanished_folder_error

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
RESUME = "run the same command again to resume"
INTERRUPTED = f"interrupted: {RESUME}"


class Terminated(KeyboardInterrupt):
    """SIGTERM (SLURM preemption, ``docker stop``, systemd), raised like a Ctrl-C.

    A ``KeyboardInterrupt`` so every ``finally`` and every Ctrl-C path already in place
    (temporary files, the search's checkpoint) runs for it too.
    """


class _InterruptWatch:
    """Remembers which signal (SIGINT, SIGTERM) arrived while it was installed.

    Why: Lightning catches the ``KeyboardInterrupt`` of a Ctrl-C inside ``fit``, shuts down
    and calls ``sys.exit(1)`` (and leaves SIGINT ignored); on SIGTERM it stops at the end of
    the batch and raises ``SystemExit(None)``: exit 0, an unfinished run that looks like a
    success. The watch lets ``report_errors`` tell those exits from real ones.

    Inside a Lightning ``fit``, Lightning's own SIGTERM handler runs first and calls this
    one; the watch then only records the signal, so Lightning stops at a batch boundary
    (``training.CheckpointOnTerminate`` saves ``last.ckpt`` there). Anywhere else it raises
    ``Terminated`` at once.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.getsignal(number)
                signal.signal(number, self._handle)

    @property
    def seen(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signal.getsignal(signal.SIGTERM) == self._handle:
            raise Terminated
        # else Lightning's handler composed ours: it stops the fit at the batch's end

    def restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)

    def stop(self) -> None:
        """One line, the resume hint, and the shell's exit code for the signal (130, 143)."""
        if self.signal == signal.SIGTERM:
            _fail(f"terminated (SIGTERM): {RESUME}", EXIT_TERMINATED)
        _fail(INTERRUPTED, EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def detach_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into a closed pipe stays silent.

    For commands that stream to stdout (``avatar predict``, ``avatar scan``): ``... | head``
    stops reading, which is no error, and the exit flush must not print a traceback for it.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (an in-process caller's stdout)
        pass


def report_errors(function: Callable[[], Any], run_dir: str | os.PathLike[str] | None = None) -> Any:
    """Run ``function``; every fault a user can meet becomes one stderr line and an exit code.

    ``AvatarError``: ``error: ...``, exit 2. An ``OSError`` of a full or read-only disk (or
    denied permission): ``error: cannot write <path>: <reason> (<ERRNO>); <what to do>``,
    exit 2 (a failed ``write()`` names no file: then ``run_dir`` is named). Ctrl-C, including
    the ``sys.exit(1)`` Lightning turns it into: ``interrupted: ...``, exit 130; SIGTERM,
    including Lightning's ``SystemExit(None)``: ``terminated (SIGTERM): ...``, exit 143.
    """
    watch = _InterruptWatch()
    try:
        return function()
    except AvatarError as error:
        if watch.seen:  # code that turned the signal into its own error: the signal it was
            watch.stop()
        _fail(f"error: {error}", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        if not watch.seen:  # a KeyboardInterrupt raised by code, not by a signal
            watch.signal = signal.SIGTERM if isinstance(sys.exc_info()[1], Terminated) else signal.SIGINT
        watch.stop()
    except SystemExit:
        if watch.seen:
            watch.stop()
        raise
    except OSError as error:
        if watch.seen:  # the signal's own exception, turned into an OSError on its way out
            watch.stop()
        where = f"a file under {run_dir} or the cache" if run_dir is not None else "a file"
        described = storage_error(error, fallback=where) or vanished_folder_error(error)
        if described is None:
            raise
        _fail(f"error: {described}", EXIT_USER_ERROR)
    except Exception:
        # A signal raised inside code that wraps what it catches (an extension module's import
        # turns it into "ImportError: initialization failed") is still the signal: its line
        if watch.seen:
            watch.stop()
        raise
    finally:
        watch.restore()


def exit_code(function: Callable[[], int]) -> int:
    """``function``'s exit code under ``report_errors``: for console commands that return one."""
    try:
        return int(report_errors(function) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
