"""Benchmark: the surrogate's preparation with ``executor=local`` vs ``executor=ray``. Prints a table.

Side by side in one run on this machine: K feasible candidates (the surrogate's own
sampling) distilled briefly on real BigCloneBench with the paper's CodeBERT logits, one
torch thread per run; first one after another in this process (``local``, ``threads=1``),
then as Ray tasks on a local Ray of ``--workers`` CPUs (``cpus_per_run=1``), each from an
empty surrogate cache. Tokenizers are trained before either timing starts (the driver's
work, the same for both). Prints the wall time of each preparation, the speed-up, Ray's
own start-up cost (``ray.init`` and the rest of its overhead over the runs' own time), and
a projection for N workers from the measured per-run times.

    AVATAR_DATA=/path/to/data python bench/scale_bench.py [--runs 4] [--workers 2] \\
        [--train-examples 512] [any search.py override]

Stop other work on the machine first: the comparison assumes its cores are free.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from avatar.core.registry import INDICATORS  # noqa: E402
from avatar.distill.student import build_tokenizer  # noqa: E402
from avatar.run.executor import Executor, LocalExecutor, RayExecutor  # noqa: E402
from avatar.search.objectives import MeterContext  # noqa: E402
from avatar.stages import build_pruner, build_space, build_task, cache_dir, hardware, teacher_parts  # noqa: E402

DEFAULTS = ["task=clone", "teacher=paper_codebert", "space=laptop", "indicator=surrogate", "logger=none"]


def makespan(seconds: list[float], workers: int) -> float:
    """Longest-first greedy schedule of ``seconds`` on ``workers``: the wall time of the longest lane."""
    lanes = [0.0] * max(1, workers)
    for run in sorted(seconds, reverse=True):
        heapq.heapreplace(lanes, lanes[0] + run)
    return max(lanes)


def prepare(
    executor: Executor, context_args: dict, indicator_spec: dict, shared_cache: Path
) -> tuple[float, list]:
    """One surrogate preparation from an empty surrogate cache (tokenizers shared); (seconds, runs)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "cache").mkdir()
        (root / "cache" / "tokenizers").symlink_to(shared_cache / "tokenizers")
        indicator = INDICATORS.build(indicator_spec)
        context = MeterContext(**context_args, run_dir=str(root), cache_dir=root / "cache", executor=executor)
        started = time.perf_counter()
        indicator.prepare(context)
        seconds = time.perf_counter() - started
        executor.close()
        runs = json.loads((root / "surrogate.json").read_text())["runs"]
    return seconds, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="K brief runs")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (one run each)")
    parser.add_argument("--train-examples", type=int, default=512)
    parser.add_argument("--eval-examples", type=int, default=256)
    args, overrides = parser.parse_known_args()
    overrides = DEFAULTS + [
        f"indicator.samples={args.runs}", f"indicator.train_examples={args.train_examples}",
        f"indicator.eval_examples={args.eval_examples}", *overrides,
    ]
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=overrides)
    task, space = build_task(cfg), build_space(cfg)
    pruner = build_pruner(cfg, space, task.num_labels)
    teacher = teacher_parts(cfg, task)
    knowledge = teacher.knowledge
    indicator_spec = dict(cfg.indicator)
    # the same candidates the surrogate samples; their tokenizers trained before any timing
    probe = INDICATORS.build(indicator_spec)
    genomes = pruner.sample(args.runs, random.Random(f"surrogate:{probe.seed}"), pool=probe.sample_pool)
    for genome in genomes:
        build_tokenizer(space.candidate(genome), task, cache_dir(cfg))
    context_args = dict(space=space, num_labels=task.num_labels, task=task, pruner=pruner,
                        trainer=hardware(cfg), knowledge=lambda: knowledge)

    shared = cache_dir(cfg)
    local_seconds, local_runs = prepare(LocalExecutor(threads=1), context_args, indicator_spec, shared)
    ray_executor = RayExecutor(num_cpus=args.workers, cpus_per_run=1)
    ray_seconds, ray_runs = prepare(ray_executor, context_args, indicator_spec, shared)

    print(f"overrides: {' '.join(overrides)}")
    print(f"machine: {os.cpu_count()} logical CPUs; one torch thread per run\n")
    print("| run | layers | hidden | seq | batch | local s | ray s | same metric |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    by_key = {r["key"]: r for r in ray_runs}
    for number, run in enumerate(local_runs, start=1):
        c, other = run["config"], by_key[run["key"]]
        same = abs(run["metric"] - other["metric"]) < 1e-6 and abs(run["val_loss"] - other["val_loss"]) < 1e-5
        print(f"| {number} | {c['num_hidden_layers']} | {c['hidden_size']} | {c['max_sequence_length']} "
              f"| {c['batch_size']} | {run['seconds']:.1f} | {other['seconds']:.1f} "
              f"| {'yes' if same else 'NO'} |")
    startup = ray_executor.startup_seconds or 0.0
    ray_lanes = makespan([r["seconds"] for r in ray_runs], args.workers)
    print("\n| executor | wall s (preparation) | speed-up |\n|---|---:|---:|")
    print(f"| local (1 thread) | {local_seconds:.1f} | 1.00x |")
    speedup = local_seconds / ray_seconds
    print(f"| ray ({args.workers} workers x 1 CPU) | {ray_seconds:.1f} | {speedup:.2f}x |")
    per_run_local = [r["seconds"] for r in local_runs]
    bound = sum(per_run_local) / makespan(per_run_local, args.workers)
    print(f"\nAttainable with {args.workers} workers for these runs (their local times, best schedule, no "
          f"overhead): {bound:.2f}x; the longest run is {max(per_run_local) / sum(per_run_local):.0%} "
          "of the work.")
    print(f"Ray start-up: ray.init {startup:.1f} s; Ray's whole overhead (start-up, worker processes, "
          f"shipping the task and knowledge) {ray_seconds - ray_lanes:.1f} s over the runs' own "
          f"{ray_lanes:.1f} s (longest lane).")

    per_run = [r["seconds"] for r in local_runs]  # uncontended, one thread each
    overhead = max(0.0, ray_seconds - ray_lanes)
    mean = sum(per_run) / len(per_run)
    print(f"\nProjection from the measured per-run times (mean {mean:.0f} s at 1 thread; each worker with "
          f"its own free CPU; Ray overhead {overhead:.0f} s):")
    print(f"| workers | K = {len(per_run)} (these runs) | K = 20 (the paper's) |")
    print("|---:|---:|---:|")
    paper = [per_run[i % len(per_run)] for i in range(20)]
    for workers in (1, 2, 4, 8, 16, 20):
        small = makespan(per_run, workers) + (overhead if workers > 1 else 0.0)
        large = makespan(paper, workers) + (overhead if workers > 1 else 0.0)
        print(f"| {workers} | {small / 60:.1f} min | {large / 60:.1f} min |")
    print(f"\nlocal would need {math.fsum(paper) / 60:.0f} min for K = 20 at this budget.")


if __name__ == "__main__":
    main()
