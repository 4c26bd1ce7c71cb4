"""File I/O that loses nothing: atomic writes and line-numbered reads.

Every output is written to a temporary file in the same directory and renamed over
the target, so a kill at any moment leaves either the old or the new file, never half
of one. Readers of user data name the file and line of a malformed record.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from avatar.errors import DataError


def plain(node: Any) -> Any:
    """A Hydra/OmegaConf node as plain dicts and lists (resolved); anything else unchanged."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an unused temporary path beside ``path``; when the block ends without error the
    file written there replaces ``path`` (``os.replace``, atomic on POSIX), else it is removed.

    The one mechanism for every file Avatar writes, including files that a library writes
    by name (ONNX export, quantisation): a kill never leaves a truncated ``path``. The temp
    file is not pre-created, so writers create it with the usual umask permissions.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``), synced to disk first."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` whole.

    A folder already at ``target`` is moved aside first and deleted after, so a kill at
    any moment leaves the old or the new folder complete (or a stray dot-folder), never
    half of one. If another process put a complete folder there first, ours is dropped:
    the first rename wins.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are ordinary folders
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and paths to plain JSON types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as one line; ``read_jsonl(tolerate_torn_tail=True)`` skips a torn last line."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(to_jsonable(record)) + "\n")
        handle.flush()


def iter_jsonl(path: str | os.PathLike[str], tolerate_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Records of a (possibly gzipped) jsonl file; a bad line raises ``DataError`` naming file:line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing file: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if tolerate_torn_tail and number == len(lines) and not line.endswith("\n"):
                return  # the writer was killed mid-line: the previous records stand
            raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield record


def read_jsonl(path: str | os.PathLike[str], tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, tolerate_torn_tail))
