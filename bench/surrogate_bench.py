"""Benchmark: does the surrogate indicator predict real distillation results? Prints a table.

Runs the surrogate's preparation on real data (default: BigCloneBench with the paper's
CodeBERT logits): K feasible candidates picked by adaptive random sampling, each distilled
briefly, then a Bayesian ridge fit. Prints each run and the leave-one-out mean absolute
error of the surrogate for both targets (``headline``: the validation accuracy/F1 the
paper uses; ``loss``: the negated validation loss) next to the error of predicting the
mean of the other runs. Runs are cached under the Avatar cache, so a second budget or a
rerun only pays for what is new.

    AVATAR_DATA=/path/to/data python bench/surrogate_bench.py indicator.samples=12 \\
        indicator.train_examples=2000 [executor=ray] [any search.py override]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from avatar.core.registry import INDICATORS  # noqa: E402
from avatar.plugins.indicators.surrogate import encode  # noqa: E402
from avatar.search.objectives import MeterContext  # noqa: E402
from avatar.search.regression import leave_one_out_error, mean_predictor_error  # noqa: E402
from avatar.stages import (  # noqa: E402
    build_executor,
    build_pruner,
    build_space,
    build_task,
    cache_dir,
    hardware,
    teacher_parts,
)

DEFAULTS = ["task=clone", "teacher=paper_codebert", "indicator=surrogate", "logger=none"]


def main() -> None:
    overrides = DEFAULTS + sys.argv[1:]
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=overrides)
    task, space = build_task(cfg), build_space(cfg)
    pruner = build_pruner(cfg, space, task.num_labels)
    teacher = teacher_parts(cfg, task)
    indicator = INDICATORS.build(dict(cfg.indicator))
    with tempfile.TemporaryDirectory() as run_dir:
        context = MeterContext(
            space, task.num_labels, run_dir, task=task, pruner=pruner, cache_dir=cache_dir(cfg),
            trainer=hardware(cfg), knowledge=lambda: teacher.knowledge, executor=build_executor(cfg),
        )
        started = time.perf_counter()
        indicator.prepare(context)
        context.executor.close()
        seconds = time.perf_counter() - started
        summary = json.loads((Path(run_dir) / "surrogate.json").read_text())
    runs = summary["runs"]
    print(f"overrides: {' '.join(overrides)}")
    metric = summary["headline_metric"]
    brief_lr = summary["budget"].get("learning_rate")
    own = "each candidate's own (the lr column)"
    print(f"brief runs' learning rate: {brief_lr if brief_lr is not None else own}")
    print(f"| # | layers | hidden | vocab | tokenizer | seq | lr | val {metric} | val loss | collapsed | s |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|")
    for number, run in enumerate(runs, start=1):
        c = run["config"]
        print(f"| {number} | {c['num_hidden_layers']} | {c['hidden_size']} | {c['vocab_size']} "
              f"| {c['tokenizer']} | {c['max_sequence_length']} | {c['learning_rate']:g} "
              f"| {run['metric']:.4f} | {run['val_loss']:.4f} | {'yes' if run.get('collapsed') else 'no'} "
              f"| {run['seconds']:.1f} |")
    skip = frozenset(summary.get("fixed", []))
    features = np.array([encode(space, space.validate(r["config"]), skip) for r in runs])
    print("\n| target | surrogate LOO MAE | mean predictor LOO MAE | ratio |")
    print("|---|---:|---:|---:|")
    targets = {"headline": [r["metric"] for r in runs], "loss": [-r["val_loss"] for r in runs]}
    for target, values in targets.items():
        y = np.array(values, dtype=float)
        surrogate, mean = leave_one_out_error("ridge", features, y), mean_predictor_error(y)
        print(f"| {target} | {surrogate:.4f} | {mean:.4f} | {surrogate / mean:.2f} |")
    print(f"\n{len(runs)} runs; preparation {seconds:.0f} s (cached runs are reused)")


if __name__ == "__main__":
    main()
