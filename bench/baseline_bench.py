"""The classical baseline on real data: TF-IDF + logistic regression on BigCloneBench and Devign.

Why: a distilled 3 MB student is worth its search and training only where it beats what a
classical model learns in a minute on a CPU. This fits ``avatar.teach.tfidf`` (the ``tfidf``
teacher and the report's baseline row, default options) on each task's labeled half
(``label_train``, gold labels only) and scores it on the whole test split (clone: the 4,000
sampled pairs, headline F1; vuln: all 2,732 Devign test functions, headline accuracy).

Printed, one table each:

1. per task: test accuracy and F1, fit seconds (vocabulary and regression), prediction
   seconds for the whole test split, the pickled model's MB; for clone, the agreement of its
   ``unlabel_train`` predictions with the paper teachers' labels (argmax of
   ``bigclonebench/teacher_logits/*.npy``) and with the gold labels, beside the reference
   numbers of our students and the paper's teachers;
2. the ablation behind the defaults (``--no-ablation`` skips it): on clone, which pair
   features (``sum``, a bag of both functions, against the product, the absolute difference
   and the cosine of the two TF-IDF vectors), then without identifier parts; on vuln,
   without identifier parts and unigrams only. Valid and test, so a choice can be read off
   the valid column.

    AVATAR_DATA=/path/to/data nice -n 19 python bench/baseline_bench.py [--tasks clone vuln] [--no-ablation]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avatar.core.registry import TASKS  # noqa: E402
from avatar.report.measure import score  # noqa: E402
from avatar.task.base import Task  # noqa: E402
from avatar.teach.tfidf import TfidfClassifier, TfidfOptions, labeled_half  # noqa: E402

REFERENCE = {  # docs/benchmarks.md and README (test accuracy)
    "clone": "students ~0.92 (best 3 MB), paper teachers ~0.96",
    "vuln": "students ~0.59, teachers ~0.60-0.61",
}
PAPER_TEACHERS = {
    "CodeBERT": "codebert_unlabel_train.npy",
    "GraphCodeBERT": "graphcodebert_unlabel_train.npy",
}
ABLATION: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "clone": [
        ("pair_features=sum (a bag of both)", {"pair_features": ["sum"]}),
        ("pair_features=cosine", {"pair_features": ["cosine"]}),
        ("pair_features=product", {"pair_features": ["product"]}),
        ("pair_features=diff", {"pair_features": ["diff"]}),
        ("pair_features=diff+cosine", {"pair_features": ["diff", "cosine"]}),
        ("pair_features=product+diff+cosine (default)", {}),
        ("default, no identifier parts", {"identifier_parts": False}),
        ("default, max_features=50000", {"max_features": 50_000}),
    ],
    "vuln": [
        ("default (1-2-grams, identifier parts)", {}),
        ("no identifier parts", {"identifier_parts": False}),
        ("ngram_range=[1, 1]", {"ngram_range": [1, 1]}),
        ("max_features=50000", {"max_features": 50_000}),
    ],
}


def evaluate(task: Task, model: TfidfClassifier, split: str) -> tuple[dict[str, float], float]:
    """The task's metrics on the whole split, and the prediction's wall seconds."""
    examples = task.read_split(split)  # type: ignore[arg-type]
    started = time.perf_counter()
    predictions = model.predict([example.code for example in examples])
    seconds = time.perf_counter() - started
    return score(task, predictions, [example.label for example in examples]), seconds


def fit(task: Task, options: dict[str, Any]) -> TfidfClassifier:
    codes, labels = labeled_half(task)
    return TfidfClassifier(TfidfOptions.create(**options)).fit(codes, labels, task.num_labels)


def teacher_agreement(task: Task, model: TfidfClassifier) -> str:
    """Agreement of the model's unlabel_train labels with each paper teacher's and with gold."""
    mine = model.predict([example.code for example in task.read_split("unlabel_train")])
    folder = task.directory / "teacher_logits"  # type: ignore[attr-defined]
    parts = []
    for name, file in PAPER_TEACHERS.items():
        if (folder / file).is_file():
            theirs = np.load(folder / file)[: len(mine)].argmax(axis=1)
            parts.append(f"{name} {np.mean(mine == theirs):.4f}")
    gold = np.array([-1 if v is None else v for v in task.gold_labels_for_unlabeled()])
    known = gold >= 0
    if known.any():
        parts.append(f"gold {np.mean(mine[known] == gold[known]):.4f}")
    return ", ".join(parts) or "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["clone", "vuln"], choices=["clone", "vuln"])
    parser.add_argument("--data", default=os.environ.get("AVATAR_DATA"), help="data root ($AVATAR_DATA)")
    parser.add_argument("--no-ablation", action="store_true", help="only the default options")
    args = parser.parse_args()
    if not args.data:
        parser.error("set AVATAR_DATA or --data to the folder holding bigclonebench/ and devign/")
    root = Path(args.data)
    print(f"TF-IDF + LR, default options: {TfidfOptions().describe()}\n")
    print("| task | labeled (fit) | test examples | test accuracy | test F1 | fit s | predict s (test) "
          "| model MB | unlabel_train agreement | reference (test accuracy) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    tasks = {name: TASKS.create(name, data_dir=str(root)) for name in args.tasks}
    for name, task in tasks.items():
        model = fit(task, {})
        metrics, seconds = evaluate(task, model, "test")
        agreement = teacher_agreement(task, model) if name == "clone" else "n/a (no teacher labels)"
        size = model.size_bytes() / 2**20
        print(f"| {name} | {model.examples:,} | {len(task.read_split('test')):,} | {metrics['accuracy']:.4f} "
              f"| {metrics['f1']:.4f} | {model.fit_seconds:.1f} | {seconds:.1f} | {size:.2f} "
              f"| {agreement} | {REFERENCE[name]} |", flush=True)
    if args.no_ablation:
        return
    print("\n| task | variant | valid accuracy | valid F1 | test accuracy | test F1 | fit s | model MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, task in tasks.items():
        for label, options in ABLATION[name]:
            model = fit(task, options)
            valid, _ = evaluate(task, model, "valid")
            test, _ = evaluate(task, model, "test")
            size = model.size_bytes() / 2**20
            print(f"| {name} | {label} | {valid['accuracy']:.4f} | {valid['f1']:.4f} "
                  f"| {test['accuracy']:.4f} | {test['f1']:.4f} | {model.fit_seconds:.1f} | {size:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
