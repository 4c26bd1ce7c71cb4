"""Attention heads divide the hidden size (RoBERTa refuses to build otherwise)."""

from typing import Any

from avatar.core.registry import CONSTRAINTS
from avatar.search.smt import Constraint
from avatar.search.variables import Vars


@CONSTRAINTS.register("heads")
class HeadsDivideHidden(Constraint):
    dimensions = ("hidden_size", "num_attention_heads")

    def expression(self, x: Vars) -> Any:
        hidden, heads = x.value("hidden_size"), x.value("num_attention_heads")
        return x.div(hidden, heads) * heads == hidden

    def describe(self) -> str:
        return "heads(divide hidden_size)"
