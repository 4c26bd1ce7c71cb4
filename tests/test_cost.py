"""The parameter and FLOPs formulas against real transformers models."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import RobertaConfig, RobertaForSequenceClassification

from avatar.core.registry import CONSTRAINTS, METERS
from avatar.search.cost import MB, forward_flops, parameter_count
from avatar.search.objectives import MeterContext
from avatar.search.smt import Pruner
from avatar.search.space import model_config
from avatar.search.variables import candidate_vars
from tests.helpers import load_space


def _real_parameters(config: dict) -> int:
    with torch.device("meta"):  # shapes only: hundreds of models in seconds
        model = RobertaForSequenceClassification(RobertaConfig(**config))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("num_labels", [2, 5])
def test_parameter_formula_matches_real_models(num_labels: int) -> None:
    space = load_space("avatar")
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=3.0), CONSTRAINTS.create("heads")], num_labels)
    genomes = pruner.sample(60, random.Random(num_labels), pool=1)
    kinds = set()
    for genome in genomes:
        candidate = space.candidate(genome)
        kinds.add(candidate["position_embedding_type"])
        config = model_config(candidate, num_labels)
        real = _real_parameters(config)
        assert parameter_count(candidate_vars(candidate, num_labels)) == real, candidate
        assert real * 4 <= 3.0 * MB
    assert kinds == {"absolute", "relative_key", "relative_key_query"}


def test_size_meter_is_exact_bytes() -> None:
    space = load_space("tiny")
    candidate = space.candidate([1] * len(space.dimensions))
    context = MeterContext(space, 2)
    size = METERS.create("size_mb").measure(candidate, context)
    assert size == _real_parameters(model_config(candidate, 2)) * 4 / MB


@pytest.mark.parametrize(
    "position, layers, hidden, heads, inter",
    [
        ("absolute", 2, 64, 4, 128),
        ("relative_key", 1, 32, 2, 256),
        ("relative_key_query", 3, 48, 2, 96),
        ("absolute", 1, 16, 1, 32),
        ("relative_key_query", 2, 96, 4, 384),
    ],
)
def test_flops_formula_within_5_percent_of_flop_counter(
    position: str, layers: int, hidden: int, heads: int, inter: int
) -> None:
    space = load_space("tiny")
    values = {d.name: d.choices[0] for d in space.dimensions}
    values.update(
        num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=inter,
        position_embedding_type=position, max_sequence_length=128,
    )
    candidate = space.validate(values)
    config = RobertaConfig(**model_config(candidate, 2), attn_implementation="eager")
    model = RobertaForSequenceClassification(config).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(input_ids=torch.randint(5, 1000, (1, 128)))
    predicted = forward_flops(candidate_vars(candidate, 2))
    assert abs(predicted - counter.get_total_flops()) / counter.get_total_flops() < 0.05


def test_training_memory_grows_with_what_a_training_step_keeps() -> None:
    """The estimate behind ``constraints=size3mb_memory``: attention is batch x heads x seq^2 per
    layer, relative positions add to it, and z3 agrees with the Python number."""
    from avatar.search.cost import training_memory_bytes

    space = load_space("avatar")
    base = {"tokenizer": "Word", "vocab_size": 22000, "num_hidden_layers": 11, "hidden_size": 16,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.2, "intermediate_size": 1120,
            "num_attention_heads": 8, "attention_probs_dropout_prob": 0.2, "max_sequence_length": 512,
            "position_embedding_type": "absolute", "learning_rate": 1e-3, "batch_size": 64}

    def gib(**changes: object) -> float:
        return training_memory_bytes(candidate_vars(space.validate({**base, **changes}), 2)) / 2**30

    assert 15 < gib() < 25  # the ground-truth candidate a 24 GB machine could not train
    assert gib(batch_size=16) == pytest.approx(gib() / 4, rel=0.01)
    assert gib(position_embedding_type="relative_key") > gib() and gib(
        position_embedding_type="relative_key_query") > gib(position_embedding_type="relative_key")
    assert gib(num_hidden_layers=2, batch_size=16) < 1.5  # measured peak RSS of that step: 1.0 GB
    constraint = CONSTRAINTS.create("train_memory", max_gb=8)
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=3.0), constraint], num_labels=2, seed=0)
    for genome in (pruner.random_feasible(random.Random(seed)) for seed in range(5)):
        assert training_memory_bytes(candidate_vars(space.candidate(genome), 2)) <= 8 * 2**30
    with pytest.raises(ValueError, match="max_gb must be positive"):
        CONSTRAINTS.create("train_memory", max_gb=0)


def test_a_student_too_large_for_the_ram_is_one_line_before_training() -> None:
    from avatar.core.errors import AvatarError
    from avatar.search.cost import available_memory_bytes, check_training_memory

    space = load_space("avatar")
    big = space.validate({"tokenizer": "Word", "vocab_size": 22000, "num_hidden_layers": 11,
                          "hidden_size": 16, "hidden_act": "gelu", "hidden_dropout_prob": 0.2,
                          "intermediate_size": 1120,
                          "num_attention_heads": 8, "attention_probs_dropout_prob": 0.2,
                          "max_sequence_length": 512, "position_embedding_type": "absolute",
                          "learning_rate": 1e-3, "batch_size": 64})
    with pytest.raises(AvatarError, match=r"needs about 19\.7 GiB of RAM .*; 8\.0 GiB are available: .*"
                                          r"constraints=size3mb_memory"):
        check_training_memory(candidate_vars(big, 2), "student X", 8 * 2**30)
    check_training_memory(candidate_vars(big, 2), "student X", None)  # unknown RAM: no check
    assert available_memory_bytes() is None or available_memory_bytes() > 0
