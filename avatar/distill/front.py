"""Distilling the chosen members of a Pareto front: which ones, in which order, on which executor."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerFast

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_json
from avatar.core.progress import progress_bar
from avatar.distill.race import RaceSettings, race_front
from avatar.distill.settings import (
    DistillResult,
    DistillSettings,
    finished_result,
    relative_paths,
    run_signature,
    student_key,
)
from avatar.distill.student import (
    build_tokenizer,
    default_cache_dir,
)
from avatar.distill.train import distill_candidate
from avatar.run.executor import Executor, LocalExecutor
from avatar.search.cost import forward_flops
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars
from avatar.task.base import Task
from avatar.teach.teacher import Knowledge

log = logging.getLogger("avatar")




def spread(front: Sequence[Any], k: int) -> list[int]:
    """``k`` indices spread evenly along the front (both ends included)."""
    if k >= len(front):
        return list(range(len(front)))
    if k == 1:
        return [len(front) // 2]
    return sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)})


def training_cost(candidate: Candidate, num_labels: int) -> float:
    """A training's relative cost on a fixed budget of examples, so an executor starts the longest
    first: the forward FLOPs of one example (the backward pass is about twice the forward)."""
    return float(forward_flops(candidate_vars(candidate, num_labels)))


@dataclass(frozen=True)
class StudentRun:
    """One final student, self-contained: what a worker needs besides the task and knowledge."""

    candidate: Candidate
    settings: DistillSettings
    trainer: dict[str, Any]
    out_dir: Path
    tokenizer: PreTrainedTokenizerFast  # built by the driver, so workers write no cache


def train_student(unit: StudentRun, task: Task, knowledge: Knowledge) -> DistillResult:
    """Distil ``unit`` into its folder (resuming or returning a finished one), on any worker.

    The student's folder is written where it trains (checkpoints make it resumable), so on
    a cluster the run directory must be on a file system every worker sees.
    """
    if not unit.out_dir.parent.parent.is_dir():
        raise AvatarError(
            f"run directory {unit.out_dir.parent.parent} is not visible on this worker "
            f"({socket.gethostname()}): put the run directory on a file system the whole cluster "
            "shares (docs/scale.md)"
        )
    return distill_candidate(
        unit.candidate, task, knowledge, unit.settings, unit.out_dir, trainer=unit.trainer,
        tokenizer=unit.tokenizer,
    )


def distill_front(
    task: Task,
    space: Any,
    front: list[dict[str, Any]],
    top_k: int,
    knowledge: Knowledge,
    settings: DistillSettings,
    trainer: Mapping[str, Any],
    run_dir: Path,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    race: RaceSettings | None = None,
) -> list[dict[str, Any]]:
    """Distil ``top_k`` Pareto members spread across the front into ``run_dir/students/``
    (with a ``race``: the ``top_k`` best of ``race.members`` spread members distilled briefly).

    Each student trains in its own folder, on ``executor`` (default: one after another in
    this process); a rerun resumes each from its last checkpoint and returns finished ones
    as they are. ``students.json`` (front order) is rewritten by this process as each finishes.
    """
    executor = executor or LocalExecutor()
    settings = settings.for_task(task)  # canonical_names: auto decided once, before the tokenizers
    if executor.workers > 1:  # several progress bars would interleave: the driver's count stands for them
        settings = dataclasses.replace(settings, progress_bar=False)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    chosen = spread(front, top_k)
    tokenizers: dict[int, PreTrainedTokenizerFast] = {}  # by front index: a raced student's is reused

    def tokenizer_of(index: int, candidate: Candidate) -> PreTrainedTokenizerFast:
        if index not in tokenizers:
            tokenizers[index] = build_tokenizer(candidate, task, cache, settings.canonical_names)
        return tokenizers[index]

    raced: dict[int, float] = {}
    if race is not None and race.races(top_k):
        entrants = spread(front, race.members)
        candidates = [space.validate(front[index]["config"]) for index in entrants]
        entrant_tokenizers = [tokenizer_of(i, c) for i, c in zip(entrants, candidates, strict=True)]
        ranking = race_front(candidates, entrant_tokenizers, task, knowledge, settings, trainer, race,
                             Path(run_dir), executor)
        by_key = {c.key(): index for c, index in zip(candidates, entrants, strict=True)}
        raced = {by_key[r["key"]]: r["metric"] for r in ranking}
        chosen = sorted(by_key[r["key"]] for r in ranking[:top_k])
        log.info("race: Pareto members %s go on to the full budget (validation %s)", chosen,
                 ", ".join(f"{raced[i]:.4f}" for i in chosen))
    units = []
    for index in chosen:
        candidate = space.validate(front[index]["config"])
        out_dir = Path(run_dir) / "students" / student_key(candidate)
        units.append(StudentRun(candidate, settings, dict(trainer), out_dir, tokenizer_of(index, candidate)))
    log.info("distilling %d Pareto members %s on %s", len(units), chosen, executor.describe())
    finished: dict[int, dict[str, Any]] = {}
    # one bar for all when several train at once; a single student shows Lightning's own
    bar = progress_bar("students", len(units)) if executor.workers > 1 else nullcontext(lambda *_: None)
    with bar as update:

        def record(number: int, result: DistillResult) -> None:
            index = chosen[number]
            log.info("student of Pareto member %d finished in %s", index, result.student_dir)
            finished[number] = {
                "front_index": index, "objectives": front[index]["objectives"],
                **({"race_headline": raced[index]} if index in raced else {}), **result.to_dict()
            }
            atomic_write_json(Path(run_dir) / "students.json",  # paths relative: the run may move
                              [relative_paths(finished[n], run_dir) for n in sorted(finished)])
            update(len(finished))

        # Finished students are read here, in the driver: sent to an executor they would cost
        # a Ray start, the task and knowledge shipped, and a worker's imports, to read a file.
        todo = []
        for number, unit in enumerate(units):
            done = finished_result(unit.out_dir, run_signature(unit.candidate, unit.settings, unit.trainer))
            if done is not None:
                log.info("student %s already finished in %s", unit.candidate, unit.out_dir)
                record(number, done)
            else:
                todo.append(number)
        shared = {"task": task, "knowledge": knowledge}
        costs = [training_cost(units[n].candidate, task.num_labels) for n in todo]
        for position, result in executor.map(train_student, [units[n] for n in todo], shared, costs):
            record(todo[position], result)
    students = [finished[n] for n in sorted(finished)]
    if students and all(s.get("collapsed") for s in students):
        log.warning(all_collapsed_advice(knowledge, trainer, settings))
    return students


def all_collapsed_advice(knowledge: Knowledge, trainer: Mapping[str, Any], settings: DistillSettings) -> str:
    """What to change when every student predicts one class: the one line a run ends with.

    Why: each collapse is logged as it happens, but a user whose run gave no usable model
    needs the way out, not the symptom: a weak teacher teaches nothing, and a budget of a
    few dozen steps leaves a student on its first plateau.
    """
    agreement = knowledge.gold_agreement()
    teacher = "" if agreement is None else f"the teacher agrees with gold on {agreement:.0%}; "
    budget = (f"trainer.max_time={trainer['max_time']}" if trainer.get("max_time")
              else f"trainer.max_epochs={trainer.get('max_epochs')}, distill.min_steps={settings.min_steps}")
    return (f"every student collapsed to one class ({teacher}budget {budget}): give the students more "
            "steps (distill.min_steps, trainer.max_epochs or max_time), a better teacher "
            "(teacher.trainer.min_steps, teacher=<a pretrained model>), or a smaller learning rate "
            "in the space")


def students_estimate(top_k: int, trainer: dict[str, Any], workers: int = 1, min_steps: int = 0) -> str:
    """What the distillation stage will cost, said before it starts."""
    budget = trainer.get("max_time")
    if budget:
        at_once = max(1, min(workers, top_k))
        rounds = math.ceil(top_k / at_once)
        rounds_note = f", {at_once} at a time: about {rounds} x that in all" if workers > 1 else ""
        return f"{top_k} to distil, each for at most {budget} (trainer.max_time) plus its test{rounds_note}"
    steps, epochs = trainer.get("max_steps", -1), trainer.get("max_epochs")
    limit = f"{steps} steps" if steps and steps > 0 else f"{epochs} epochs over the unlabeled split"
    if not (steps and steps > 0) and min_steps > 0:
        limit += f", at least {min_steps} steps (distill.min_steps)"
    return f"{top_k} to distil, each for {limit} (set trainer.max_time to bound the wall time)"


CURVE_COLUMNS = ("step", "epoch", "train/loss", "val/loss", "val/accuracy", "val/f1", "val/selection")


def student_curves(students: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every student's training curve from its CSV log, one row per logged step, keyed by student.

    Why here, in the driver: students may train on Ray workers, and only the driver writes
    the run's wandb log; the CSV each student's folder keeps is read back once it finished.
    """
    import csv

    rows: list[dict[str, Any]] = []
    for student in students:
        folder = Path(student["student_dir"]).parent if student.get("student_dir") else None
        if folder is None:
            continue
        for path in sorted(folder.glob("logs/version_*/metrics.csv")):
            with open(path, encoding="utf-8") as handle:
                for record in csv.DictReader(handle):
                    values = {k: float(record[k]) for k in CURVE_COLUMNS if record.get(k) not in (None, "")}
                    if len(values) > 2:  # more than step and epoch
                        rows.append({"student": folder.name, "front_index": student.get("front_index"),
                                     **values})
    return rows
