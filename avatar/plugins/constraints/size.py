"""Size budget: the exact fp32 parameter bytes of the student stay under ``max_mb`` MiB."""

from typing import Any

from avatar.core.registry import CONSTRAINTS
from avatar.search.cost import MB, PARAMETER_DIMENSIONS, size_bytes
from avatar.search.smt import Constraint
from avatar.search.variables import Vars


@CONSTRAINTS.register("size")
class SizeConstraint(Constraint):
    dimensions = PARAMETER_DIMENSIONS

    def __init__(self, max_mb: float = 3.0, min_mb: float = 0.0) -> None:
        if max_mb <= 0:
            raise ValueError(f"size: max_mb must be positive, got {max_mb}")
        self.max_mb = float(max_mb)
        self.min_mb = float(min_mb)

    def expression(self, x: Vars) -> Any:
        size = size_bytes(x)
        # integers on both sides: z3 stays in integer arithmetic
        upper = size <= int(self.max_mb * MB)
        return x.all([upper, size >= int(self.min_mb * MB)]) if self.min_mb > 0 else upper

    def describe(self) -> str:
        return f"size(max_mb={self.max_mb:g})" + (f"(min_mb={self.min_mb:g})" if self.min_mb else "")
