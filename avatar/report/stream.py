"""Predictions as a stream of JSON lines, and the ``--output`` file a killed run resumes from.

Why a stream: on a 100k-line input, predicting everything before printing anything shows
nothing for minutes and loses everything to a kill. Inputs are predicted a chunk at a time
(``BATCHES_PER_CHUNK`` batches) and each chunk's lines are written and flushed at once.
Each line carries the input's ``index`` (its position among the inputs) and ``line`` (where
it starts in the input), so results trace back to their inputs; an output file's complete
lines are then exactly the first inputs, and a rerun skips that many.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from avatar.core.errors import DataError
from avatar.core.io import cut_torn_tail
from avatar.report.inputs import Record
from avatar.report.predict import BATCHES_PER_CHUNK, Predictor


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def predicted_lines(predictor: Predictor, records: Iterable[Record],
                    batch_size: int = 32) -> Iterator[list[str]]:
    """The JSON lines (newline included) of ``records`` in input order, one chunk at a time.

    A chunk is read (and its records checked) in full before it is predicted, so a bad line
    stops the run before the results of its chunk are written.
    """
    for chunk in _chunks(records, max(1, batch_size) * BATCHES_PER_CHUNK):
        results = predictor.predict([record.snippet for record in chunk], batch_size=batch_size)
        yield [json.dumps({"index": record.index, "line": record.line, "label": result.label,
                           "label_name": predictor.label_name(result.label),
                           "probabilities": result.probabilities}) + "\n"
               for record, result in zip(chunk, results)]


@dataclass(frozen=True)
class Resume:
    """What an ``--output`` file already holds: ``done`` complete result lines (the first
    ``done`` inputs) after ``dropped`` bytes of a torn last line were cut off."""

    done: int
    dropped: int

    def message(self, path: str | os.PathLike[str], total: int | None) -> str | None:
        """The one stderr line that says a run resumes (``None`` for a fresh file)."""
        if not self.done and not self.dropped:
            return None
        of = f" of {total}" if total is not None else ""
        torn = f" (dropped a torn last line of {self.dropped} bytes)" if self.dropped else ""
        return f"resuming: {self.done}{of} already in {os.fspath(path)}{torn}"


def _last_line(path: Path) -> tuple[int, bytes]:
    """The number of lines of ``path`` (every one complete) and its last line."""
    count, last = 0, b""
    with open(path, "rb") as handle:
        for last in handle:  # noqa: B007 - the loop variable is the point: the last line
            count += 1
    return count, last


def _check_continues(path: Path, count: int, last: bytes) -> None:
    """The file's last line must be the result of input ``count - 1``: anything else is not
    this command's output, and resuming after it would mix two inputs' results."""
    try:
        index = json.loads(last).get("index")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        index = None
    if index != count - 1:
        raise DataError(f"{path}:{count}: not a result line of avatar predict for input {count - 1}, so "
                        "the run cannot resume from this file; pass another --output or remove it")


def resume_output(output: str | os.PathLike[str], name: str, total: int | None) -> Resume:
    """Prepare ``output`` for appending: cut a torn last line (a run killed mid-write), count
    the complete lines and check that they are the first inputs' results."""
    path = Path(output)
    if path.is_dir():
        raise DataError(f"--output {path} is a folder; name a file")
    if not path.is_file() or path.stat().st_size == 0:
        return Resume(0, 0)
    dropped = cut_torn_tail(path)
    count, last = _last_line(path)
    if count:
        _check_continues(path, count, last)
    if total is not None and count > total:
        raise DataError(f"{path} holds {count} results but {name} has {total} inputs: it is another "
                        "input's output; pass another --output or remove it")
    return Resume(count, dropped)
