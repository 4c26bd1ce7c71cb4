"""Memory budget: one training step of the student fits in ``max_gb`` GiB of RAM.

Why a constraint: the paper's space is bounded by parameters only, and a 3 MiB student can
still need 20 GB or more of activations at its batch size (``avatar.search.cost.
training_memory_bytes``); on a laptop such a candidate is not slow, it is killed. Pruning it
with z3 before the search means neither the surrogate's brief runs nor a final student ever
start one. Set ``max_gb`` to what one training may take: the machine's RAM divided by the
trainings that run at once (``executor`` workers).
"""

from typing import Any

from avatar.core.registry import CONSTRAINTS
from avatar.search.cost import PARAMETER_DIMENSIONS, training_memory_bytes
from avatar.search.smt import Constraint
from avatar.search.variables import Vars

GIB = 2**30


@CONSTRAINTS.register("train_memory")
class TrainMemoryConstraint(Constraint):
    dimensions = (*PARAMETER_DIMENSIONS, "batch_size")

    def __init__(self, max_gb: float = 8.0) -> None:
        if max_gb <= 0:
            raise ValueError(f"train_memory: max_gb must be positive, got {max_gb}")
        self.max_gb = float(max_gb)

    def expression(self, x: Vars) -> Any:
        return training_memory_bytes(x) <= int(self.max_gb * GIB)

    def describe(self) -> str:
        return f"train_memory(max_gb={self.max_gb:g})"
