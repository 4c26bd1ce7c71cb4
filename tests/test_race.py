"""The race before the students: brief real distillations of front members, the best go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avatar.core.errors import AvatarError
from avatar.distill.front import distill_front
from avatar.distill.race import RACE_FILE, RaceSettings, brief_trainer
from avatar.distill.settings import DistillSettings
from avatar.plugins.tasks.demo import DemoTask
from avatar.run.executor import LocalExecutor
from tests.helpers import load_space
from tests.test_distill import TINY, gold_knowledge


def test_the_race_distils_each_member_briefly_and_the_best_go_on_and_a_rerun_resumes(tmp_path: Path) -> None:
    space = load_space("tiny")
    task = DemoTask(limit=48)
    knowledge = gold_knowledge(task, soft=True)
    front = [{"config": {**TINY, "hidden_size": width}, "objectives": {"size_mb": 0.1 * n}}
             for n, width in enumerate((16, 32, 64))]
    race = RaceSettings(members=3, minutes=0.03)  # about 2 s each
    arguments = (task, space, front, 1, knowledge, DistillSettings(progress_bar=False),
                 {"max_steps": 4, "max_epochs": -1, "limit_val_batches": 1}, tmp_path)
    students = distill_front(*arguments, cache_dir=tmp_path / "cache", race=race)
    records = json.loads((tmp_path / RACE_FILE).read_text())
    assert len(records) == 3 and all(r["examples"] > 0 for r in records)
    best = max(records, key=lambda r: (not r["collapsed"], r["metric"]))
    assert len(students) == 1 and students[0]["candidate"] == best["config"]
    assert students[0]["race_headline"] == best["metric"]

    class Refuses(LocalExecutor):
        def map(self, function, units, shared=None, costs=None):  # noqa: ANN001, ANN201
            assert not units, f"{len(units)} finished runs were sent to the executor"
            return iter(())

    again = distill_front(*arguments, cache_dir=tmp_path / "cache", race=race, executor=Refuses())
    assert again == students
    # a race of another length is not the recorded one: its members run again
    with pytest.raises(AssertionError, match="3 finished runs were sent"):
        distill_front(*arguments, cache_dir=tmp_path / "cache", race=RaceSettings(members=3, minutes=0.04),
                      executor=Refuses())


def test_race_options_are_checked_in_one_line_and_the_budget_is_the_race_s() -> None:
    assert not RaceSettings.from_config(None).races(2)
    assert not RaceSettings(members=2).races(2) and RaceSettings(members=3).races(2)
    with pytest.raises(AvatarError, match="distill.race.members must be an integer >= 0"):
        RaceSettings.from_config({"members": -1})
    with pytest.raises(AvatarError, match="distill.race.minutes must be a positive number"):
        RaceSettings.from_config({"members": 4, "minutes": 0})
    with pytest.raises(AvatarError, match="unknown distill.race option"):
        RaceSettings.from_config({"member": 4})
    students = {"max_time": "00:01:00:00", "val_check_interval": 400, "limit_val_batches": 16}
    options = brief_trainer(students, 5)
    assert options == {"max_time": {"seconds": 300.0}, "max_epochs": -1, "limit_val_batches": 16}
    assert "5 min each" in RaceSettings(members=4, minutes=5).estimate(2)
