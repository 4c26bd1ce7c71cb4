"""Benchmark: z3 pruning and a 40 x 15 NSGA-II search on the paper's space (3 MB budget).

Prints a table: time to build the z3 problem and check it, time to count the feasible
grid exactly, time of the search, evaluations, front size, and peak memory.
Run: ``.venv/bin/python bench/search_bench.py [--population 40 --generations 15]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar.core.registry import CONSTRAINTS, load_plugins  # noqa: E402
from avatar.search.evolve import SearchSettings, run_search  # noqa: E402
from avatar.search.objectives import MeterContext, Objectives  # noqa: E402
from avatar.search.smt import Pruner  # noqa: E402
from avatar.search.space import Space  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-mb", type=float, default=3.0)
    args = parser.parse_args()

    load_plugins()  # imports are not part of the measured steps
    specs = yaml.safe_load((REPO / "configs/space/avatar.yaml").read_text())["dimensions"]
    space = Space.from_config(specs)

    started = time.perf_counter()
    constraints = [CONSTRAINTS.create("size", max_mb=args.max_mb), CONSTRAINTS.create("heads")]
    pruner = Pruner(space, constraints, num_labels=2, seed=args.seed)
    build_seconds = time.perf_counter() - started

    started = time.perf_counter()
    feasible = pruner.count_grid()
    count_seconds = time.perf_counter() - started

    objectives = Objectives.from_config("flops", ["size_mb", "gflops"])
    with tempfile.TemporaryDirectory() as run_dir:
        context = MeterContext(space, 2, run_dir)
        settings = SearchSettings(population=args.population, generations=args.generations, seed=args.seed)
        started = time.perf_counter()
        result = run_search(space, pruner, objectives, context, settings, run_dir)
        search_seconds = time.perf_counter() - started

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("space (grid points)", f"{space.grid_size:,}"),
        (f"feasible under {args.max_mb:g} MB", f"{feasible:,} ({feasible / space.grid_size:.2%})"),
        ("z3 problem build + satisfiability", f"{build_seconds:.2f} s"),
        ("exact feasible count (pruning)", f"{count_seconds:.2f} s"),
        (f"NSGA-II {args.population} x {args.generations}", f"{search_seconds:.2f} s"),
        ("pruning + search", f"{build_seconds + count_seconds + search_seconds:.2f} s (goal < 60 s)"),
        ("evaluations / front size", f"{result.evaluations} / {len(result.front)}"),
        ("z3 repairs / solver queries", f"{pruner.stats.repairs} / {pruner.stats.queries}"),
        ("hypervolume gen 0 -> last", f"{result.hypervolumes[0]:.4g} -> {result.hypervolumes[-1]:.4g}"),
        ("peak memory (RSS)", f"{peak_mib:.0f} MiB (goal < 1024 MiB)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'step':<{width}} | value |\n| {'-' * width} | ----- |")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")


if __name__ == "__main__":
    main()
