"""Measured training throughput: examples per second of a real training step on this machine.

Why: a candidate's training cost varies about 8x inside one size budget on a CPU (many
tiny heads and long sequences are memory-bound; docs/benchmarks.md), and FLOPs do not see it. A
student a laptop cannot train in a day is no use to its user, so the search can weigh
this number (``meters=trainable``: maximise it beside effectiveness and size).

The step is the students' own: the candidate's model with random weights (``train()``
mode, dropout on), a batch of ``batch_size`` random sequences of its full length, the
distillation loss against random teacher logits, backward and an AdamW update. The
median of ``runs`` timed steps after ``warmup`` untimed ones gives examples/s, but a slow
candidate stops early: once the timed steps add up to ``max_seconds``, or at once when an
untimed warmup step alone took that long (that step is then the measurement; its first-call
overhead is small beside a step that slow). Why: the slowest students of the paper's space
take 20-30 s a step on one core, so four steps cost up to two minutes a candidate, and a
search visits hundreds; such a candidate is slow whatever its exact value. Results are
cached per candidate and settings (``<run_dir>/train_speed_cache.json``), so a resumed
search measures nothing twice.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from avatar.core.memory import keep_freed_memory
from avatar.core.registry import METERS
from avatar.distill.student import random_weight_model
from avatar.search.objectives import MeasuredMeter, MeterContext, RunDirCache
from avatar.search.space import Candidate

if TYPE_CHECKING:
    import torch


def distillation_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: torch.nn.Module,
                      input_ids: torch.Tensor, attention_mask: torch.Tensor, teacher: torch.Tensor,
                      bf16: bool = False) -> None:
    """One training step of a student as distillation runs it: forward (bf16 autocast when asked),
    the loss against the teacher's logits, backward, the optimiser's update. Shared by this meter
    and ``bench/group_by_length_bench.py``, so both time the same step."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    loss_fn(logits, teacher).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@METERS.register("train_examples_per_s")
class TrainingThroughputMeter(MeasuredMeter):
    direction = "max"
    cache = RunDirCache("train_speed_cache.json")
    per_architecture = False  # the batch size and dropouts change a training step

    def __init__(self, threads: int = 1, runs: int = 3, warmup: int = 1, seed: int = 0,
                 bf16: bool = False, max_seconds: float = 10.0) -> None:
        if runs < 1 or warmup < 0 or threads < 1 or max_seconds < 0:
            raise ValueError(f"need runs >= 1, warmup >= 0, threads >= 1, max_seconds >= 0; got {runs}, "
                             f"{warmup}, {threads}, {max_seconds}")
        self.threads = threads
        self.runs = runs
        self.warmup = warmup
        self.seed = seed
        self.bf16 = bf16
        self.max_seconds = float(max_seconds)
        self._steps_timed = 0  # of the last measurement (private: not a setting, not in the cache key)

    def _measure(self, candidate: Candidate, context: MeterContext) -> float:
        import torch

        from avatar.learn.losses import KLDivergence

        loss_fn = KLDivergence(temperature=2.0)
        keep_freed_memory()  # as the students' training will (avatar.core.memory)

        batch, length = int(candidate["batch_size"]), int(candidate["max_sequence_length"])
        with random_weight_model(candidate, context.num_labels, self.seed, self.threads) as model:
            model.train()
            generator = torch.Generator().manual_seed(self.seed)
            input_ids = torch.randint(5, model.config.vocab_size, (batch, length), generator=generator)
            mask = torch.ones_like(input_ids)
            teacher = torch.randn(batch, context.num_labels, generator=generator)
            optimizer = torch.optim.AdamW(model.parameters(), lr=float(candidate["learning_rate"]))
            seconds: list[float] = []
            for step in range(self.warmup + self.runs):
                started = time.perf_counter()
                distillation_step(model, optimizer, loss_fn, input_ids, mask, teacher, self.bf16)
                took = time.perf_counter() - started
                if step < self.warmup:
                    if took >= self.max_seconds:  # too slow to spend more steps on
                        seconds = [took]
                        break
                    continue
                seconds.append(took)
                if sum(seconds) >= self.max_seconds:
                    break
        self._steps_timed = len(seconds)
        return batch / statistics.median(seconds)
