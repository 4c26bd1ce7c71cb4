"""Multi-objective search: a DEAP evolutionary algorithm over z3-feasible candidates.

Why this shape: every genome (a list of choice indices) the search evaluates came out of
z3 (adaptive random sampling for generation 0, repair after crossover and mutation), so
no budget is spent on students that break a constraint. Each generation draws its
randomness from ``(seed, generation)`` alone and z3 queries are pure, which gives two
guarantees users rely on: the same seed gives the same front, and a killed search
resumes from its last checkpoint and ends exactly where the uninterrupted one would,
re-evaluating nothing (evaluations are cached in ``candidates.jsonl``).

``search.algorithm`` picks the selection scheme; variation (uniform crossover,
uniform-int mutation, z3 repair), budget (population x generations), seeding and
checkpoints are shared, so the algorithms differ only where they are meant to
(``bench/search_algorithms.py`` compares them, ``docs/benchmarks.md`` has the numbers):

- ``nsga2``: survival by non-dominated rank then crowding distance (``selNSGA2``);
  parents by DEAP's binary tournament on rank and crowding (``selTournamentDCD``), as
  in Deb et al. (2002).
- ``nsga3``: survival by rank then niching around ``uniform_reference_points``
  (``selNSGA3``, the memoryless variant: its ideal and extreme points come from the
  current population alone, so a checkpoint of the population restores it exactly);
  parents uniformly at random, as in Deb and Jain (2014): the niching, not mating
  selection, carries the diversity.
- ``spea2``: survival by strength fitness and nearest-neighbour truncation
  (``selSPEA2``) on objectives scaled to [0, 1] over the merged population, because
  DEAP measures its distances in raw units and ours (MB, GFLOPs) differ by orders of
  magnitude; parents by binary tournament on Pareto dominance (ties at random). SPEA2's
  own tournament compares strength fitness, which ``selSPEA2`` does not return; its
  first key, raw fitness, orders a dominated member after its dominator just as
  dominance does.

Hypervolume, per generation, is moocore's exact one on the minimisation form of the
objectives, against a reference point fixed from generation 0 so values compare across
generations.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import moocore
import numpy as np
from deap import base, tools

from avatar.core.errors import AvatarError
from avatar.core.io import append_jsonl, atomic_write_json, read_jsonl
from avatar.run.tracking import RunLogger
from avatar.search.objectives import MeterContext, Objectives
from avatar.search.selection import ALGORITHMS, Individual, seeded, select_strategy
from avatar.search.smt import Pruner
from avatar.search.space import Candidate, Space, model_config

CHECKPOINT = "search_checkpoint.json"
CANDIDATES = "candidates.jsonl"
PARETO = "pareto.json"
"""What ``search.algorithm`` accepts (module docstring: how each selects)."""


@dataclass
class SearchSettings:
    population: int = 40
    generations: int = 15
    seed: int = 42
    crossover_prob: float = 0.9
    mutation_prob: float = 0.15  # per gene
    sample_pool: int = 4  # adaptive random sampling: tries per initial pick
    algorithm: str = "nsga2"  # one of ALGORITHMS; NSGA-II measured best (docs/benchmarks.md)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise AvatarError(
                f"search.algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"
            )
        for name, kind in (("population", int), ("generations", int), ("seed", int), ("sample_pool", int),
                           ("crossover_prob", float), ("mutation_prob", float)):
            value = getattr(self, name)
            try:
                if isinstance(value, bool) or (kind is int and float(value) != int(value)):
                    raise ValueError
                setattr(self, name, kind(value))
            except (TypeError, ValueError):
                raise AvatarError(f"search.{name} must be {kind.__name__}, got {value!r}") from None
        if self.population < 2:
            raise AvatarError(f"search.population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise AvatarError(f"search.generations must be >= 1, got {self.generations}")
        for name in ("crossover_prob", "mutation_prob"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise AvatarError(f"search.{name} must be in [0, 1], got {value}")


@dataclass
class SearchResult:
    front: list[dict[str, Any]]
    hypervolumes: list[float]
    evaluations: int
    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)


def _fitness_class(directions: list[str]) -> type[base.Fitness]:
    weights = tuple(1.0 if d == "max" else -1.0 for d in directions)
    return type("AvatarFitness", (base.Fitness,), {"weights": weights})


class Evaluator:
    """Objectives per genome, cached; new evaluations go to candidates.jsonl and the logger."""

    def __init__(
        self,
        space: Space,
        objectives: Objectives,
        context: MeterContext,
        path: Path,
        logger: RunLogger,
    ) -> None:
        self.space = space
        self.objectives = objectives
        self.context = context
        self.path = path
        self.logger = logger
        self.cache: dict[tuple[int, ...], dict[str, float]] = {}
        if path.exists():
            for record in read_jsonl(path, tolerate_torn_tail=True):
                genome = tuple(space.indices(Candidate.from_dict(record["config"])))
                self.cache[genome] = record["objectives"]
                logger.log_candidate(record)

    def evaluate(self, genomes: list[list[int]], generation: int) -> list[dict[str, float]]:
        """Objectives for every genome; only genomes never seen before are measured."""
        new = list(dict.fromkeys(tuple(g) for g in genomes if tuple(g) not in self.cache))
        for genome in new:
            candidate = self.space.candidate(list(genome))
            values = self.objectives.evaluate(candidate, self.context)
            self.cache[genome] = values
            record = {
                "generation": generation,
                "key": candidate.key(),
                "config": candidate.as_dict(),
                "model_config": model_config(candidate, self.context.num_labels),
                "objectives": values,
            }
            append_jsonl(self.path, record)
            self.logger.log_candidate(record)
        return [self.cache[tuple(g)] for g in genomes]


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """Exact hypervolume (moocore) of ``points`` in minimisation form against ``reference``.

    Dominated points and points that do not dominate the reference add nothing, so a whole
    population can be passed as well as its first front.
    """
    array = np.asarray(points, dtype=float).reshape(-1, len(reference))
    return float(moocore.hypervolume(array, ref=np.asarray(reference, dtype=float)))


def _minimisation(population: Sequence[Individual]) -> np.ndarray:
    """Objective values with every direction turned into ``min`` (DEAP's weights are +-1)."""
    return -np.asarray([ind.fitness.wvalues for ind in population], dtype=float)


def _reference_point(points: np.ndarray) -> list[float]:
    """A fixed reference for hypervolume: a little worse than generation 0's worst."""
    worst, best = points.max(axis=0), points.min(axis=0)
    return (worst + 0.1 * np.maximum(worst - best, 1e-9) + 1e-12).tolist()


def run_search(
    space: Space,
    pruner: Pruner,
    objectives: Objectives,
    context: MeterContext,
    settings: SearchSettings,
    run_dir: str | Path,
    logger: RunLogger | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """``settings.algorithm`` with z3 repair; resumes from ``run_dir/search_checkpoint.json`` if present."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    logger = logger or RunLogger()
    names, directions = objectives.names, objectives.directions
    fitness_class = _fitness_class(directions)
    evaluator = Evaluator(space, objectives, context, run_dir / CANDIDATES, logger)
    checkpoint_path = run_dir / CHECKPOINT
    strategy = select_strategy(settings.algorithm, len(names), settings.population)

    def individuals(genomes: list[list[int]], generation: int) -> list[Individual]:
        values = evaluator.evaluate(genomes, generation)
        population = []
        for genome, objective_values in zip(genomes, values):
            individual = Individual(genome)
            individual.fitness = fitness_class()
            individual.fitness.values = tuple(objective_values[n] for n in names)
            population.append(individual)
        return population

    state = _load_checkpoint(checkpoint_path, settings, names)
    if state is None:
        rng = random.Random(f"{settings.seed}:init")
        genomes = pruner.sample(settings.population, rng, pool=settings.sample_pool)
        if len(genomes) < settings.population:  # tiny feasible set: repeat members
            genomes = [genomes[i % len(genomes)] for i in range(settings.population)]
        with seeded(f"{settings.seed}:0"):
            population = strategy.survive(individuals(genomes, 0), settings.population)
        reference = _reference_point(_minimisation(population))
        hypervolumes = [hypervolume(_minimisation(population), reference)]
        generation = 0
        logger.log_generation(0, {"hypervolume": hypervolumes[0]})
        _save_checkpoint(checkpoint_path, settings, names, 0, population, reference, hypervolumes, logger)
    else:
        generation, genomes, crowding, reference, hypervolumes = state
        # restore the exact order and crowding distances: the tournament depends on both
        population = individuals(genomes, generation)
        for individual, distance in zip(population, crowding):
            individual.fitness.crowding_dist = distance
    if progress:
        progress(generation, settings.generations)

    upper = [len(d) - 1 for d in space.dimensions]
    while generation < settings.generations:
        generation += 1
        # DEAP's operators draw from the global random modules: seed them per generation
        with seeded(f"{settings.seed}:{generation}"):
            rng = random.Random(f"{settings.seed}:{generation}:repair")
            offspring = [list(p) for p in strategy.mate(population)]
            for i in range(1, len(offspring), 2):
                if random.random() < settings.crossover_prob:
                    tools.cxUniform(offspring[i - 1], offspring[i], indpb=0.5)
            for child in offspring:
                tools.mutUniformInt(child, low=[0] * len(upper), up=upper, indpb=settings.mutation_prob)
            offspring = [pruner.repair(child, rng) for child in offspring]
            merged = population + individuals(offspring, generation)
            population = strategy.survive(merged, settings.population)
        hypervolumes.append(hypervolume(_minimisation(population), reference))
        logger.log_generation(generation, {"hypervolume": hypervolumes[-1]})
        _save_checkpoint(
            checkpoint_path, settings, names, generation, population, reference, hypervolumes, logger
        )
        if progress:
            progress(generation, settings.generations)

    front = _pareto_front(population, space, context, names)
    return SearchResult(front, hypervolumes, len(evaluator.cache), run_dir)


def _pareto_front(
    population: list[Individual], space: Space, context: MeterContext, names: list[str]
) -> list[dict[str, Any]]:
    """First non-dominated front, distinct members, sorted by the first objective."""
    front = tools.sortNondominated(population, len(population), first_front_only=True)[0]
    unique = {tuple(ind): ind for ind in front}
    members = []
    for genome, individual in sorted(unique.items()):
        candidate = space.candidate(list(genome))
        members.append(
            {
                "config": candidate.as_dict(),
                "model_config": model_config(candidate, context.num_labels),
                "objectives": {n: float(v) for n, v in zip(names, individual.fitness.values)},
            }
        )
    members.sort(key=lambda m: [m["objectives"][n] for n in names])
    return members


def _save_checkpoint(
    path: Path,
    settings: SearchSettings,
    names: list[str],
    generation: int,
    population: list[Individual],
    reference: list[float],
    hypervolumes: list[float],
    logger: RunLogger,
) -> None:
    atomic_write_json(
        path,
        {
            "seed": settings.seed,
            "algorithm": settings.algorithm,
            "population_size": settings.population,
            "objectives": names,
            "generation": generation,
            "population": [list(ind) for ind in population],
            "crowding": [getattr(ind.fitness, "crowding_dist", 0.0) for ind in population],
            "reference": reference,
            "hypervolumes": hypervolumes,
            "wandb_run_id": logger.run_id,
        },
    )


def _load_checkpoint(
    path: Path, settings: SearchSettings, names: list[str]
) -> tuple[int, list[list[int]], list[float], list[float], list[float]] | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        message = f"{path}: unreadable search checkpoint ({error.msg}); delete it to restart"
        raise AvatarError(message) from None
    if state["seed"] != settings.seed or state["objectives"] != names:
        raise AvatarError(
            f"{path} belongs to another search (seed {state['seed']}, objectives {state['objectives']}); "
            "use a new hydra.run.dir or delete the checkpoint"
        )
    algorithm = state.get("algorithm", "nsga2")  # checkpoints from before search.algorithm: NSGA-II's
    if algorithm != settings.algorithm:
        raise AvatarError(
            f"{path} belongs to a {algorithm} search, not search.algorithm={settings.algorithm}; "
            f"resume with search.algorithm={algorithm} or use a new hydra.run.dir"
        )
    if state["population_size"] != settings.population:
        raise AvatarError(
            f"{path}: population {state['population_size']} != search.population; use a new run dir"
        )
    return (
        state["generation"],
        state["population"],
        state["crowding"],
        state["reference"],
        state["hypervolumes"],
    )


def checkpoint_run_id(run_dir: str | Path) -> str | None:
    """The wandb run id a previous (interrupted) search in ``run_dir`` used."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("wandb_run_id")
    except json.JSONDecodeError:
        return None


def write_pareto(run_dir: str | Path, result: SearchResult, extra: dict[str, Any]) -> Path:
    path = Path(run_dir) / PARETO
    atomic_write_json(
        path,
        {
            "front": result.front,
            "hypervolume": result.hypervolumes,
            "evaluations": result.evaluations,
            **extra,
        },
    )
    return path
