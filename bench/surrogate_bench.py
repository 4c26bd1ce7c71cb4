"""Benchmark: fit the paper's surrogate on real data and report its leave-one-out error.

Distils K feasible 3 MB candidates (adaptive random sampling) briefly on BigCloneBench
with the paper's CodeBERT teacher logits (or any task/teacher via Hydra overrides), fits
the Bayesian ridge regression, and prints each run and the leave-one-out MAE.
Run: ``.venv/bin/python bench/surrogate_bench.py [hydra overrides ...]``, e.g.
``indicator.samples=20 indicator.max_steps=60 data.limit=4000``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from avatar.objectives import MeterContext, build_plugin  # noqa: E402
from avatar.pipeline import build_pruner, build_space, build_task  # noqa: E402
from avatar.registry import INDICATORS  # noqa: E402

DEFAULTS = ["task=clone", "teacher=paper_codebert", "indicator=surrogate", "logger=none"]


def main() -> None:
    overrides = DEFAULTS + sys.argv[1:]
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=overrides)
    task = build_task(cfg)
    space = build_space(cfg)
    pruner = build_pruner(cfg, space, task.num_labels)
    indicator = build_plugin(INDICATORS, dict(cfg.indicator))
    with tempfile.TemporaryDirectory() as run_dir:
        extras = {"task": task, "cfg": cfg, "pruner": pruner}
        context = MeterContext(space, task.num_labels, run_dir, extras=extras)
        started = time.perf_counter()
        indicator.prepare(context)
        seconds = time.perf_counter() - started
        summary = json.loads((Path(run_dir) / "surrogate.json").read_text())
    print(f"overrides: {' '.join(overrides)}")
    print(f"| # | layers | hidden | vocab | tokenizer | seq | lr | val {summary['headline_metric']} | s |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for number, run in enumerate(summary["runs"], start=1):
        c = run["config"]
        print(f"| {number} | {c['num_hidden_layers']} | {c['hidden_size']} | {c['vocab_size']} "
              f"| {c['tokenizer']} | {c['max_sequence_length']} | {c['learning_rate']:g} "
              f"| {run['metric']:.4f} | {run['seconds']:.1f} |")
    print(f"\nleave-one-out MAE: {summary['loo_mae']:.4f} (metric mean {summary['metric_mean']:.4f}, "
          f"std {summary['metric_std']:.4f}); preparation {seconds:.0f} s (cached runs are reused)")


if __name__ == "__main__":
    main()
