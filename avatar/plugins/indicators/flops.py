"""Compressor's proxy: more compute, more effective (GFLOPs as predicted effectiveness).

A cheap stand-in for the paper's surrogate when no student can be trained yet: it
needs no teacher and no data, only the configuration.
"""

from avatar.core.registry import INDICATORS
from avatar.search.cost import forward_flops
from avatar.search.objectives import EffectivenessIndicator, MeterContext
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars


@INDICATORS.register("flops")
class FlopsIndicator(EffectivenessIndicator):
    needs_knowledge = False

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        return int(forward_flops(candidate_vars(candidate, context.num_labels))) / 1e9
