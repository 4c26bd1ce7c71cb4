"""Energy and CO2 of a workload, measured with codecarbon, and where the numbers come from.

Why one tracker per process: ``OfflineEmissionsTracker.start()`` probes the hardware
(RAPL files, NVML, the CPU model and its TDP) and costs about 1.4 s. A report or a search
measures dozens of workloads, so the tracker is built and started once, lazily, and each
workload is one codecarbon *task* (``start_task``/``stop_task``), which costs milliseconds.

Why "estimated" matters: codecarbon reads real energy counters only where the machine has
them (Intel RAPL, Power Gadget, Windows EMI, Apple powermetrics for the CPU; NVML for an
NVIDIA GPU). Elsewhere (most VMs and containers) it *estimates* CPU power from the CPU
load and a TDP, and RAM power from its size; energy then tracks wall time. Every
``Measurement`` says which, and reports must print it. All Avatar inference runs on the
CPU, so a measurement counts as measured only when the CPU power comes from a sensor.

Settings (read once, when the tracker is first built; ``configure_tracker`` overrides):
- country: ``AVATAR_COUNTRY`` (ISO 3166 alpha-3, e.g. ``FRA``), default ``USA``. The grid's
  carbon intensity turns kWh into grams of CO2; codecarbon's offline table has the
  country averages. USA (about 370 g/kWh) sits near the world average, so it is a
  neutral default; set your own country for a meaningful CO2 figure.
- tracking mode: ``AVATAR_TRACKING_MODE``, default ``process``: only this process's CPU
  load (and memory) is attributed to the workload, so other programs on a shared machine
  do not inflate it. ``machine`` counts the whole machine, codecarbon's default.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatar.core.errors import AvatarError
from avatar.run.timing import Load, LoadMonitor, Spread

DEFAULT_COUNTRY = "USA"
DEFAULT_TRACKING_MODE = "process"
#: codecarbon CPU modes backed by an energy counter; ``cpu_load`` and ``constant`` are estimates.
SENSOR_CPU_MODES = frozenset({"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"})


@dataclass(frozen=True)
class Measurement:
    """One workload: wall seconds, energy (kWh) and emissions (grams CO2-equivalent)."""

    seconds: float
    energy_kwh: float
    co2_g: float
    estimated: bool


@dataclass(frozen=True)
class InferenceMeasurement:
    """N examples at a fixed batch size: median latency per call and the energy of all N.

    ``outputs`` holds the logits (N, labels) in input order when the workload produced them,
    so a report scores the very predictions it timed. ``latency`` is the spread of the
    per-call times (over examples of different lengths, so wider than noise alone) and
    ``load`` how busy our CPUs were meanwhile (``avatar.run.timing``).
    """

    n: int
    batch_size: int
    latency_ms: float
    measurement: Measurement
    outputs: np.ndarray | None = None
    latency: Spread | None = None
    load: Load | None = None

    def per_1000(self) -> tuple[float, float]:
        """(kWh, g CO2) per 1,000 examples, extrapolated linearly from the N measured."""
        scale = 1000.0 / self.n
        return self.measurement.energy_kwh * scale, self.measurement.co2_g * scale


# ---- the process-wide tracker --------------------------------------------------------------------

_lock = threading.Lock()
_tracker: Any = None
_settings: dict[str, str] = {}
_starts = 0  # how many times a tracker was started in this process (tests check it stays 1)
_task_ids = itertools.count()


def _valid_countries() -> set[str]:
    from codecarbon.input import DataSource

    return set(DataSource().get_global_energy_mix_data())


def configure_tracker(country_iso_code: str | None = None, tracking_mode: str | None = None) -> None:
    """Choose the country and tracking mode before the first measurement.

    Raises ``AvatarError`` once the tracker runs with other settings: codecarbon cannot
    change them in place, and a second tracker would cost another start.
    """
    wanted = {
        "country_iso_code": (country_iso_code or os.environ.get("AVATAR_COUNTRY") or DEFAULT_COUNTRY).upper(),
        "tracking_mode": tracking_mode or os.environ.get("AVATAR_TRACKING_MODE") or DEFAULT_TRACKING_MODE,
    }
    if wanted["tracking_mode"] not in ("process", "machine"):
        raise AvatarError(f"tracking mode must be 'process' or 'machine', got {wanted['tracking_mode']!r}")
    with _lock:
        if _tracker is not None:
            if wanted != _settings:
                raise AvatarError(f"the energy tracker already runs with {_settings}; configure it first")
            return
        if wanted["country_iso_code"] not in _valid_countries():
            raise AvatarError(
                f"unknown country {wanted['country_iso_code']!r} for CO2 intensity: use an ISO 3166 "
                "alpha-3 code from codecarbon's energy mix table (e.g. USA, FRA, DEU, CHN)"
            )
        _settings.clear()
        _settings.update(wanted)


def get_tracker() -> Any:
    """The process's ``OfflineEmissionsTracker``, built and started on first use, then reused."""
    global _tracker, _starts
    if _tracker is not None:
        return _tracker
    if not _settings:
        configure_tracker()
    with _lock:
        if _tracker is None:
            from codecarbon import OfflineEmissionsTracker

            # codecarbon's import sets its logger to INFO, and the constructor logs before
            # applying log_level: quieten it first.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            tracker = OfflineEmissionsTracker(
                country_iso_code=_settings["country_iso_code"], tracking_mode=_settings["tracking_mode"],
                save_to_file=False, log_level="error", project_name="avatar",
            )
            tracker.start()
            _starts += 1
            atexit.register(tracker.stop)
            _tracker = tracker
    return _tracker


def tracker_starts() -> int:
    return _starts


def cpu_sensor_mode() -> str:
    """How codecarbon obtains CPU power here: ``intel_rapl`` etc. (measured) or ``cpu_load`` (estimated)."""
    for hardware in get_tracker()._hardware:  # codecarbon exposes no public accessor
        mode = getattr(hardware, "_mode", None)
        if type(hardware).__name__ == "CPU" and mode:
            return str(mode)
        if type(hardware).__name__ == "AppleSiliconChip":
            return "apple_powermetrics"
    return "unknown"


def energy_is_estimated() -> bool:
    return cpu_sensor_mode() not in SENSOR_CPU_MODES


def energy_source() -> str:
    """One line for reports: what codecarbon read or assumed, and the grid it priced CO2 at."""
    tracker = get_tracker()
    parts = [repr(h) for h in tracker._hardware]
    kind = "estimated" if energy_is_estimated() else "measured"
    from codecarbon import __version__

    return (f"{kind} by codecarbon {__version__}: {', '.join(parts)}; tracking mode "
            f"{_settings['tracking_mode']}; CO2 at the {_settings['country_iso_code']} grid average")


def machine_info() -> dict[str, Any]:
    """CPU model, logical CPUs and torch threads: the context every latency or energy needs."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info


# ---- measuring ------------------------------------------------------------------------------------

def measure_workload(fn: Callable[[], Any], name: str = "workload") -> Measurement:
    """Run ``fn()`` once as one codecarbon task; its wall time, energy and CO2.

    Workloads must not nest (codecarbon tracks one task at a time). Short workloads (well
    under a second) get coarse estimates: codecarbon samples power, so measure enough work.
    """
    tracker = get_tracker()
    if tracker._active_task is not None:
        raise AvatarError(f"cannot measure {name!r} inside another measured workload")
    task_name = f"{name}-{next(_task_ids)}"  # codecarbon renames a reused name and then loses it
    tracker.start_task(task_name)
    start = time.perf_counter()
    try:
        fn()
    finally:
        seconds = time.perf_counter() - start
        data = tracker.stop_task(task_name)
    if data is None:
        raise AvatarError(f"codecarbon could not measure {name!r} (see its log above)")
    return Measurement(seconds=seconds, energy_kwh=float(data.energy_consumed),
                       co2_g=float(data.emissions) * 1000.0, estimated=energy_is_estimated())


def _is_predictor(obj: Any) -> bool:
    return hasattr(obj, "logits") and hasattr(obj, "encode")


def _call(model_or_predictor: Any, batch: Sequence[Any]) -> np.ndarray:
    """Logits of one batch: a Predictor takes code (tokenised inside), a torch model token ids."""
    if _is_predictor(model_or_predictor):
        return np.asarray(model_or_predictor.logits(list(batch), batch_size=len(batch)))
    import torch

    rows = [torch.as_tensor(item).reshape(-1) for item in batch]
    if len({len(r) for r in rows}) != 1:
        raise AvatarError("token-id examples in one batch must have the same length")
    with torch.inference_mode():
        output = model_or_predictor(input_ids=torch.stack(rows))
    logits = output.logits if hasattr(output, "logits") else output
    return logits.float().numpy()


def inference_workload(model_or_predictor: Any, examples: Sequence[Any], batch_size: int = 1,
                       warmup: int = 2, name: str = "inference") -> InferenceMeasurement:
    """Run ``examples`` through a model in batches; median ms per batch and the energy of them all.

    ``model_or_predictor`` is an ``avatar.report.predict.Predictor`` (examples are code strings or
    pairs; latency includes tokenisation, as a deployed model pays it) or a torch module
    called as ``model(input_ids=...)`` (examples are 1-D token-id tensors or arrays). The
    first ``warmup`` batches run untimed and unmeasured first (lazy initialisation, caches).
    """
    if not examples:
        raise AvatarError("inference workload with no examples")
    if batch_size < 1:
        raise AvatarError(f"batch size must be at least 1, got {batch_size}")
    batches = [list(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]
    for batch in batches[:warmup]:
        _call(model_or_predictor, batch)
    times: list[float] = []
    outputs: list[np.ndarray] = []

    def run() -> None:
        for batch in batches:
            start = time.perf_counter()
            outputs.append(_call(model_or_predictor, batch))
            times.append((time.perf_counter() - start) * 1000.0)

    with LoadMonitor() as monitor:
        measurement = measure_workload(run, name)
    return InferenceMeasurement(n=len(examples), batch_size=batch_size, latency_ms=statistics.median(times),
                                measurement=measurement, outputs=np.concatenate(outputs),
                                latency=Spread.from_ms(times, name), load=monitor.load)


def random_sequences(vocab_size: int, length: int, count: int, seed: int = 0) -> list[Any]:
    """``count`` random token-id rows (ids from 5 up, clear of RoBERTa's special tokens)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    low = 5 if vocab_size > 6 else 0
    return list(torch.randint(low, vocab_size, (count, length), generator=generator))
