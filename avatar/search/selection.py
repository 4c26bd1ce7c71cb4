"""Selection, the one step the search algorithms differ in (``search.algorithm``).

NSGA-II (crowding tournament, ``selNSGA2``), NSGA-III (random parents, reference-point
niching, ``selNSGA3``) and SPEA2 (dominance tournament, ``selSPEA2`` on scaled objectives)
share the variation operators, the z3 repair, the budget and the checkpoints of
``avatar.search.evolve``; ``bench/search_algorithms.py`` compares them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from deap import base, tools

ALGORITHMS = ("nsga2", "nsga3", "spea2")


class Individual(list):  # type: ignore[type-arg]
    """A genome (choice indices) with a DEAP fitness."""

    fitness: base.Fitness


@contextmanager
def seeded(seed: str) -> Iterator[None]:
    """Seed the global RNGs DEAP draws from (``random``; ``numpy.random`` in NSGA-III's niching)
    from ``seed`` alone, and give the caller's states back afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(random.Random(f"{seed}:numpy").getrandbits(32))
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


Selection = Callable[[list[Individual], int], list[Individual]]
Mating = Callable[[list[Individual]], list[Individual]]


@dataclass(frozen=True)
class _Strategy:
    """What an algorithm changes: who survives (environmental) and who mates (parents)."""

    survive: Selection
    mate: Mating


def select_strategy(algorithm: str, objectives: int, population: int) -> _Strategy:
    if algorithm == "nsga2":
        return _Strategy(tools.selNSGA2, _crowded_tournament)
    if algorithm == "nsga3":
        ref_points = tools.uniform_reference_points(objectives, _divisions(objectives, population))
        return _Strategy(lambda individuals, k: tools.selNSGA3(individuals, k, ref_points), _random_parents)
    return _Strategy(_select_spea2, _dominance_tournament)


def _divisions(objectives: int, population: int) -> int:
    """NSGA-III's divisions per objective: the most whose reference points (C(p + m - 1, m - 1))
    still fit in the population, as Deb and Jain size them (at least 1)."""
    if objectives < 2:
        return 1
    p = 1
    while math.comb(p + objectives, objectives - 1) <= population:
        p += 1
    return p


def _crowded_tournament(population: list[Individual]) -> list[Individual]:
    """NSGA-II's parents: DEAP's tournament on rank and crowding (it needs a multiple of 4)."""
    if len(population) % 4 == 0:
        return list(tools.selTournamentDCD(population, len(population)))
    return _random_parents(population)


def _random_parents(population: list[Individual]) -> list[Individual]:
    """Parents uniformly at random, with replacement (NSGA-III's mating)."""
    return [random.choice(population) for _ in population]


def _dominance_tournament(population: list[Individual]) -> list[Individual]:
    """Binary tournaments of two distinct members: the dominating one wins, else a coin flip."""
    parents = []
    for _ in population:
        first, second = random.sample(population, 2)
        if first.fitness.dominates(second.fitness):
            parents.append(first)
        elif second.fitness.dominates(first.fitness):
            parents.append(second)
        else:
            parents.append(first if random.random() < 0.5 else second)
    return parents


class _Scaled:
    """A stand-in for SPEA2: the objectives scaled to [0, 1], all maximised; ``index`` maps back."""

    def __init__(self, index: int, fitness: base.Fitness) -> None:
        self.index = index
        self.fitness = fitness


def _select_spea2(individuals: list[Individual], k: int) -> list[Individual]:
    """DEAP's SPEA2 survival on objectives scaled over ``individuals``: its truncation and density
    use Euclidean distances, which raw units (MB next to GFLOPs) would let one objective dominate.
    Scaling each objective by a positive factor keeps who dominates whom."""
    values = np.asarray([ind.fitness.wvalues for ind in individuals], dtype=float)
    low = values.min(axis=0)
    scaled = (values - low) / np.maximum(values.max(axis=0) - low, 1e-12)
    fitness_class = type("ScaledFitness", (base.Fitness,), {"weights": (1.0,) * values.shape[1]})
    proxies = []
    for index, row in enumerate(scaled):
        fitness = fitness_class()
        fitness.values = tuple(float(v) for v in row)
        proxies.append(_Scaled(index, fitness))
    return [individuals[proxy.index] for proxy in tools.selSPEA2(proxies, k)]
