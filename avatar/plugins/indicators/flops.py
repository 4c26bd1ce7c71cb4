"""Compressor's proxy: more compute, more effective (GFLOPs as predicted effectiveness).

A cheap stand-in for the paper's surrogate when no student can be trained yet: it
needs no teacher and no data, only the configuration.
"""

from avatar.cost import forward_flops
from avatar.objectives import EffectivenessIndicator, MeterContext
from avatar.registry import INDICATORS
from avatar.smt import candidate_vars
from avatar.space import Candidate


@INDICATORS.register("flops")
class FlopsIndicator(EffectivenessIndicator):
    name = "flops"
    needs_knowledge = False

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        return int(forward_flops(candidate_vars(candidate, context.num_labels))) / 1e9
