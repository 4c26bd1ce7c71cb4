"""A race before the students: several front members distilled briefly, the best go on to the full budget.

Why: the effectiveness indicator of a search over the paper's whole space is a model (the
examples a student gets through in its budget, what it reads of each, its work per example),
and what it cannot see can decide: on BigCloneBench at 30 minutes the same student with a BPE
vocabulary of 1,000 instead of 2,000 reached 0.8310 instead of 0.8848, and the indicator's picks
sat on that plateau (docs/benchmarks.md, "What the whole-space picks lack"). A race measures
instead of predicting: ``members`` students spread along the front (both ends included) are
distilled for ``minutes`` each, on the executor, with the students' own recipe (a whole
learning-rate schedule in the shorter time), and the ``top_k`` with the best validation
headline are distilled for the full budget. One rung of successive halving (Jamieson and
Talwalkar 2016): its cost is ``members x minutes`` of one core, said before it starts.

A race must be long enough for its members to part: there, two students read the same
validation accuracy after 12,800 pairs and parted only past 25,000 (about 20 minutes on one
core), hence the default ``minutes``. It must also outlast the plateau students leave late: at 20
minutes a race over the whole space picked one-layer students at 0.80 over a two-layer one that
left the plateau after about 60,000 pairs and reached 0.9203 ("The search finds the student").

Each finished brief run is recorded in ``race.json`` of the run directory (atomically), so an
interrupted race resumes without repeating one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerFast

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_json
from avatar.distill.brief import BriefRun, brief_run
from avatar.distill.settings import DistillSettings
from avatar.run.executor import Executor
from avatar.search.space import Candidate
from avatar.task.base import Task
from avatar.teach.teacher import Knowledge

log = logging.getLogger("avatar")

RACE_FILE = "race.json"


@dataclass(frozen=True)
class RaceSettings:
    """``distill.race``: how many front members race (0: no race) and for how long each."""

    members: int = 0
    minutes: float = 20.0

    @classmethod
    def from_config(cls, race: Mapping[str, Any] | None) -> RaceSettings:
        values = dict(race or {})
        unknown = sorted(set(values) - {"members", "minutes"})
        if unknown:
            raise AvatarError(f"unknown distill.race option(s) {unknown}; known: members, minutes")
        settings = cls(**values)
        members = settings.members
        if isinstance(members, bool) or not isinstance(members, int) or members < 0:
            raise AvatarError(f"distill.race.members must be an integer >= 0 (0: no race), got {members!r}")
        if not (isinstance(settings.minutes, int | float) and settings.minutes > 0):
            raise AvatarError(f"distill.race.minutes must be a positive number, got {settings.minutes!r}")
        return settings

    def races(self, top_k: int) -> bool:
        """A race only chooses when more members run than go on."""
        return self.members > top_k > 0

    def estimate(self, workers: int = 1) -> str:
        rounds = math.ceil(self.members / max(1, workers))
        return (f"a race of {self.members} front members, {self.minutes:g} min each, {max(1, workers)} "
                f"at a time: about {rounds * self.minutes:g} min")


def brief_trainer(trainer: Mapping[str, Any], minutes: float) -> dict[str, Any]:
    """The students' trainer options at the race's wall-clock budget, validated once at the end."""
    budget = ("max_time", "max_steps", "max_epochs", "val_check_interval", "check_val_every_n_epoch")
    kept = {k: v for k, v in trainer.items() if k not in budget}
    return {**kept, "max_time": {"seconds": 60.0 * minutes}, "max_epochs": -1}


def race_front(
    candidates: Sequence[Candidate],
    tokenizers: Sequence[PreTrainedTokenizerFast],
    task: Task,
    knowledge: Knowledge,
    settings: DistillSettings,
    trainer: Mapping[str, Any],
    race: RaceSettings,
    run_dir: Path,
    executor: Executor,
) -> list[dict[str, Any]]:
    """Distil each candidate for ``race.minutes``; their records, best validation headline first
    (a collapsed run last)."""
    path = Path(run_dir) / RACE_FILE
    records: dict[str, dict[str, Any]] = {}
    if path.is_file():
        try:
            records = {r["key"]: r for r in json.loads(path.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError) as error:
            raise AvatarError(f"{path} is not a race record ({error}): delete it to race again") from error
    # a run of another length is another race: it runs again (and its record is replaced)
    records = {key: r for key, r in records.items() if r.get("minutes") == race.minutes and "metric" in r}
    fast = dataclasses.replace(settings, fast=True, progress_bar=False)
    options = brief_trainer(trainer, race.minutes)
    todo = [n for n, c in enumerate(candidates) if c.key() not in records]
    recorded = len(candidates) - len(todo)
    log.info("race: %d of %d front members to distil (%d recorded in %s), on %s: %s", len(todo),
             len(candidates), recorded, path, executor.describe(), race.estimate(executor.workers))
    units = [BriefRun(candidates[n], fast, options, tokenizers[n]) for n in todo]
    shared = {"task": task, "knowledge": knowledge}
    for _, record in executor.map(brief_run, units, shared, [1.0] * len(units)):
        records[record["key"]] = {**record, "minutes": race.minutes}
        atomic_write_json(path, list(records.values()))
        log.info("race: %s reached %.4f validation headline on %d examples", record["key"],
                 record["metric"], record["examples"])
    ranked = [records[c.key()] for c in candidates]
    return sorted(ranked, key=lambda r: (not r["collapsed"], r["metric"]), reverse=True)
