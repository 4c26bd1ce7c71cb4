"""Forward GFLOPs at batch 1 over the candidate's sequence length (analytic)."""

from avatar.core.registry import METERS
from avatar.search.cost import forward_flops
from avatar.search.objectives import Meter, MeterContext
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars


@METERS.register("gflops")
class FlopsMeter(Meter):
    direction = "min"

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return int(forward_flops(candidate_vars(candidate, context.num_labels))) / 1e9
