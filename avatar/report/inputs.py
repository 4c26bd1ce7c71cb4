"""What ``avatar predict`` classifies: a code file, a ``.jsonl`` file, or stdin, read lazily.

A code file is one snippet. A jsonl file (``.jsonl`` or ``.jsonl.gz``, or stdin whose first
non-blank line is a JSON object) is one snippet per line, field ``func`` (``func1``/``func2``
for pairs). Why lazily: a 100k-line jsonl is predicted chunk by chunk and its results are
written as they come, so a kill loses only the chunk in flight; reading the whole file first
would hold every snippet in memory and show nothing for minutes. Every error names the input
(and, for jsonl, the line) in one line.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.core.errors import DataError
from avatar.core.io import first_line
from avatar.core.text import has_code

Snippet = str | tuple[str, str]
Line = bytes | str
"""A raw input line: bytes from a file or a byte stdin, str from a text-only stdin."""

STDIN = "<stdin>"
BINARY_SHARE = 0.3
"""Input whose text is more than this share of undecodable bytes is binary, not code."""
ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class Record:
    """One input: ``index`` is its position among the inputs (what ``--output`` resumes by),
    ``line`` the input line it starts on (1 for a code file), so a result traces back to it."""

    index: int
    line: int
    snippet: Snippet


@dataclass(frozen=True)
class Inputs:
    """The records of one source. ``total`` is known for files (a cheap counting pass) and not
    for jsonl on stdin, which can be read only once; ``records(skip)`` reads them lazily,
    without parsing the ``skip`` first ones (they were predicted by an earlier run)."""

    name: str
    total: int | None
    _read: Callable[[int], Iterator[Record]]

    def records(self, skip: int = 0) -> Iterator[Record]:
        return self._read(skip)


# ---- one snippet ------------------------------------------------------------------------------

def _refuse_binary(raw: Line, text: str, where: str, offset: int = 0) -> None:
    """Binary data (a NUL byte, or mostly bytes that are not UTF-8) is a ``DataError``. Other
    stray bytes (a Latin-1 comment in old C code) stay as U+FFFD."""
    nul = raw.find(b"\0") if isinstance(raw, bytes) else raw.find("\0")
    bad = text.count("\ufffd") if isinstance(raw, bytes) else 0
    if nul >= 0 or (text and bad / len(text) > BINARY_SHARE):
        what = (f"a NUL byte at offset {offset + nul}" if nul >= 0
                else f"{bad} of {len(text)} characters not UTF-8")
        raise DataError(f"{where}: binary input ({what}), not source code")


def _decode(data: Line, name: str) -> str:
    """Source text from ``data``: an error when it holds no code (checked first, so a file of
    control characters is called empty, not binary), or when it is binary."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if not has_code(text):
        raise DataError(f"{name}: the input is empty: there is no code to classify")
    _refuse_binary(data, text, name)
    return text


def _snippet_inputs(data: Line, name: str, pair: bool) -> Inputs:
    """A whole input that is one snippet (read at once: one function or file is small)."""
    text = _decode(data, name)
    if pair:
        raise DataError(f"{name}: pair input needs jsonl lines with 'func1' and 'func2'")
    record = Record(index=0, line=1, snippet=text)
    return Inputs(name, 1, lambda skip: iter([record][skip:]))


# ---- jsonl ------------------------------------------------------------------------------------

def _is_blank(line: Line) -> bool:
    """A blank jsonl line (skipped, not a record): ASCII whitespace only, for bytes and str alike,
    so the counting pass and the parser agree on what a record is."""
    return not (line.strip() if isinstance(line, bytes) else line.strip(ASCII_WHITESPACE))


def _field(record: dict[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise DataError(f"{where}: missing string field {name!r}")
    if not has_code(value):
        raise DataError(f"{where}: field {name!r} is empty: there is no code to classify")
    return value


def _snippet_of(line: Line, where: str, offset: int, pair: bool) -> Snippet:
    """The snippet of one non-blank jsonl line; errors name ``where`` (source:line)."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    _refuse_binary(line, text, where, offset)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: malformed JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if pair:
        return _field(record, "func1", where), _field(record, "func2", where)
    return _field(record, "func", where)


def parse_jsonl(lines: Iterable[Line], source: str, pair: bool, skip: int = 0) -> Iterator[Record]:
    """Records of jsonl ``lines`` (``func``, or ``func1``/``func2`` for pairs), one at a time;
    the first ``skip`` records are counted, not parsed. Errors name source:line; no record at
    all is an error too (there is nothing to classify)."""
    index = offset = 0
    for number, line in enumerate(lines, start=1):
        start, offset = offset, offset + len(line)
        if _is_blank(line):
            continue
        if index >= skip:
            snippet = _snippet_of(line, f"{source}:{number}", start, pair)
            yield Record(index=index, line=number, snippet=snippet)
        index += 1
    if index == 0:
        raise DataError(f"{source}: the input is empty: there is no code to classify")


def _looks_like_jsonl(line: Line) -> bool:
    """Stdin carries jsonl when its first non-blank line is a JSON object; otherwise it is one snippet."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


# ---- sources ----------------------------------------------------------------------------------

def _file_lines(path: Path) -> Iterator[bytes]:
    """The lines of a (possibly gzipped) file, as bytes; a damaged stream names the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({first_line(error)})") from None


def _stdin_lines() -> Iterator[Line]:
    """Stdin line by line, as bytes where it has a byte buffer (a test's StringIO has none)."""
    buffer = getattr(sys.stdin, "buffer", None)
    return iter(buffer if buffer is not None else sys.stdin)


def _join(lines: Iterable[Line]) -> Line:
    parts = list(lines)
    return b"".join(parts) if parts and isinstance(parts[0], bytes) else "".join(parts)  # type: ignore[arg-type]


def _stdin_inputs(pair: bool) -> Inputs:
    """Jsonl or one snippet, told by stdin's first non-blank line; the lines read to tell are
    put back in front of the rest."""
    rest = _stdin_lines()
    head: list[Line] = []
    for line in rest:
        head.append(line)
        if not _is_blank(line):
            break
    lines = itertools.chain(head, rest)
    if head and not _is_blank(head[-1]) and _looks_like_jsonl(head[-1]):
        return Inputs(STDIN, None, lambda skip: parse_jsonl(lines, STDIN, pair, skip))
    return _snippet_inputs(_join(lines), STDIN, pair)


def open_inputs(source: str, pair: bool) -> Inputs:
    """The inputs of ``source`` (a path, or ``-`` for stdin). A code file is read and checked
    here; a jsonl file is counted here and parsed as ``records`` is consumed."""
    if source == "-":
        return _stdin_inputs(pair)
    path = Path(source)
    if not path.is_file():
        raise DataError(f"input not found: {path}")
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        return _snippet_inputs(_join(_file_lines(path)), str(path), pair)
    total = sum(1 for line in _file_lines(path) if not _is_blank(line))
    return Inputs(str(path), total, lambda skip: parse_jsonl(_file_lines(path), str(path), pair, skip))


def read_inputs(source: str, pair: bool) -> list[Snippet]:
    """Every snippet of ``source`` at once, for callers that want a list (the CLI streams).

    Empty input (no code at all, or a jsonl with no record) is an error: a classifier gives a
    confident-looking label to nothing, and that label would mean nothing.
    """
    return [record.snippet for record in open_inputs(source, pair).records()]
