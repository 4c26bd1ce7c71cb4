"""The report's latencies: every model re-timed with the others, round-robin, median and IQR.

Why re-timed: each model's quality and energy pass runs alone, one model after another, so
a burst of load during the teacher's pass once made it look 100 times slower than it was.
Here every model of the report (teacher, students, their ONNX and int8 exports, the
baseline) runs ``repeats`` rounds; a round runs the first ``examples`` measured examples
through each model in turn (A, B, C, A, B, C ...), so load changes hit them all alike.
A repeat is one pass over those examples, in ms per example, at batch 1 with tokenisation
(as a deployed model pays it); each row gets the median and the IQR over its repeats, and
the report a note on how it was timed and whether the CPUs were busy meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from avatar.report.rows import ReportRow, set_latency
from avatar.run.executor import torch_threads
from avatar.run.timing import Load, Spread, time_round_robin, warn_if_loaded
from avatar.task.base import Task

log = logging.getLogger("avatar")


@dataclass(frozen=True)
class Timing:
    """How the report's latencies were timed, and the load meanwhile."""

    repeats: int
    examples: int
    models: int
    load: Load

    def notes(self) -> list[str]:
        """The report's lines on the latencies (without the leading ``- ``)."""
        lines = [
            f"Latency: {self.repeats} repeats per model, each one pass over the first {self.examples} "
            f"measured examples; the {self.models} models ran round-robin (one pass each in turn), so "
            "load changes hit them alike. Shown: the median ms per example [25th-75th percentile]; "
            "latencies whose ranges overlap are not told apart."
        ]
        if self.load.loaded:
            lines.append(f"**Loaded machine** while timing the latencies ({self.load.describe()}): the "
                         "latencies and their ratios are unreliable; rerun on an idle machine.")
        return lines


def _per_example(spread: Spread, examples: int) -> Spread:
    return Spread(spread.median_ms / examples, spread.q1_ms / examples, spread.q3_ms / examples,
                  spread.repeats)


def _predictor_call(row: ReportRow, codes: Sequence[Any]) -> Callable[[], object]:
    from avatar.report.predict import Predictor

    predictor = Predictor.load(row.path, backend=row.backend)
    return lambda: predictor.logits(list(codes), batch_size=1)


def _architecture_call(stack: ExitStack, architecture: Mapping[str, Any], task: Task, examples: int,
                       threads: int) -> Callable[[], object]:
    """The teacher known by its architecture: random weights on random full-length sequences, as
    ``measure_architecture`` timed it."""
    import torch

    from avatar.distill.student import random_weight_model
    from avatar.run.green import random_sequences
    from avatar.search.space import Candidate

    candidate = Candidate.from_dict(dict(architecture))
    model = stack.enter_context(random_weight_model(candidate, task.num_labels, seed=0, threads=threads))
    inputs = random_sequences(model.config.vocab_size, int(candidate["max_sequence_length"]), examples)

    def call() -> None:
        with torch.inference_mode():
            for ids in inputs:
                model(input_ids=ids.reshape(1, -1))

    return call


def interleave_latencies(rows: Sequence[ReportRow], task: Task, split: str, repeats: int = 10,
                         examples: int = 10, threads: int | None = None,
                         teacher_architecture: Mapping[str, Any] | None = None,
                         baseline: Any = None) -> Timing | None:
    """Re-time every row's latency round-robin (see the module docstring); None when none can be.

    A row is timed from its folder (``row.path`` and ``row.backend``); the teacher row with no
    folder from ``teacher_architecture``; the ``baseline`` row from its fitted model. A row
    with none of these keeps the latency of its own pass.
    """
    import torch

    codes = [e.code for e in task.read_split(split)[: max(1, examples)]]  # type: ignore[arg-type]
    if not codes or repeats < 1:
        return None
    with torch_threads(threads), ExitStack() as stack:
        used = torch.get_num_threads()
        calls: dict[str, Callable[[], object]] = {}
        timed: dict[str, ReportRow] = {}
        for index, row in enumerate(rows):
            key = f"{index}:{row.name}"
            if row.path and row.backend in ("torch", "onnx", "int8"):
                calls[key] = _predictor_call(row, codes)
            elif row.kind == "teacher" and teacher_architecture:
                calls[key] = _architecture_call(stack, teacher_architecture, task, len(codes), used)
            elif row.kind == "baseline" and baseline is not None:
                calls[key] = lambda model=baseline: [model.logits([code]) for code in codes]
            else:
                continue
            timed[key] = row
        if not calls:
            return None
        log.info("report: timing %d models round-robin, %d repeats of %d examples", len(calls), repeats,
                 len(codes))
        spreads, load = time_round_robin(calls, repeats=repeats, warmup=1)
    for key, row in timed.items():
        set_latency(row, _per_example(spreads[key], len(codes)), load.loaded)
    warn_if_loaded(load, "the report's latencies were")
    return Timing(repeats=repeats, examples=len(codes), models=len(calls), load=load)
