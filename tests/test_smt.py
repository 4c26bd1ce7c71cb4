"""z3 pruning: feasibility, sampling, repair and counting against a plain Python oracle."""

from __future__ import annotations

import itertools
import random

import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import CONSTRAINTS
from avatar.search.smt import Pruner
from avatar.search.space import Dimension, Space
from avatar.search.variables import candidate_vars
from tests.helpers import load_space


def _small_space() -> Space:
    return Space(
        [
            Dimension("vocab_size", (1000, 2000, 4000, 8000)),
            Dimension("num_hidden_layers", (1, 2, 3, 4)),
            Dimension("hidden_size", (16, 32, 48, 64, 96)),
            Dimension("intermediate_size", (32, 64, 128, 256)),
            Dimension("num_attention_heads", (1, 2, 3, 4)),
            Dimension("max_sequence_length", (64, 128)),
            Dimension("position_embedding_type", ("absolute", "relative_key", "relative_key_query")),
            Dimension("hidden_act", ("gelu", "relu")),
        ]
    )


def _constraints() -> list:
    return [CONSTRAINTS.create("size", max_mb=0.5), CONSTRAINTS.create("heads"),
            CONSTRAINTS.create("flops", max_gflops=0.02)]


def _oracle(space: Space, constraints: list) -> set[tuple[int, ...]]:
    """Plain Python filter over the whole grid."""
    feasible = set()
    for genome in itertools.product(*(range(len(d)) for d in space.dimensions)):
        x = candidate_vars(space.candidate(list(genome)), 2)
        if all(bool(c.expression(x)) for c in constraints):
            feasible.add(genome)
    return feasible


@pytest.fixture(scope="module")
def small() -> tuple[Space, Pruner, set[tuple[int, ...]]]:
    space = _small_space()
    constraints = _constraints()
    return space, Pruner(space, constraints, 2, seed=3), _oracle(space, constraints)


def test_counts_agree_z3_grid_and_oracle(small) -> None:
    space, pruner, oracle = small
    assert 0 < len(oracle) < space.grid_size
    assert pruner.count_grid() == len(oracle)
    assert pruner.count_z3() == len(oracle)


def test_feasibility_matches_oracle(small) -> None:
    space, pruner, oracle = small
    rng = random.Random(0)
    for _ in range(300):
        genome = tuple(space.random_indices(rng))
        assert pruner.is_feasible(genome) == (genome in oracle)


def test_samples_are_feasible_distinct_and_diverse(small) -> None:
    space, pruner, oracle = small
    samples = pruner.sample(30, random.Random(1))
    assert len({tuple(s) for s in samples}) == 30
    assert all(tuple(s) in oracle for s in samples)
    # diverse: every dimension takes more than one value across the sample
    for position, dim in enumerate(space.dimensions):
        values = {s[position] for s in samples}
        assert len(values) > 1, dim.name


def test_repair_returns_feasible_and_keeps_feasible_unchanged(small) -> None:
    space, pruner, oracle = small
    rng = random.Random(2)
    for _ in range(40):
        genome = space.random_indices(rng)
        repaired = pruner.repair(genome, rng)
        assert tuple(repaired) in oracle
        if tuple(genome) in oracle:
            assert repaired == genome


def test_repair_moves_only_what_it_must() -> None:
    space = load_space("avatar")
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=3.0), CONSTRAINTS.create("heads")], 2)
    values = {d.name: d.choices[0] for d in space.dimensions}
    values.update(num_hidden_layers=2, hidden_size=128, num_attention_heads=4, intermediate_size=256,
                  vocab_size=46000)  # 46000 x 128 embeddings alone exceed 3 MB
    genome = space.indices(space.validate(values))
    repaired = pruner.repair(genome, random.Random(0))
    assert pruner.is_feasible(repaired)
    changed = [d.name for d, a, b in zip(space.dimensions, genome, repaired) if a != b]
    assert 1 <= len(changed) <= 2, changed


def test_deterministic_for_a_seed(small) -> None:
    space, _, _ = small
    first = Pruner(space, _constraints(), 2, seed=5).sample(10, random.Random(9))
    second = Pruner(space, _constraints(), 2, seed=5).sample(10, random.Random(9))
    assert first == second


def test_unsat_names_the_clashing_constraints() -> None:
    space = _small_space()
    constraints = [CONSTRAINTS.create("size", max_mb=0.001), CONSTRAINTS.create("heads")]
    with pytest.raises(AvatarError) as error:
        Pruner(space, constraints, 2)
    message = str(error.value)
    assert "unsatisfiable" in message and "size(max_mb=0.001)" in message
    assert "heads" not in message and "\n" not in message


def test_paper_space_counts_with_the_3mb_budget() -> None:
    space = load_space("avatar")
    assert len(space.dimensions) == 13
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=3.0), CONSTRAINTS.create("heads")], 2)
    assert pruner.constrained_dimensions() == [
        "vocab_size", "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
        "max_sequence_length", "position_embedding_type",
    ]
