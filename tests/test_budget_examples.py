"""The budget_examples indicator: real training steps of untrained students, times the students' budget."""

from __future__ import annotations

import json
import math

import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS
from avatar.search.objectives import MeterContext
from tests.helpers import TINY_STUDENT, load_space

BASE = TINY_STUDENT


def test_more_work_per_example_predicts_fewer_examples_and_the_budget_scales_it(tmp_path) -> None:
    space = load_space("tiny")
    context = MeterContext(space, 2, str(tmp_path), student_seconds=600.0)
    indicator = INDICATORS.create("budget_examples", runs=2)
    indicator.prepare(context)
    light = indicator.predict(space.validate(BASE), context)
    heavy = indicator.predict(space.validate({**BASE, "num_hidden_layers": 4, "hidden_size": 96,
                                              "intermediate_size": 384}), context)
    assert math.isfinite(light) and light > heavy
    # the measurement is meters=trainable's, kept in the run directory: a resumed search re-measures nothing
    assert len(json.loads((tmp_path / "train_speed_cache.json").read_text())) == 2
    longer = MeterContext(space, 2, str(tmp_path), student_seconds=6000.0)
    assert indicator.predict(space.validate(BASE), longer) == pytest.approx(light + 1.0)


def test_a_budget_in_epochs_is_one_clear_line() -> None:
    indicator = INDICATORS.create("budget_examples")
    with pytest.raises(AvatarError, match="set trainer.max_time"):
        indicator.prepare(MeterContext(load_space("tiny"), 2))
