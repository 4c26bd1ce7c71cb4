"""Benchmark: every effectiveness indicator variant against the ground truth. Prints a table.

Why: the search is only as good as the order its effectiveness objective puts candidates
in. ``bench/indicator_bench.py`` distils Latin-hypercube candidates of the paper's whole
3 MiB space (``space=avatar``) for the students' real budget on BigCloneBench; this bench
asks each indicator variant to predict those same candidates and prints, per variant:
Spearman's rho and Kendall's tau against their test accuracy, the regret (the best true
accuracy minus the true accuracy of the candidate the indicator ranks first), and what the
indicator cost in CPU-minutes (its preparation and its predictions, this process's CPU
time; brief runs cached by an earlier run cost nothing again, so the column reports the
cost recorded by the runs themselves: their training seconds).

Variants: the zero-cost proxies (``flops``; ``snip``: one forward and backward pass of each
untrained student; ``budget_examples``: a few timed training steps of each untrained student,
times the students' budget), the surrogate's regressors (Bayesian ridge, gradient boosting, a Gaussian
process) over its sampling (adaptive random, Latin hypercube) and brief-run budget (2,000
examples, or a fixed wall-clock time), and two references read from the ground truth: each
candidate's own validation accuracy at its first check (a fifth of its budget, a learning curve's
best case), and the pairs each candidate really saw in its budget (what ``budget_examples`` predicts).

    AVATAR_DATA=../shared/data python bench/indicator_eval.py [--variants NAME ...] [--workers 2] [--list]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from indicator_bench import ALLOCATORS, held_rate, measured_under, use_allocator  # noqa: E402

from avatar.core.registry import INDICATORS  # noqa: E402
from avatar.learn.training import wall_clock_seconds  # noqa: E402
from avatar.search.objectives import MeterContext  # noqa: E402
from avatar.stages import (  # noqa: E402
    build_executor,
    build_pruner,
    build_space,
    build_task,
    cache_dir,
    hardware,
    student_trainer,
    teacher_parts,
)

GROUND_TRUTH = BENCH / "results" / "indicator_ground_truth.jsonl"
SURROGATE = ["indicator=surrogate"]
COVERAGE = "budget_examples, calibrated 12, capped 1.5 passes, coverage"


def budget(**options: object) -> list[str]:
    """``indicator=budget_examples`` with ``options`` over the form before the coverage and lexical
    terms (both off unless named), so a variant's name keeps its meaning as the defaults move."""
    settings = {"coverage": "null", "lexical": "false", **options}
    return ["indicator=budget_examples", *(f"indicator.{key}={value}" for key, value in settings.items())]


VARIANTS: dict[str, list[str]] = {
    "flops": ["indicator=flops"],
    "snip": ["indicator=snip"],
    # as first measured: every candidate timed, no cap (the configuration's defaults since the second
    # ground truth: a calibrated speed model and a cap of 1.5 passes)
    "budget_examples": budget(calibration=0, saturation_epochs="null"),
    "budget_examples, calibrated 12": budget(saturation_epochs="null"),
    "budget_examples, calibrated 12, capped 1.5 passes": budget(),
    "budget_examples, calibrated 12, capped 1.5 passes, per token": budget(per_token="true"),
    # the coverage term (pre-registered in docs/benchmarks.md before it was measured): the first is
    # the candidate default, its lengths interpolated between 3 vocabulary sizes per kind
    COVERAGE: budget(coverage="share"),
    f"{COVERAGE}, exact": budget(coverage="share", coverage_points=0),
    "budget_examples, calibrated 12, capped 1.5 passes, tokens read": budget(coverage="tokens"),
    # the capacity weight at which the cap becomes the search's target (bcb_avatar's form, which also
    # holds the batch; the ground truth's candidates keep their own batch sizes here)
    **{f"{COVERAGE}, capacity weight {weight}": budget(coverage="share", capacity_weight=weight)
       for weight in (0.1, 0.2)},
    # the lexical term (avatar/search/lexical.py): its form was chosen after a look at these 12
    # (docs/benchmarks.md, "A lexical term"); the first is the configuration's default since then
    f"{COVERAGE}, lexical": budget(coverage="share", lexical="true"),
    f"{COVERAGE}, lexical, exact": budget(coverage="share", lexical="true", coverage_points=0),
    "budget_examples, calibrated 12, capped 1.5 passes, lexical": budget(lexical="true"),
    # one-layer students of a pair task level off sooner (indicator.comparison_epochs)
    f"{COVERAGE}, lexical, one layer 0.5 passes": budget(coverage="share", lexical="true",
                                                          comparison_epochs=0.5),
    # ... or whose attention heads are narrower than this (indicator.comparison_head_size)
    **{f"{COVERAGE}, lexical, compare 0.5 passes, heads {width}": budget(
        coverage="share", lexical="true", comparison_epochs=0.5, comparison_head_size=width)
       for width in (32, 40)},
    "budget_examples, calibrated 12, coverage, no cap": budget(coverage="share", saturation_epochs="null"),
    **{f"surrogate {regressor}, adaptive, 2000 ex": [*SURROGATE, f"indicator.regressor={regressor}"]
       for regressor in ("ridge", "gbt", "gp")},
    **{f"surrogate {regressor}, lhs, 2000 ex": [*SURROGATE, f"indicator.regressor={regressor}",
                                                "indicator.sampling=lhs"]
       for regressor in ("ridge", "gbt", "gp")},
    **{f"surrogate {regressor}, lhs, 60 s": [*SURROGATE, f"indicator.regressor={regressor}",
                                             "indicator.sampling=lhs", "indicator.budget_seconds=60"]
       for regressor in ("ridge", "gbt", "gp")},
    **{f"surrogate {regressor}, lhs, 2000 ex, own lr": [
        *SURROGATE, f"indicator.regressor={regressor}", "indicator.sampling=lhs",
        "indicator.learning_rate=null"]
       for regressor in ("ridge", "gbt", "gp")},
    **{f"surrogate {regressor}, lhs, 2000 ex, curve 4 points": [
        *SURROGATE, f"indicator.regressor={regressor}", "indicator.sampling=lhs", "indicator.curve_points=4"]
       for regressor in ("ridge", "gbt", "gp")},
    # a tenth of the students' 30 minutes each: a fast candidate shows its plateau, a slow one its slope
    **{f"surrogate {regressor}, lhs, 180 s, curve 4 points": [
        *SURROGATE, f"indicator.regressor={regressor}", "indicator.sampling=lhs",
        "indicator.budget_seconds=180", "indicator.curve_points=4"]
       for regressor in ("ridge", "gbt", "gp")},
}
CURVE = "learning curve: own val acc at 1/5 budget"
SEEN = "pairs seen in training (reference)"
REFERENCES = (CURVE, SEEN)
# the ground truth's budget: 30 minutes per student (what curve_points extrapolates to)
BASE = ["task=clone", "teacher=paper_codebert", "space=avatar", "constraints=size3mb_memory", "logger=none",
        "trainer.max_time=00:00:30:00"]


def ground_truth(path: Path, allocator: str = "kept", learning_rate: float | None = 1e-3) -> list[dict]:
    """The trained candidates distilled with ``allocator`` and every one at ``learning_rate``
    (None: each at its own; bench/indicator_bench.py)."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: run bench/indicator_bench.py first")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if measured_under(row, allocator, learning_rate)]
    # a candidate this machine cannot train has no accuracy to rank (constraints=size3mb_memory)
    return sorted((row for row in rows if row.get("test_accuracy") is not None), key=lambda row: row["index"])


def agreement(predicted: list[float], truth: list[float]) -> dict[str, float]:
    """Spearman, Kendall and the regret of trusting the indicator's first choice."""
    from scipy.stats import kendalltau, spearmanr

    best = int(np.argmax(predicted))
    return {"spearman": float(spearmanr(predicted, truth).statistic),
            "kendall": float(kendalltau(predicted, truth).statistic),
            "regret": float(max(truth) - truth[best]), "picked": best}


def evaluate(name: str, overrides: list[str], rows: list[dict], workers: int = 1,
             shared_run_dir: str | None = None) -> list[dict]:
    """Prepare the variant's indicator as a search would, then predict every ground-truth candidate.

    A curve variant gives two rows from the same brief runs: the curve read at the students'
    budget, and the runs' final validation loss (what the plain surrogate fits), so the two
    targets are compared on the same runs at the price of one set. ``shared_run_dir``: the run
    folder of the variants before, so a measurement they share (the timed steps of the speed
    model's sample, keyed by candidate and settings) is made once; its CPU then counts once."""
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        ray = ["executor=ray", f"executor.num_cpus={workers}"] if workers > 1 else []
        cfg = compose("search", overrides=BASE + ray + overrides)
    task, space = build_task(cfg), build_space(cfg)
    pruner = build_pruner(cfg, space, task.num_labels)
    teacher = teacher_parts(cfg, task)
    indicator = INDICATORS.build(dict(cfg.indicator))
    cpu = time.process_time()
    truth = [row["test_accuracy"] for row in rows]
    candidates = [space.validate(row["candidate"]) for row in rows]
    with tempfile.TemporaryDirectory() as own_run_dir:
        run_dir = shared_run_dir or own_run_dir
        context = MeterContext(space, task.num_labels, run_dir, task=task, pruner=pruner,
                               cache_dir=cache_dir(cfg), trainer=hardware(cfg),
                               knowledge=lambda: teacher.knowledge, executor=build_executor(cfg),
                               student_seconds=wall_clock_seconds(student_trainer(cfg), "trainer.max_time"))
        indicator.prepare(context)
        predicted = {name: [indicator.predict(c, context) for c in candidates]}
        if getattr(indicator, "coverage", None) and not indicator.coverage_points:
            # the term alone, without the speed model's error: the pairs really seen x the share read
            predicted[f"reference: pairs seen x {indicator.coverage} read (exact)"] = [
                math.log10(row["examples"] * indicator.reading(c, context))
                for row, c in zip(rows, candidates, strict=True)]
            if getattr(indicator, "shares", None) is not None:
                predicted[f"reference: pairs seen x {indicator.coverage} read x names whole (exact)"] = [
                    math.log10(row["examples"] * indicator.reading(c, context)
                               * indicator.lexical_share(c, context))
                    for row, c in zip(rows, candidates, strict=True)]
        if getattr(indicator, "curve_points", 0):
            indicator.curve_points = 0  # the same runs, read at their end
            indicator.fit_runs()
            predicted[name.replace("curve 4 points", "final val loss of the curve runs")] = [
                indicator.predict(c, context) for c in candidates]
    runs = [run for _, run in getattr(indicator, "runs", [])]
    cpu_minutes = (time.process_time() - cpu) / 60
    recorded = sum(float(run.get("seconds") or 0.0) for run in runs) / 60  # the runs' own cost, cached or not
    return [{"variant": label, "predicted": values, "cpu_minutes": max(cpu_minutes, recorded),
             "runs": len(runs), **agreement(values, truth)} for label, values in predicted.items()]


def curve_reference(rows: list[dict]) -> dict:
    """The candidates' own validation accuracy at their first check: a learning-curve indicator's
    best case, at a fifth of the budget per candidate."""
    predicted = [row["curve"][0]["val_accuracy"] if row.get("curve") else 0.5 for row in rows]
    minutes = sum(row["minutes"] / 5 for row in rows)
    return {"variant": CURVE, "predicted": predicted, "cpu_minutes": minutes, "runs": len(rows),
            **agreement(predicted, [row["test_accuracy"] for row in rows])}


def seen_reference(rows: list[dict]) -> dict:
    """The pairs each candidate really saw in its budget: what ``budget_examples`` predicts, read
    from the ground truth, so its rank separates the idea from the speed measurement's error."""
    predicted = [float(row["examples"]) for row in rows]
    return {"variant": SEEN, "predicted": predicted, "cpu_minutes": 0.0, "runs": 0,
            **agreement(predicted, [row["test_accuracy"] for row in rows])}


def render(results: list[dict], rows: list[dict]) -> str:
    accuracies = [r["test_accuracy"] for r in rows]
    lines = [f"{len(rows)} ground-truth candidates (test accuracy {min(accuracies):.4f} - "
             f"{max(accuracies):.4f}); regret 0: the indicator's first choice is the best",
             "", "| indicator | Spearman | Kendall | regret | first choice (#) | brief runs | CPU-min |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['variant']} | {r['spearman']:.3f} | {r['kendall']:.3f} | {r['regret']:.4f} "
                     f"| {rows[r['picked']]['index']} | {r['runs']} | {r['cpu_minutes']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=None,
                        help="variant names (default: all); see --list")
    parser.add_argument("--ground-truth", default=str(GROUND_TRUTH))
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the brief runs, the proxies)")
    parser.add_argument("--workers", type=int, default=1,
                        help="brief runs at once (a local Ray of that many CPUs, one thread each)")
    parser.add_argument("--allocator", choices=ALLOCATORS, default="kept",
                        help="the ground truth's rows to rank (bench/indicator_bench.py --allocator); the "
                             "brief runs and meters here train with the same")
    parser.add_argument("--learning-rate", default="1e-3",
                        help="the ground truth's rows trained at this rate ('own': each at its own)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    use_allocator(args.allocator)  # before Ray starts, so its workers inherit it
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the brief runs' progress
    torch.set_num_threads(args.threads)
    if args.list:
        print("\n".join([*VARIANTS, *REFERENCES]))
        return 0
    rows = ground_truth(Path(args.ground_truth), args.allocator, held_rate(args.learning_rate))
    if len(rows) < 3:
        raise SystemExit(f"{len(rows)} ground-truth candidates with --allocator {args.allocator} "
                         f"--learning-rate {args.learning_rate}: at least 3 are needed to rank")
    chosen = args.variants or [*VARIANTS, *REFERENCES]
    unknown = [v for v in chosen if v not in VARIANTS and v not in REFERENCES]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {[*VARIANTS, *REFERENCES]}")
    results = []
    with tempfile.TemporaryDirectory(prefix="indicator-eval-") as speed_cache:
        for name in chosen:
            started = time.perf_counter()
            if name == CURVE:
                found = [curve_reference(rows)]
            elif name == SEEN:
                found = [seen_reference(rows)]
            else:
                # the budget_examples variants time the same Latin-hypercube sample: measured once
                shared = speed_cache if name.startswith("budget_examples") else None
                found = evaluate(name, VARIANTS[name], rows, args.workers, shared)
            results.extend(found)
            for result in found:
                print(f"{result['variant']}: Spearman {result['spearman']:.3f}, "
                      f"regret {result['regret']:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    print()
    print(render(results, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
