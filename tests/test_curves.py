"""The learning-curve variant of the surrogate: real brief runs validated along the way, and the
extrapolation of their curve to the students' budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import CONSTRAINTS
from avatar.distill.brief import BriefRun, brief_run
from avatar.distill.settings import DistillSettings
from avatar.distill.student import build_tokenizer
from avatar.learn.curves import extrapolate
from avatar.learn.training import wall_clock_seconds
from avatar.plugins.indicators.surrogate import SurrogateIndicator
from avatar.plugins.tasks.demo import DemoTask
from avatar.search.objectives import MeterContext
from avatar.search.smt import Pruner
from avatar.teach.teacher import Knowledge
from tests.helpers import load_space

TINY = {
    "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
    "attention_probs_dropout_prob": 0.1, "max_sequence_length": 64, "position_embedding_type": "absolute",
    "learning_rate": 1e-3, "batch_size": 16,
}


def test_a_curve_straight_in_log_examples_extrapolates_exactly() -> None:
    curve = [{"examples": n, "val_loss": 1.0 - 0.1 * math.log(n)} for n in (100, 200, 400)]
    assert extrapolate(curve, 4000) == pytest.approx(1.0 - 0.1 * math.log(4000))
    assert extrapolate(curve[:1], 4000) == curve[0]["val_loss"]  # one point: nothing to extrapolate from
    with pytest.raises(ValueError):
        extrapolate([], 10)


def test_the_students_time_budget_in_seconds() -> None:
    assert wall_clock_seconds({"max_time": "00:00:30:00"}, "trainer.max_time") == 1800.0
    assert wall_clock_seconds({"max_time": {"minutes": 2}}, "trainer.max_time") == 120.0
    assert wall_clock_seconds({"max_epochs": 3}, "trainer.max_time") is None


def test_a_brief_run_records_its_curve_and_the_target_reads_it_at_the_students_budget(tmp_path) -> None:
    task = DemoTask()
    space = load_space("tiny")
    candidate = space.validate(TINY)
    gold = np.array([e.label for e in task.read_split("unlabel_train")], dtype=np.int64)
    knowledge = Knowledge(task.name, "gold", task.fingerprint("unlabel_train"),
                          logits=np.eye(task.num_labels)[gold] * 6 - 3, gold=gold)
    settings = DistillSettings(fast=True, max_train_examples=160, seed=0, measure_energy=False)
    unit = BriefRun(candidate, settings,
                    {"accelerator": "cpu", "max_epochs": 1, "max_steps": -1, "limit_val_batches": 1},
                    build_tokenizer(candidate, task, tmp_path), None, str(tmp_path), curve_points=3,
                    curve_batches=1)
    record = brief_run(unit, task, knowledge)
    assert [p["step"] for p in record["curve"]] == [3, 7, 10]  # 160 examples at 16 a step, in thirds
    assert [p["examples"] for p in record["curve"]] == [48, 112, 160]
    assert all(0.0 <= p["val_accuracy"] <= 1.0 and p["val_loss"] > 0 for p in record["curve"])
    assert record["examples_per_s"] > 0
    indicator = SurrogateIndicator(curve_points=3)
    indicator.student_seconds = 600.0
    seen = record["examples_per_s"] * 600.0
    assert indicator._target(record) == pytest.approx(-extrapolate(record["curve"], seen))
    assert indicator._budget()["curve_points"] == 3  # in the cache key: runs without curves are redone
    indicator.grouped = True  # students on length-grouped batches: their brief runs are other runs
    assert indicator._budget()["group_by_length"] is True
    indicator.canonical = True  # students on canonical names: so are the brief runs
    assert indicator._budget()["canonical_names"] is True


def test_a_wall_clock_brief_run_spreads_its_curve_over_its_seconds(tmp_path) -> None:
    """``budget_seconds`` with ``curve_points``: no step count to split, so the points are spread
    over the run's seconds, the last one on its final weights."""
    task = DemoTask()
    candidate = load_space("tiny").validate(TINY)
    gold = np.array([e.label for e in task.read_split("unlabel_train")], dtype=np.int64)
    knowledge = Knowledge(task.name, "gold", task.fingerprint("unlabel_train"),
                          logits=np.eye(task.num_labels)[gold] * 6 - 3, gold=gold)
    settings = DistillSettings(fast=True, seed=0, measure_energy=False)
    trainer = {"accelerator": "cpu", "max_epochs": -1, "max_steps": -1, "max_time": {"seconds": 4},
               "limit_val_batches": 1}
    unit = BriefRun(candidate, settings, trainer, build_tokenizer(candidate, task, tmp_path), None,
                    str(tmp_path), curve_points=3, curve_batches=1, curve_seconds=4.0)
    record = brief_run(unit, task, knowledge)
    steps = [p["step"] for p in record["curve"]]
    assert len(steps) == 3 and steps == sorted(set(steps)) and steps[0] > 0
    assert record["curve"][-1]["examples"] == steps[-1] * 16  # the last point: the run's end


def test_curve_points_need_a_time_budget_and_two_points(tmp_path) -> None:
    with pytest.raises(AvatarError, match="curve_points must be 0 .off. or at least 2"):
        SurrogateIndicator(curve_points=1)
    space = load_space("tiny")
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=1.0)], num_labels=2, seed=0)
    context = MeterContext(space, 2, None, task=DemoTask(), pruner=pruner, cache_dir=tmp_path)
    with pytest.raises(AvatarError, match="set trainer.max_time"):
        SurrogateIndicator(curve_points=3).prepare(context)
