"""The examples a student sees within its budget: measured training throughput x the budget.

Why: on a CPU, inside one 3 MiB size budget, the training cost of a candidate varies more
than 10x (long sequences, many layers, large vocabularies, relative positions), and a
student given 30 minutes learns from the examples it gets through. On the indicator ground
truth (``bench/indicator_bench.py``: Latin-hypercube candidates of the paper's whole
space distilled for 30 minutes on real BigCloneBench), the examples each candidate saw
ranked their test accuracy better than the zero-cost proxies did (docs/benchmarks.md,
"Indicator variants against the ground truth"). This indicator predicts that number before
any student trains: a few real training steps of the untrained candidate
(``meters=trainable``'s measurement, shared with it through the run directory's cache)
times the students' wall-clock budget (``trainer.max_time``).

It sees no data and no teacher, so it cannot tell a student that would learn nothing at
its learning rate from one that would; what it predicts is the budget's share of the
candidate, which is why the budget must be a time: with a budget in epochs every student
sees the same examples.
"""

from __future__ import annotations

import math

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS
from avatar.plugins.meters.training import TrainingThroughputMeter
from avatar.search.objectives import EffectivenessIndicator, MeterContext
from avatar.search.space import Candidate


@INDICATORS.register("budget_examples")
class BudgetExamplesIndicator(EffectivenessIndicator):
    """``log10`` of the training examples the candidate would see within the students' budget."""

    needs_knowledge = False

    def __init__(self, threads: int = 1, runs: int = 3, warmup: int = 1, seed: int = 0,
                 max_seconds: float = 10.0) -> None:
        self.meter = TrainingThroughputMeter(threads=threads, runs=runs, warmup=warmup, seed=seed,
                                             max_seconds=max_seconds)

    def prepare(self, context: MeterContext) -> None:
        budget_seconds(context)  # a budget in epochs fails before the search starts

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        return math.log10(self.meter.measure(candidate, context) * budget_seconds(context))


def budget_seconds(context: MeterContext) -> float:
    """The students' wall-clock budget, or one line saying it must be a time."""
    if not context.student_seconds:
        raise AvatarError(
            "indicator=budget_examples predicts the examples a student sees within its time budget: "
            "set trainer.max_time (e.g. trainer.max_time=00:00:30:00); with a budget in epochs every "
            "student sees the same examples"
        )
    return float(context.student_seconds)
