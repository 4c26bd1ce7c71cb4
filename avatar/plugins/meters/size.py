"""Exact model size in MiB of fp32 parameters, from the parameter-count formula."""

from avatar.cost import MB, size_bytes
from avatar.objectives import Meter, MeterContext
from avatar.registry import METERS
from avatar.smt import candidate_vars
from avatar.space import Candidate


@METERS.register("size_mb")
class SizeMeter(Meter):
    name = "size_mb"
    direction = "min"

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return int(size_bytes(candidate_vars(candidate, context.num_labels))) / MB
