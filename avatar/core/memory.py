"""Keep freed memory in the process, so CPU training does not page-fault its way through every step.

Why: glibc's malloc serves an allocation above its mmap threshold (32 MiB at most) with a
fresh ``mmap`` and gives it back to the kernel on ``free``, so the next step's tensor of the
same size faults every page in again. A student's attention scores are batch x heads x
tokens x tokens floats: 33.5 MiB for 32 pairs of 512 tokens and one head, just over the
threshold, and larger for every wider candidate. Measured on real training steps of the
`context` student (one thread, the machine shared with two distillations; in-process A/B,
twice): 1.2 million page faults and 3.1 s of kernel time per 5 steps with glibc's defaults,
none with this; 14.6 and 15.0 examples/s against 29.1 and 26.4. In 60-minute distillations the
kernel took 24-43% of the training processes' CPU time.

``keep_freed_memory`` tells glibc (``mallopt``) to serve every allocation from its heap and
never trim it: a training process keeps its peak memory until it exits, which is what it
needs again at the next step. Training calls it (``build_trainer``, the training-throughput
meter); a process that only predicts (``avatar serve``) does not, so it gives memory back.
Elsewhere than glibc (macOS, musl) nothing changes. ``AVATAR_KEEP_FREED_MEMORY=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
OFF_SWITCH = "AVATAR_KEEP_FREED_MEMORY"
_applied: bool | None = None  # once per process


def keep_freed_memory() -> bool:
    """Keep freed memory in this process from now on (glibc only); whether it is in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(OFF_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): its own allocator stays
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # no mmap for large blocks (they come from the heap and stay there), and no trimming of the heap
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    if _applied:
        log.debug("glibc malloc: freed memory kept in the process (%s=0 turns this off)", OFF_SWITCH)
    return _applied
