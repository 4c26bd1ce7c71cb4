"""Progress bars for long steps (search generations, surrogate distillations, reports, predictions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


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
