"""Exact model size in MiB of fp32 parameters, from the parameter-count formula."""

from avatar.core.registry import METERS
from avatar.search.cost import MB, size_bytes
from avatar.search.objectives import Meter, MeterContext
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars


@METERS.register("size_mb")
class SizeMeter(Meter):
    direction = "min"

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return int(size_bytes(candidate_vars(candidate, context.num_labels))) / MB
