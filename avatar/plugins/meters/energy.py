"""Energy (kWh) and CO2 (g) per 1,000 inferences, measured with codecarbon on this machine.

Like ``latency_ms``: the candidate's model is built with random weights (they cost the same
as trained ones) and runs a fixed workload, ``examples`` random sequences of the
candidate's maximum length at batch 1. The workload's energy is scaled to 1,000
inferences, so the number does not depend on how many examples were measured.

``energy_kwh`` and ``co2_g`` come from the same measurement: both meters share one cache
(in memory, and ``<run_dir>/energy_cache.json`` to survive a resume), so asking for both
runs the workload once. Energy is one codecarbon reading of the whole workload, not a
repeat of many, so it has no spread; a workload measured while the CPUs were busy logs one
warning (``avatar.run.timing``), as the latency meter does. Where codecarbon finds no
power sensor the numbers are estimates that track wall time (see ``avatar.run.green``);
the cache records which.
"""

from __future__ import annotations

from typing import Any

from avatar.core.registry import METERS
from avatar.distill.student import random_weight_model
from avatar.search.objectives import MeasuredMeter, MeterContext, RunDirCache
from avatar.search.space import Candidate

CACHE_NAME = "energy_cache.json"

# cache key -> {"energy_kwh", "co2_g", "latency_ms", "estimated"}, per run dir; shared by both meters.
CACHE = RunDirCache(CACHE_NAME)


class _EnergyMeter(MeasuredMeter):
    """Base of both meters: one workload per (candidate, settings), two numbers out of it (the
    cache key holds the settings, not which number a meter reports, so both share it)."""

    direction = "min"
    field = ""
    cache = CACHE

    def __init__(self, examples: int = 100, threads: int = 1, warmup: int = 2, seed: int = 0) -> None:
        self.examples = int(examples)
        self.threads = int(threads)
        self.warmup = int(warmup)
        self.seed = int(seed)

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return float(self.measured(candidate, context)[self.field])

    def _measure(self, candidate: Candidate, context: MeterContext) -> dict[str, Any]:
        from avatar.run.green import inference_workload, random_sequences
        from avatar.run.timing import warn_if_loaded

        with random_weight_model(candidate, context.num_labels, self.seed, self.threads) as model:
            length = int(candidate["max_sequence_length"])
            inputs = random_sequences(model.config.vocab_size, length, self.examples, seed=self.seed)
            result = inference_workload(model, inputs, batch_size=1, warmup=self.warmup, name="energy-meter")
        energy, co2 = result.per_1000()
        if result.load is not None:
            warn_if_loaded(result.load, f"energy of {candidate.architecture_key()}")
        return {"energy_kwh": energy, "co2_g": co2, "latency_ms": result.latency_ms,
                "estimated": result.measurement.estimated}


@METERS.register("energy_kwh")
class EnergyMeter(_EnergyMeter):
    """kWh per 1,000 batch-1 inferences at the candidate's maximum sequence length."""

    field = "energy_kwh"


@METERS.register("co2_g")
class CO2Meter(_EnergyMeter):
    """Grams of CO2-equivalent per 1,000 batch-1 inferences (the energy at the configured grid)."""

    field = "co2_g"
