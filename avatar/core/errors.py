"""Errors a user caused: the entry points print them as one line and exit non-zero."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class AvatarError(Exception):
    """Bad input (config, data, plugin name): one clear line, never a traceback."""


class DataError(AvatarError):
    """Missing or malformed data; the message names the file (and line) at fault."""


class StorageError(AvatarError):
    """A read-only or full disk: the message names the path and the errno, and what to do."""


STORAGE_HINTS: dict[int, str] = {
    errno.ENOSPC: "free some space, or put hydra.run.dir and AVATAR_CACHE on another disk",
    errno.EDQUOT: "free some space, or put hydra.run.dir and AVATAR_CACHE on another disk",
    errno.EFBIG: "raise the file size limit (ulimit -f) or free some space",
    errno.EROFS: "use a writable hydra.run.dir and AVATAR_CACHE",
    errno.EACCES: "make it writable, or use another hydra.run.dir and AVATAR_CACHE",
    errno.EPERM: "make it writable, or use another hydra.run.dir and AVATAR_CACHE",
}
"""The errnos that say the machine cannot store what a run writes (not a bug in Avatar)."""


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def storage_error(
    error: OSError,
    path: str | os.PathLike[str] | None = None,
    action: str | None = None,
    fallback: str = "a file",
) -> StorageError | None:
    """One line for an ``OSError`` of ``STORAGE_HINTS`` (``None`` for any other errno).

    ``path`` names the file the user knows (the target of an atomic write, not its temp file);
    without it the error's own file name, else ``fallback`` (a failed ``write()`` carries no
    name). ``action`` defaults to "cannot write" for the errnos only a write meets, else
    "cannot access".
    """
    if error.errno not in STORAGE_HINTS:
        return None
    if action is None:
        action = "cannot write" if error.errno in WRITE_ERRNOS else "cannot access"
    where = os.fspath(path) if path is not None else (error.filename or fallback)
    name = errno.errorcode.get(error.errno, str(error.errno))
    reason = error.strerror or os.strerror(error.errno)
    return StorageError(f"{action} {where}: {reason} ({name}); {STORAGE_HINTS[error.errno]}")


def vanished_folder_error(error: OSError) -> StorageError | None:
    """One line for a file whose folder disappeared while the run used it (``None`` otherwise).

    Why: a cache or run folder deleted or moved mid-run (``rm -rf ~/.cache/avatar`` to free
    space, a cleanup job) makes the next append or read fail with ENOENT deep in the stack.
    Avatar creates a file's folders before writing it, so a missing *folder* means someone
    removed it, and the way out is the rerun (what survived is reused). A missing file in an
    existing folder is not this, and keeps its traceback.
    """
    if error.errno != errno.ENOENT or not error.filename:
        return None
    path = Path(os.fsdecode(error.filename))
    missing = path.parent
    if missing.exists():
        return None
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    return StorageError(f"cannot access {path}: the folder {missing} was deleted or moved while the run "
                        "used it; run the same command again (what is left is reused)")


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError`` or the CPU allocator's "can't allocate memory"."""
    text = str(error)
    return type(error).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or (
        "out of memory" in text.lower()
    )


def out_of_memory_hint(batch_size: int, what: str) -> str:
    """One line that says what ran out and what to change."""
    smaller = max(1, batch_size // 2)
    return (
        f"out of memory while {what} at batch size {batch_size}: restrict the space's batch_size "
        f"choices (e.g. to {smaller} and below), lower distill.eval_batch_size, or use "
        "trainer.precision=16-mixed on a GPU"
    )
