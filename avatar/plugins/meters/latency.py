"""Measured latency: batch 1 at the candidate's sequence length on this machine.

Why measured and not predicted: FLOPs miss memory traffic and kernel overheads that
dominate tiny models; users quote milliseconds. Random weights cost the same as
trained ones, so a candidate is timed before it is ever trained. Results are cached per
candidate and settings (``RunDirCache``: in memory and ``<run_dir>/latency_cache.json``, so a
resume measures nothing twice).

Why a spread and a load check: a median alone hides noise, and a busy machine once made
a 1-layer student look slower than its 2-layer teacher. The cache keeps the median, the
interquartile range over the ``runs`` repeats and whether the CPUs were loaded meanwhile
(``avatar.run.timing``); a loaded measurement logs one warning. The objective is the median.
"""

from __future__ import annotations

from typing import Any

from avatar.core.registry import METERS
from avatar.distill.student import random_weight_model
from avatar.run.timing import Load, Spread, time_round_robin, warn_if_loaded
from avatar.search.objectives import MeasuredMeter, MeterContext, RunDirCache
from avatar.search.space import Candidate


def time_forward(model: object, input_ids: object, runs: int, warmup: int) -> tuple[Spread, Load]:
    """Spread of ``model(input_ids)`` over ``runs`` repeats after ``warmup`` untimed calls, and the load."""
    import torch

    def call() -> None:
        model(input_ids=input_ids)  # type: ignore[operator]

    with torch.inference_mode():
        spreads, load = time_round_robin({"forward": call}, repeats=max(int(runs), 1), warmup=warmup)
    return spreads["forward"], load


@METERS.register("latency_ms")
class LatencyMeter(MeasuredMeter):
    direction = "min"
    cache = RunDirCache("latency_cache.json")

    def __init__(self, threads: int = 1, runs: int = 10, warmup: int = 2, seed: int = 0) -> None:
        self.threads = threads
        self.runs = runs
        self.warmup = warmup
        self.seed = seed

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        value = self.measured(candidate, context)
        # A float is an entry cached before spreads were kept: its median, still valid.
        return float(value["latency_ms"] if isinstance(value, dict) else value)

    def _measure(self, candidate: Candidate, context: MeterContext) -> dict[str, Any]:
        import torch

        with random_weight_model(candidate, context.num_labels, self.seed, self.threads) as model:
            generator = torch.Generator().manual_seed(self.seed)
            length = int(candidate["max_sequence_length"])
            input_ids = torch.randint(5, model.config.vocab_size, (1, length), generator=generator)
            spread, load = time_forward(model, input_ids, self.runs, self.warmup)
        warn_if_loaded(load, f"latency of {candidate.architecture_key()}")
        return {**spread.as_dict(), **load.as_dict()}
