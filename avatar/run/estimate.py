"""How long a run will take on this machine, said before it starts.

Why: the demo's time depends on the machine and on its load at that moment (2 min 21 s on
an idle 2-core machine, 14 min on a busy one), and a new user waiting without a number
gives up. An experiment records its reference: its whole wall time measured once, and the
time a fixed probe took at that moment on that machine. The run times the same probe now
(about half a second: one thread of small matrix products forward and backward, the work a
tiny student's training step does) and scales the reference by the ratio, which carries
both the machine's speed and its load.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from typing import Any

from avatar.core.progress import duration_text

log = logging.getLogger("avatar")


def probe_seconds(repeats: int = 5) -> float:
    """The median time of a fixed single-thread workload (forward and backward of small layers)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        weights = [torch.randn(128, 128, generator=generator, requires_grad=True) for _ in range(4)]
        batch = torch.randn(64, 128, generator=generator)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(40):
                out = batch
                for weight in weights:
                    out = torch.tanh(out @ weight)
                out.sum().backward()
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        torch.set_num_threads(threads)


def expected_seconds(reference: Mapping[str, Any], probe: float) -> float:
    """The reference run's wall time, scaled by how much slower the probe is now than then."""
    return float(reference["seconds"]) * probe / float(reference["probe_seconds"])


def say_expected(reference: Mapping[str, Any] | None, name: str) -> None:
    """Log the expected total time of the run described by ``reference`` (no reference: nothing)."""
    if not reference:
        return
    probe = probe_seconds()
    seconds = expected_seconds(reference, probe)
    ratio = probe / float(reference["probe_seconds"])
    log.info("%s: expected about %s on this machine now (%s on the reference machine; the probe runs "
             "%.1fx %s here)", name, duration_text(seconds), duration_text(float(reference["seconds"])),
             ratio if ratio >= 1 else 1 / ratio, "slower" if ratio >= 1 else "faster")

