"""Latency a user can trust: a spread over repeats, models interleaved, and the machine's load.

Why a spread: one median hides how noisy it was. On a loaded machine a 1-layer student once
measured 25 ms against its 2-layer teacher's 9.9 ms, and a teacher 129.6 ms that measured
1.15 ms a minute later. Every latency here is the median *and* the interquartile range
(IQR, 25th to 75th percentile) over repeats; two numbers whose IQRs overlap are not told apart.

Why interleaved: models compared in one report (teacher and students, torch, ONNX and int8)
run their repeats round-robin (A, B, C, A, B, C ...), so a burst of load hits every model
alike instead of whichever model was being timed then; their ratios stay fair.

Why our own loop around ``torch.utils.benchmark``: its ``Timer`` times one statement at a
time (``blocked_autorange``) and ``Timer.timeit`` warms up twice per measurement, so it cannot
interleave models without tripling the cost of each repeat. The loop times each call with
``time.perf_counter`` (the clock ``Timer`` uses on a CPU) with the garbage collector off
(as ``timeit`` does), and the statistics are ``torch.utils.benchmark.Measurement``'s
(median, 25th and 75th percentiles).

Why the load is measured from the scheduler: the load average lags (a 1-minute mean) and
counts processes on CPUs we may not run on (a benchmark pinned to another core). Linux
records, per thread, the time it was runnable but waited for a CPU
(``/proc/self/task/<tid>/schedstat``, the run-queue delay): that is exactly the time other
work took from our measurement, on the CPUs we may use, during it and nowhere else. A
measurement is *loaded* when our threads waited more than ``WAIT_LIMIT`` of its wall time.
Where the kernel gives no schedstat (macOS, Windows, some kernels) the 1-minute load
average before and after, above the CPUs this process may use, decides instead.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("avatar")

WAIT_LIMIT = 0.10
"""Share of the measuring wall time our threads may wait for a CPU before it counts as loaded."""


@dataclass(frozen=True)
class Spread:
    """Milliseconds per call over ``repeats`` repeats: median, 25th (``q1``) and 75th (``q3``) percentiles."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @property
    def relative_iqr(self) -> float:
        """IQR / median: 0.05 means the middle half of the repeats lie within 5% of the median's size."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0

    def overlaps(self, other: Spread) -> bool:
        """Whether the two IQRs overlap: the measurements do not tell the two latencies apart."""
        return self.q1_ms <= other.q3_ms and other.q1_ms <= self.q3_ms

    def describe(self) -> str:
        """``1.23 ms (IQR 1.20-1.31, 10 repeats)``: one log line's worth."""
        return f"{self.median_ms:.3g} ms (IQR {self.q1_ms:.3g}-{self.q3_ms:.3g}, {self.repeats} repeats)"

    @classmethod
    def from_ms(cls, times_ms: Sequence[float], label: str = "latency") -> Spread:
        """The spread of ``times_ms`` with ``torch.utils.benchmark``'s statistics."""
        import torch
        from torch.utils.benchmark import Measurement, TaskSpec

        if not times_ms:
            raise ValueError("a spread needs at least one time")
        measurement = Measurement(number_per_run=1, raw_times=[t / 1000.0 for t in times_ms],
                                  task_spec=TaskSpec(stmt=label, setup="pass"))
        # Measurement exposes the median and the IQR, not the IQR's ends: its lower end is the
        # same (linear) quantile of the same times, taken with torch.
        q1 = float(torch.tensor(sorted(times_ms), dtype=torch.float64).quantile(0.25))
        return cls(median_ms=measurement.median * 1000.0, q1_ms=q1, q3_ms=q1 + measurement.iqr * 1000.0,
                   repeats=len(times_ms))

    def as_dict(self) -> dict[str, float | int]:
        return {"latency_ms": self.median_ms, "latency_q1_ms": self.q1_ms, "latency_q3_ms": self.q3_ms,
                "latency_repeats": self.repeats}


@dataclass(frozen=True)
class Load:
    """How busy the CPUs we may use were while we measured (see the module docstring)."""

    seconds: float
    # Run-queue delay of all our threads / wall time (above 1 when several threads wait at
    # once, e.g. more threads than allowed CPUs); None without schedstat.
    waited: float | None
    load_before: float | None  # 1-minute load average; None where the platform has none
    load_after: float | None
    cpus: int  # CPUs this process may run on

    @property
    def loaded(self) -> bool:
        if self.waited is not None:
            return self.waited > WAIT_LIMIT
        averages = [v for v in (self.load_before, self.load_after) if v is not None]
        return bool(averages) and max(averages) > self.cpus

    def describe(self) -> str:
        """What was measured, for a warning or a report note."""
        parts = []
        if self.waited is not None:
            waited = self.waited * self.seconds
            parts.append(f"our threads waited {waited:.2f} s for a CPU during {self.seconds:.2f} s")
        if self.load_before is not None and self.load_after is not None:
            parts.append(f"1-minute load average {self.load_before:.2f} then {self.load_after:.2f}")
        parts.append(f"{self.cpus} CPU{'s' if self.cpus != 1 else ''} allowed")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "load": self.describe()}


def allowed_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. under ``taskset``), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run_delays() -> dict[str, int] | None:
    """Nanoseconds each of our threads has waited on a run queue so far; None without schedstat."""
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return None
    delays: dict[str, int] = {}
    for task in tasks:
        try:
            delays[task.name] = int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile, or no schedstat for it
    return delays or None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass
class LoadMonitor:
    """Measures the load around a block: ``with LoadMonitor() as monitor: ...``, then ``monitor.load``."""

    load: Load | None = None
    _start: float = 0.0
    _delays: dict[str, int] | None = None
    _average: float | None = None

    def __enter__(self) -> LoadMonitor:
        self._average = _load_average()
        self._delays = _run_delays()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = max(time.perf_counter() - self._start, 1e-9)
        after = _run_delays()
        waited = None
        if self._delays is not None and after is not None:
            ns = sum(max(value - self._delays.get(tid, 0), 0) for tid, value in after.items())
            waited = ns / 1e9 / seconds
        self.load = Load(seconds=seconds, waited=waited, load_before=self._average,
                         load_after=_load_average(), cpus=allowed_cpus())


def warn_if_loaded(load: Load, what: str) -> None:
    """One warning line when ``load`` says the CPUs were busy: ``what``'s latency is not to be trusted."""
    if load.loaded:
        log.warning("%s measured on a loaded machine (%s): latencies are unreliable, rerun on an idle "
                    "machine", what, load.describe())


@contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_round_robin(calls: Mapping[str, Callable[[], object]], repeats: int,
                     warmup: int = 1) -> tuple[dict[str, Spread], Load]:
    """Each call's spread over ``repeats`` rounds, the calls interleaved in each round, and the load.

    ``warmup`` untimed rounds run first (lazy initialisation, caches). Every round times each
    call once, in the order given (A, B, C, A, B, C ...), so load changes hit them alike.
    """
    if not calls:
        raise ValueError("nothing to time")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(max(warmup, 0)):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    with _gc_off(), LoadMonitor() as monitor:
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - start) * 1000.0)
    assert monitor.load is not None
    return {name: Spread.from_ms(values, name) for name, values in times.items()}, monitor.load
