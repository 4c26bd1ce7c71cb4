"""Progress bars for long steps (search generations, surrogate distillations, reports, predictions)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
log = logging.getLogger("avatar")

LINE_SECONDS = float(os.environ.get("AVATAR_PROGRESS_SECONDS", "30"))
"""Where stderr is not a terminal: at most this long between two progress lines."""


def stderr_is_terminal() -> bool:
    """Whether the bars' stderr is a terminal. Elsewhere (a log file, a pipe, a test's capture) a
    bar cannot redraw in place: rich prints its last state once at the end, a line a caller that
    promises one-line errors may not want."""
    return console.is_terminal


@contextmanager
def progress_bar(description: str, total: int | None, completed: int = 0,
                 enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yields ``update(completed, total)``; the bar goes to stderr so stdout stays clean.

    ``total`` None: a count without an end (a stream of unknown length). ``completed``: where a
    resumed job starts. ``enabled`` False: no bar, and ``update`` does nothing, so a caller
    keeps one code path whether it shows a bar or not.
    """
    if not enabled:
        yield lambda *_args, **_kwargs: None
        return
    if not stderr_is_terminal():
        with progress_lines(description, total, completed) as update:
            yield update
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total, completed=completed)
        yield lambda completed, total=total: progress.update(task, completed=completed, total=total)


@contextmanager
def progress_lines(description: str, total: int | None, completed: int = 0,
                   every: float | None = None) -> Iterator[Callable[..., None]]:
    """A bar for logs that are not a terminal: a line every ``every`` seconds, and at the end.

    Why: a log file or a CI console cannot redraw a bar, so rich prints only its last frame,
    and a stage of several minutes looked silent. Each line says done/total, the rate and
    the time left (``surrogate (brief distillations): 3/20, 0.05/s, about 5 min 40 s left``);
    a daemon thread says it on time even while one long unit runs and nothing is updated.
    """
    interval = LINE_SECONDS if every is None else every
    started = time.monotonic()
    state: dict[str, Any] = {"done": completed, "total": total}
    lock = threading.Lock()

    def say() -> None:
        with lock:
            done, end = state["done"], state["total"]
        elapsed = time.monotonic() - started
        rate = (done - completed) / elapsed if elapsed > 0 else 0.0
        count = f"{done}/{end}" if end is not None else f"{done}"
        left = ""
        if end is not None and rate > 0 and done < end:
            left = f", about {duration_text((end - done) / rate)} left"
        log.info("%s: %s, %.2f/s, %s elapsed%s", description, count, rate, duration_text(elapsed), left)

    def update(done: int, total: int | None = total) -> None:
        with lock:
            state["done"], state["total"] = done, total

    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            say()

    ticker = threading.Thread(target=tick, name=f"progress: {description}", daemon=True)
    ticker.start()
    try:
        yield update
    finally:
        stop.set()
        ticker.join()
    say()


def duration_text(seconds: float) -> str:
    """``5 min 40 s`` or ``40 s``: a time a user reads in a log line."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
