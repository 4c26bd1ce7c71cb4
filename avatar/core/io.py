"""File I/O that loses nothing: atomic writes, line-numbered reads, cache locks.

Every output is written to a temporary file in the same directory and renamed over
the target, so a kill at any moment leaves either the old or the new file, never half
of one. Readers of user data name the file and line of a malformed record. A cache entry
is computed under ``cache_lock``, so concurrent runs compute it once; an entry found
corrupt is reported in one warning, deleted and rebuilt (``discard_corrupt``). A path that a
file of a run directory records is written relative to that directory (``portable_path``)
and read back against where the directory is now (``recorded_path``).
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from avatar.core.errors import DataError, storage_error
from avatar.core.ranks import distributed_rank

log = logging.getLogger("avatar")


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
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(target)
        yield tmp
        os.replace(tmp, target)
    except OSError as error:  # a full or read-only disk: one line naming the target, not the temp file
        _raise_storage_error(error, target)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _remove_orphans(target: Path) -> None:
    """Delete temporary files of ``target`` left by a process that no longer runs (kill -9).

    Their names carry the writer's pid; a live writer's file is left alone.
    """
    for orphan in target.parent.glob(f".{glob_escape(target.name)}.*.tmp{target.suffix}"):
        pid = orphan.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``), synced to disk first; a full or
    read-only disk becomes a one-line ``StorageError`` naming ``path`` and the errno."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _raise_storage_error(error: OSError, target: Path) -> None:
    """Raise ``error`` as a one-line ``StorageError`` about ``target`` when it is one (full,
    read-only, not permitted); otherwise return and let the caller re-raise it as it is."""
    described = storage_error(error, target, action="cannot write")
    if described is not None:
        raise described from None


@contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` whole.

    A folder already at ``target`` is moved aside first and deleted after, so a kill at
    any moment leaves the old or the new folder complete (or a stray dot-folder), never
    half of one. If another process put a complete folder there first, ours is dropped:
    the first rename wins. On failure the temporary folder is removed, and a full or
    read-only disk becomes a one-line ``StorageError`` naming ``target``.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; outputs are ordinary folders
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        _raise_storage_error(error, target)
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def umask() -> int:
    """The process umask (read without changing it): files written by libraries get the usual mode."""
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


def portable_path(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``path`` as a file of the directory ``base`` records it: relative to ``base`` (POSIX) when
    it lies inside ``base``, else absolute.

    Why: a run directory that is moved or copied must find its own files where it is now, and
    a copy must never read or write the original's. Paths outside (a cache, a teacher's
    folder) stay absolute: they do not move with the run.
    """
    target = Path(os.path.abspath(path))
    inside = _inside(target, Path(os.path.abspath(base)))
    return inside.as_posix() if inside is not None else str(target)


def recorded_path(value: str | os.PathLike[str], base: str | os.PathLike[str], *, source: str = "",
                  must_exist: bool = True) -> Path:
    """A path that a file of the directory ``base`` records, as it is now (``portable_path``'s inverse).

    Relative: under ``base``. Absolute (files written before paths were relative): itself
    when inside ``base``; else re-rooted onto the longest tail of it that ``base`` holds (the
    directory was moved or copied: the copy's file, never the original's); else itself when
    it exists (a cache outside the run). Otherwise one ``DataError`` line naming ``source``,
    or with ``must_exist=False`` the path as recorded.
    """
    path, root = Path(value), Path(base)
    if not path.is_absolute():
        return root / path
    if _inside(path, Path(os.path.abspath(root))) is not None:
        return path
    rerooted = _reroot(path, root)
    if rerooted is not None:
        return rerooted
    if path.exists() or not must_exist:
        return path
    raise DataError(f"{source or root}: {path} no longer exists and is not in the run directory {root} "
                    "(moved or copied from elsewhere?); rerun the stage that wrote it")


def _inside(target: Path, root: Path) -> Path | None:
    """``target`` relative to ``root`` when it lies inside (as written, or with links resolved)."""
    for candidate, folder in ((target, root), (target.resolve(), root.resolve())):
        if candidate.is_relative_to(folder):
            return candidate.relative_to(folder)
    return None


def _reroot(path: Path, root: Path) -> Path | None:
    """``root`` joined with the longest tail of ``path`` that exists there, or None."""
    parts = path.parts[1:]
    for start in range(len(parts)):
        candidate = root.joinpath(*parts[start:])
        if candidate.exists():
            return candidate
    return None


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as one line.

    ``read_jsonl(tolerate_torn_tail=True)`` skips a torn last line (a writer killed mid-line);
    the next append cuts that line off first, or the new record would be glued to it and the
    file would then fail to read in the middle. Callers hold the file alone (the run lock or
    a ``cache_lock``), so a torn tail is never another writer's line in progress.
    """
    line = (json.dumps(to_jsonable(record)) + "\n").encode("utf-8")
    with open(path, "ab+") as handle:
        dropped = _cut_torn_tail(handle)
        handle.write(line)
        handle.flush()
    if dropped:
        log.warning("%s: dropped a torn last line (%d bytes) left by a killed writer", path, dropped)


def cut_torn_tail(path: str | os.PathLike[str]) -> int:
    """Truncate the file ``path`` after its last newline; the number of bytes dropped (0: none).

    For files appended line by line that a reader resumes from (``avatar predict --output``):
    the caller says what it dropped, in its own words.
    """
    with open(path, "rb+") as handle:
        return _cut_torn_tail(handle)


def _cut_torn_tail(handle: Any) -> int:
    """Truncate ``handle`` after its last newline, if it does not end with one; the bytes dropped."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return 0
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return 0
    end = size
    while end > 0:
        start = max(0, end - (1 << 16))
        handle.seek(start)
        newline = handle.read(end - start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    handle.truncate(end)
    return size - end


@contextmanager
def cache_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``<path>.lock`` while the cache entry ``path`` is computed.

    Why: two runs that miss the same entry at once (a sweep, two terminals) would both spend
    minutes computing it. The second waits here instead; once inside, it must look for the
    entry again and will find the first one's. Blocks until the lock is free; the kernel
    drops it when the holder exits, however it exits. The lock file stays (removing it
    would let two processes lock two different files of the same name).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(f"{target.name}.lock")
    if distributed_rank() > 0:  # a DDP child: its rank 0 holds this lock and waits for it in fit
        yield lock_path
        return
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process computing %s", target)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield lock_path


def discard_corrupt(path: str | os.PathLike[str], reason: BaseException | str) -> None:
    """Warn in one line that the cache entry ``path`` is corrupt, and delete it (file or folder).

    Call it holding the entry's ``cache_lock``: the caller rebuilds the entry next.
    """
    target = Path(path)
    log.warning("cache entry %s is corrupt (%s); rebuilding", target, first_line(reason))
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's text (its type when it has none): messages stay one line."""
    lines = str(error).strip().splitlines()
    if lines:
        return lines[0].strip()
    return error if isinstance(error, str) else type(error).__name__


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a (possibly gzipped) UTF-8 text file, newlines kept (universal newlines,
    as text mode reads them).

    A byte that is not UTF-8 raises ``DataError`` naming file, line, byte and column; a
    damaged gzip stream or an unreadable file names the file. Why not text mode: its
    ``UnicodeDecodeError`` names neither the file nor the line.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({first_line(error)})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - raw.rfind(b"\n", 0, error.start)
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {column}); "
            "save the file as UTF-8"
        ) from None
    return io.StringIO(text, newline=None).readlines()


def iter_jsonl(path: str | os.PathLike[str], tolerate_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Records of a (possibly gzipped) jsonl file; a bad line raises ``DataError`` naming file:line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing file: {path}")
    lines = read_lines(path)
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


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A Lightning checkpoint read with ``torch.load(weights_only=True)``: never code from a file.

    Why: run directories and caches may sit on shared file systems, and a pickle runs
    whatever it names when loaded. Tensors, numbers, strings and containers are all a
    checkpoint of ours holds, so the restricted unpickler reads every one of them; a file
    that needs more was not written by Avatar and is refused with one line.
    """
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        raise UnreadableCheckpoint(path, first_line(error)) from None
    if not isinstance(loaded, dict):
        raise UnreadableCheckpoint(path, f"a {type(loaded).__name__}, not a dict")
    return loaded


class UnreadableCheckpoint(DataError):
    """A checkpoint that is damaged, or holds more than tensors and plain data (never unpickled)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"{path}: not a checkpoint Avatar wrote, or damaged ({reason}); move it aside and run again"
        )
