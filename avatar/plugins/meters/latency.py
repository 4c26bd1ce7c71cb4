"""Measured latency: batch 1 at the candidate's sequence length on this machine.

Why measured and not predicted: FLOPs miss memory traffic and kernel overheads that
dominate tiny models; users quote milliseconds. Random weights cost the same as
trained ones, so a candidate is timed before it is ever trained. Results are cached per
candidate and settings (``RunDirCache``: in memory and ``<run_dir>/latency_cache.json``, so a
resume measures nothing twice).
"""

from __future__ import annotations

import statistics
import time

from avatar.core.registry import METERS
from avatar.distill.student import random_weight_model
from avatar.search.objectives import MeasuredMeter, MeterContext, RunDirCache
from avatar.search.space import Candidate


def time_forward(model: object, input_ids: object, runs: int, warmup: int) -> float:
    """Median milliseconds of ``model(input_ids)`` after ``warmup`` untimed calls."""
    import torch

    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(input_ids=input_ids)  # type: ignore[operator]
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@METERS.register("latency_ms")
class LatencyMeter(MeasuredMeter):
    direction = "min"
    cache = RunDirCache("latency_cache.json")

    def __init__(self, threads: int = 1, runs: int = 10, warmup: int = 2, seed: int = 0) -> None:
        self.threads = threads
        self.runs = runs
        self.warmup = warmup
        self.seed = seed

    def _measure(self, candidate: Candidate, context: MeterContext) -> float:
        import torch

        with random_weight_model(candidate, context.num_labels, self.seed, self.threads) as model:
            generator = torch.Generator().manual_seed(self.seed)
            length = int(candidate["max_sequence_length"])
            input_ids = torch.randint(5, model.config.vocab_size, (1, length), generator=generator)
            return time_forward(model, input_ids, self.runs, self.warmup)
