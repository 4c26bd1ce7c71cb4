"""Benchmark: NSGA-II, NSGA-III and SPEA2 on the paper's space, same objectives and budget.

Why: ``search.algorithm`` should default to the one that finds the better front for the
project's budget (population 40 x 15 generations), measured here, not assumed. Every
algorithm gets the same space (``configs/space/avatar.yaml``), constraints (3 MB + heads),
objectives, population, generations and seeds; the seed fixes generation 0 (z3's adaptive
random sampling), so runs of one seed start from the same population and are compared
pairwise. The variation (uniform crossover, uniform-int mutation, z3 repair) is shared by
construction (``avatar.search``); only selection differs.

Scenarios (objectives; no training anywhere):

- ``flops``: the indicator ``flops`` (GFLOPs as predicted effectiveness, maximised) with
  ``size_mb`` and ``gflops`` (minimised), as in ``bench/search_bench.py``. The indicator
  and the ``gflops`` meter are the same number in opposite directions, so the front is
  mostly a size/compute trade-off.
- ``linear``: a synthetic stand-in for the paper's surrogate with ``size_mb`` and
  ``gflops``. The surrogate is a Bayesian ridge over ``encode`` (the configuration's
  features), i.e. linear in them; this proxy is one fixed random linear function of the
  same features (weights from ``--proxy-seed``), which gives an effectiveness landscape
  that is not a function of cost, as the real one is not, without distilling anything.

Hypervolume: each run's final front, objectives in minimisation form scaled to [0, 1]
over the union of every run's front in that scenario (all algorithms and seeds), against
the reference 1.1 per objective (``avatar compare``'s frame), with moocore. Evaluations
are distinct candidates measured (duplicates are cached, so they cost nothing).

Run: ``.venv/bin/python bench/search_algorithms.py [--seeds 1 2 3 4 5 --population 40
--generations 15]``; progress goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar.core.registry import CONSTRAINTS, METERS, load_plugins  # noqa: E402
from avatar.search.evolve import ALGORITHMS, SearchSettings, hypervolume, run_search  # noqa: E402
from avatar.search.objectives import EffectivenessIndicator, MeterContext, Objectives  # noqa: E402
from avatar.search.smt import Pruner  # noqa: E402
from avatar.search.space import Candidate, Space  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE = 1.1  # per objective, in the [0, 1]-scaled frame (as ``avatar compare``)


class LinearProxy(EffectivenessIndicator):
    """A fixed random linear function of the surrogate's features (module docstring)."""

    name = "linear"

    def __init__(self, space: Space, seed: int) -> None:
        from avatar.plugins.indicators.surrogate import encode

        self.space = space
        self.encode = encode
        width = len(encode(space, space.candidate([0] * len(space.dimensions))))
        self.weights = np.random.default_rng(seed).normal(size=width)

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        return float(np.dot(self.encode(self.space, candidate), self.weights))


@dataclass
class Run:
    scenario: str
    algorithm: str
    seed: int
    front: np.ndarray  # minimisation form
    evaluations: int
    seconds: float
    hv: float = 0.0


def objectives_for(scenario: str, space: Space, proxy_seed: int) -> Objectives:
    if scenario == "flops":
        return Objectives.from_config("flops", ["size_mb", "gflops"])
    meters = [METERS.build(m) for m in ("size_mb", "gflops")]
    return Objectives(LinearProxy(space, proxy_seed), meters)


def search_once(space: Space, scenario: str, algorithm: str, seed: int, args: argparse.Namespace) -> Run:
    constraints = [CONSTRAINTS.create("size", max_mb=args.max_mb), CONSTRAINTS.create("heads")]
    pruner = Pruner(space, constraints, num_labels=2, seed=seed)
    objectives = objectives_for(scenario, space, args.proxy_seed)
    settings = SearchSettings(
        population=args.population, generations=args.generations, seed=seed, algorithm=algorithm
    )
    with tempfile.TemporaryDirectory() as run_dir:
        context = MeterContext(space, 2, run_dir)
        started = time.perf_counter()
        result = run_search(space, pruner, objectives, context, settings, run_dir)
        seconds = time.perf_counter() - started
    signs = np.asarray([-1.0 if d == "max" else 1.0 for d in objectives.directions])
    front = np.asarray([[m["objectives"][n] for n in objectives.names] for m in result.front]) * signs
    return Run(scenario, algorithm, seed, front, result.evaluations, seconds)


def common_hypervolumes(runs: list[Run]) -> None:
    """Every run's hypervolume in one frame: the union of the fronts scaled to [0, 1]."""
    union = np.vstack([run.front for run in runs])
    low, span = union.min(axis=0), np.maximum(union.max(axis=0) - union.min(axis=0), 1e-12)
    reference = [REFERENCE] * union.shape[1]
    for run in runs:
        run.hv = hypervolume((run.front - low) / span, reference)


def table(runs: list[Run], scenarios: list[str], algorithms: list[str]) -> str:
    lines = [
        "| scenario | algorithm | seeds | median HV | IQR | min - max | beats nsga2 (paired seeds)"
        " | mean evaluations | median wall s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in scenarios:
        baseline = {r.seed: r.hv for r in runs if r.scenario == scenario and r.algorithm == "nsga2"}
        for algorithm in algorithms:
            group = [r for r in runs if r.scenario == scenario and r.algorithm == algorithm]
            hvs = np.asarray([r.hv for r in group])
            q1, median, q3 = np.percentile(hvs, [25, 50, 75])
            paired = [r.hv > baseline[r.seed] for r in group if r.seed in baseline]
            wins = "-" if algorithm == "nsga2" or not paired else f"{sum(paired)}/{len(paired)}"
            lines.append(
                f"| {scenario} | {algorithm} | {len(group)} | {median:.4f} | {q3 - q1:.4f} "
                f"| {hvs.min():.4f} - {hvs.max():.4f} | {wins} "
                f"| {statistics.mean(r.evaluations for r in group):.1f} "
                f"| {statistics.median(r.seconds for r in group):.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--scenarios", nargs="+", default=["flops", "linear"], choices=["flops", "linear"])
    parser.add_argument("--max-mb", type=float, default=3.0)
    parser.add_argument("--proxy-seed", type=int, default=0, help="weights of the linear scenario's proxy")
    args = parser.parse_args()

    load_plugins()
    specs = yaml.safe_load((REPO / "configs/space/avatar.yaml").read_text())["dimensions"]
    space = Space.from_config(specs)
    runs: list[Run] = []
    for scenario in args.scenarios:
        scenario_runs = []
        for seed in args.seeds:
            for algorithm in args.algorithms:
                run = search_once(space, scenario, algorithm, seed, args)
                scenario_runs.append(run)
                print(f"{scenario} {algorithm} seed {seed}: {run.evaluations} evaluations, "
                      f"front {len(run.front)}, {run.seconds:.1f} s", file=sys.stderr, flush=True)
        common_hypervolumes(scenario_runs)
        runs.extend(scenario_runs)
    print(f"population {args.population} x {args.generations} generations, seeds {args.seeds}, "
          f"{args.max_mb:g} MB + heads, paper space; HV: final front in [0, 1] over all fronts "
          f"of the scenario, reference {REFERENCE} per objective (moocore)\n")
    print(table(runs, args.scenarios, args.algorithms))


if __name__ == "__main__":
    main()
