"""Forward GFLOPs at batch 1 over the candidate's sequence length (analytic)."""

from avatar.cost import forward_flops
from avatar.objectives import Meter, MeterContext
from avatar.registry import METERS
from avatar.smt import candidate_vars
from avatar.space import Candidate


@METERS.register("gflops")
class FlopsMeter(Meter):
    name = "gflops"
    direction = "min"

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return int(forward_flops(candidate_vars(candidate, context.num_labels))) / 1e9
