"""Compute budget: forward GFLOPs at batch 1 over the full sequence stay under ``max_gflops``."""

from typing import Any

from avatar.core.registry import CONSTRAINTS
from avatar.search.cost import forward_flops
from avatar.search.smt import Constraint
from avatar.search.variables import Vars


@CONSTRAINTS.register("flops")
class FlopsConstraint(Constraint):
    dimensions = (
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "max_sequence_length",
        "position_embedding_type",
    )

    def __init__(self, max_gflops: float = 1.0) -> None:
        if max_gflops <= 0:
            raise ValueError(f"flops: max_gflops must be positive, got {max_gflops}")
        self.max_gflops = float(max_gflops)

    def expression(self, x: Vars) -> Any:
        return forward_flops(x) <= int(self.max_gflops * 1e9)

    def describe(self) -> str:
        return f"flops(max_gflops={self.max_gflops:g})"
