"""The report's sentences about a run: where it measured, what a logits teacher is, what greening cost."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from avatar.run.executor import Executor
from avatar.teach.teacher import Knowledge, Teacher


def placement_note(executor: Executor) -> str:
    """Where the report's numbers come from, and where the training ran."""
    return (
        f"Measured in the driver process on {socket.gethostname()}, after every training run had "
        "finished and with no Ray beside it; the surrogate's brief runs and the students trained on "
        f"{executor.describe()}."
    )


def logits_teacher_note(teacher: Teacher, knowledge: Knowledge) -> str:
    """What the report can say of a teacher that is only its knowledge (the paper's logits files, the
    ``tfidf`` teacher)."""
    agreement = knowledge.gold_agreement()
    with_gold = "" if agreement is None else (
        f" Its labels agree with the gold labels on {agreement:.2%} of those examples, so a student's "
        "accuracy is close to its agreement with the teacher.")
    head = (f"Teacher {teacher.model_name}: its knowledge is its predictions on "
            f"{len(knowledge):,} unlabeled examples (a file, or a model with no folder of its own)")
    if teacher.architecture:
        return (f"{head}. Its row is its architecture with random weights: its size, latency and energy, "
                "so the ratios and the payback, are measured, its accuracy is not; the students' agreement "
                "with it is measured on unlabeled examples held out of their training "
                f"(distill.holdout).{with_gold}")
    return f"{head}, with no model to measure: no teacher row, ratios or payback.{with_gold}"


def greening_cost(run_dir: Path, students: list[dict[str, Any]]) -> dict[str, float]:
    """Energy the greening itself used: the surrogate's brief runs and the students' training."""
    cost = {"students_kwh": sum(float(s.get("train_energy_kwh") or 0.0) for s in students)}
    surrogate = run_dir / "surrogate.json"
    if surrogate.is_file():
        runs = json.loads(surrogate.read_text(encoding="utf-8")).get("runs", [])
        cost["surrogate_kwh"] = sum(float(r.get("energy_kwh") or 0.0) for r in runs)
    return cost
