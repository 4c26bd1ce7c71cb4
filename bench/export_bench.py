"""Benchmark: a saved student against its ONNX and int8 exports on a task's test set.

Exports the student (``avatar.report.export.export_all``), predicts the test split with the
torch, ONNX and int8 backends, and prints a table: file size, headline metric, label
agreement with the torch student, max |logit difference|, and batch-1 latency.
Run: ``.venv/bin/python bench/export_bench.py <student dir> --task clone --examples 1000``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar.core.registry import TASKS  # noqa: E402
from avatar.report.export import export_all  # noqa: E402
from avatar.report.measure import model_size_mb, score  # noqa: E402
from avatar.report.predict import Predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("student", type=Path)
    parser.add_argument("--task", default="clone")
    parser.add_argument("--examples", type=int, default=1000, help="test examples (first N)")
    parser.add_argument("--latency-examples", type=int, default=50)
    args = parser.parse_args()

    task = TASKS.create(args.task)
    examples = task.read_split("test")[: args.examples]
    codes = [e.code for e in examples]
    labels = [e.label for e in examples]
    export_all(args.student, int8=True)

    results = {}
    for backend in ("torch", "onnx", "int8"):
        predictor = Predictor.load(args.student, backend=backend)
        logits = predictor.logits(codes, batch_size=32)
        times = []
        for code in codes[: args.latency_examples]:
            started = time.perf_counter()
            predictor.logits([code], batch_size=1)
            times.append((time.perf_counter() - started) * 1000)
        results[backend] = (logits, statistics.median(times))

    reference = results["torch"][0]
    print(f"student: {args.student}  task: {args.task}  test examples: {len(examples)}")
    print(f"| backend | size MB | {task.headline_metric} | label agreement with torch | max abs logit diff "
          "| latency ms (batch 1, median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend, (logits, latency) in results.items():
        metrics = score(task, logits.argmax(axis=-1), labels)
        agreement = float((logits.argmax(axis=-1) == reference.argmax(axis=-1)).mean())
        difference = float(np.abs(logits - reference).max())
        size = model_size_mb(args.student, backend)
        print(f"| {backend} | {size:.2f} | {metrics[task.headline_metric]:.4f} "
              f"| {agreement:.2%} | {difference:.2e} | {latency:.2f} |")


if __name__ == "__main__":
    main()
