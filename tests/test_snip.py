"""The SNIP zero-cost proxy: real untrained students, real tokenizers, one batch of knowledge."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS
from avatar.plugins.tasks.demo import DemoTask
from avatar.search.objectives import MeterContext
from avatar.teach.teacher import Knowledge
from tests.helpers import TINY_STUDENT, load_space

BASE = TINY_STUDENT


def test_snip_scores_candidates_from_one_batch_and_caches_by_architecture(tmp_path) -> None:
    task = DemoTask()
    space = load_space("tiny")
    gold = np.array([e.label for e in task.read_split("unlabel_train")], dtype=np.int64)
    knowledge = Knowledge(task.name, "gold", task.fingerprint("unlabel_train"),
                          logits=np.eye(task.num_labels)[gold] * 6 - 3, gold=gold)
    context = MeterContext(space, task.num_labels, None, task=task, cache_dir=str(tmp_path),
                           knowledge=lambda: knowledge)
    indicator = INDICATORS.create("snip", examples=16)
    with pytest.raises(AvatarError, match="not prepared"):
        indicator.predict(space.validate(BASE), context)
    indicator.prepare(context)
    small = space.validate(BASE)
    wide = space.validate({**BASE, "hidden_size": 64, "intermediate_size": 128})
    scores = [indicator.predict(c, context) for c in (small, wide)]
    assert all(np.isfinite(scores)) and scores[0] != scores[1]
    assert indicator.predict(space.validate({**BASE, "learning_rate": 5e-4}), context) == scores[0]
    assert len(indicator.scores) == 2  # the recipe's dimensions share the architecture's score
    again = INDICATORS.create("snip", examples=16)
    again.prepare(context)
    assert again.predict(small, context) == pytest.approx(scores[0])  # seeded


def test_snip_needs_two_examples() -> None:
    with pytest.raises(AvatarError, match="at least 2"):
        INDICATORS.create("snip", examples=1)
