"""One brief distillation, the unit of both the surrogate indicator and the race.

Why one place: the surrogate's preparation (``avatar.plugins.indicators.surrogate``) and the
race before the students (``avatar.distill.race``) both distil a candidate on a small budget
with the students' recipe (``fast=True``) on whatever worker the executor gives them, and rank
candidates by the record. One function keeps the two from drifting apart (a recipe change lands
in both) and keeps the plugin importing the library, not the other way round.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from avatar.distill.settings import DistillSettings
from avatar.distill.student import VAL_FLIP_RATE
from avatar.distill.train import distill_candidate
from avatar.learn.curves import ValidationCurve
from avatar.search.space import Candidate
from avatar.task.base import Task
from avatar.teach.teacher import Knowledge


@dataclass(frozen=True)
class BriefRun:
    """One brief distillation, self-contained: what a worker needs besides the task and knowledge."""

    candidate: Candidate
    settings: DistillSettings  # fast=True
    trainer: dict[str, Any]
    tokenizer: Any  # built by the driver, so workers write no cache
    learning_rate: float | None = None  # the brief runs' own learning rate, or None: the candidate's
    cache_dir: str | None = None  # where the driver cached the validation split's metamorphic copy
    curve_points: int = 0  # validation points during the run (the learning-curve variant)
    curve_batches: int | None = None  # validation batches per point
    curve_seconds: float | None = None  # a wall-clock brief run: its points spread over these seconds


def brief_run(unit: BriefRun, task: Task, knowledge: Knowledge) -> dict[str, Any]:
    """Distil ``unit`` briefly; its record (the driver writes it): ``metric`` is the last weights'
    validation headline, which is what the surrogate fits and the race ranks."""
    trained = unit.candidate
    if unit.learning_rate is not None:
        trained = Candidate.from_dict({**trained.as_dict(), "learning_rate": unit.learning_rate})
    curve = (ValidationCurve(unit.curve_points, unit.curve_batches, unit.curve_seconds)
             if unit.curve_points else None)
    result = distill_candidate(
        trained, task, knowledge, unit.settings, trainer=unit.trainer, tokenizer=unit.tokenizer,
        cache_dir=unit.cache_dir, callbacks=[curve] if curve else (),
    )
    return {
        "key": unit.candidate.key(), "config": unit.candidate.as_dict(), "metric": result.headline,
        "val_loss": result.metrics.get("val/loss"), "val_flip_rate": result.metrics.get(VAL_FLIP_RATE),
        "seconds": result.train_seconds, "examples": result.train_examples,
        "examples_per_s": result.train_examples_per_second,
        **({"curve": curve.curve} if curve else {}),
        "energy_kwh": result.train_energy_kwh, "collapsed": result.collapsed, "host": socket.gethostname(),
    }
