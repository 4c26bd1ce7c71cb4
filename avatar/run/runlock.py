"""One run at a time in a run directory.

Why: two runs in one ``hydra.run.dir`` would both append to ``candidates.jsonl``, both
rewrite the search checkpoint and train the same students over each other, and what is
left is a mix of the two. So a run holds an exclusive ``flock`` on
``<run_dir>/.avatar.lock`` while it works; a second run stops at once with one line that
names the holder. The kernel drops the lock when its holder exits, however it exits
(killed, out of memory), so a stale lock never blocks a rerun.

The file stays in place between runs (deleting it would let two runs lock two different
files of the same name); only its content, who holds it, is cleared on release.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from avatar.core.errors import AvatarError
from avatar.core.ranks import distributed_rank

LOCK_NAME = ".avatar.lock"

Result = TypeVar("Result")


def _holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": shlex.join([sys.executable, *sys.argv]) if sys.argv and sys.argv[0] else sys.executable,
    }


def _describe_holder(path: Path) -> str:
    """``pid 12 on host h (python search.py ...), started ...`` from the lock file, as one line."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or "pid" not in record:
        return "another process"  # it has the lock but has not written its name yet
    command = " ".join(str(record.get("command", "?")).split())
    host, started = record.get("host", "?"), record.get("started", "?")
    return f"pid {record['pid']} on host {host} ({command}), started {started}"


@contextmanager
def run_lock(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``<run_dir>/.avatar.lock`` for the block; ``AvatarError`` at once if a run holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    with open(path, "a+", encoding="utf-8") as handle:  # "a+": never truncate a holder's record
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AvatarError(
                f"run directory {run_dir} is in use by {_describe_holder(path)}: "
                "wait for it to finish or use another hydra.run.dir"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_holder_record()) + "\n")
            handle.flush()
            yield path
        finally:
            handle.truncate(0)  # still locked here: nobody reads a record of a finished run
            handle.flush()


def locked_run(function: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``function(cfg, run_dir, ...)`` holding ``run_lock(run_dir)``."""

    @functools.wraps(function)
    def wrapper(cfg: Any, run_dir: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Result:
        if distributed_rank() > 0:  # a DDP rank of the run whose rank 0 holds the lock
            return function(cfg, run_dir, *args, **kwargs)
        with run_lock(run_dir):
            return function(cfg, run_dir, *args, **kwargs)

    return wrapper
