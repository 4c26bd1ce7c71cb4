"""Vulnerability prediction on Devign (CodeXGLUE Defect-detection): one C function, 0/1.

CodeXGLUE ships train/valid/test jsonl. Avatar fine-tunes the teacher on one half of
train and distils the student on the other half; the authors' halves were never
published, so the halves here are a seeded, stratified 50/50 split of train: the same
seed always gives the same halves, and both keep train's class balance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avatar.core.errors import DataError
from avatar.core.io import iter_jsonl
from avatar.core.registry import TASKS
from avatar.task.base import Example, Split
from avatar.task.folder import FolderTask, record_location, require_file

HINT = (
    "get Devign as CodeXGLUE Defect-detection jsonl (train.jsonl[.gz], valid.jsonl, test.jsonl) from "
    "https://github.com/microsoft/CodeXGLUE/tree/main/Code-Code/Defect-detection"
)
FILES: dict[str, str] = {"valid": "valid.jsonl", "test": "test.jsonl"}


def stratified_halves(labels: Sequence[int], seed: int) -> tuple[list[int], list[int]]:
    """Indices of two halves of ``labels`` with the same class ratios, in a seeded random order.

    Each class is shuffled and cut in two (the first half gets the odd one out), then
    each half is shuffled again, so taking its first ``limit`` items is a random sample
    rather than the file's first functions (Devign's file order groups projects).
    """
    rng = random.Random(seed)
    first: list[int] = []
    second: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        rng.shuffle(members)
        cut = (len(members) + 1) // 2
        first.extend(members[:cut])
        second.extend(members[cut:])
    rng.shuffle(first)
    rng.shuffle(second)
    return first, second


def _example(record: dict[str, Any], path: Path, index: int, num_labels: int) -> Example:
    """One validated record; a missing or mistyped field names file:line."""
    func = record.get("func")
    if not isinstance(func, str):
        kind = type(func).__name__
        problem = "missing field 'func'" if func is None else f"'func' must be a string, got {kind}"
        raise DataError(f"{record_location(path, index)}: {problem}")
    target = record.get("target")
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_labels:
        problem = "missing field 'target'" if target is None else f"'target' must be 0 or 1, got {target!r}"
        raise DataError(f"{record_location(path, index)}: {problem}")
    idx = record.get("idx")
    return Example(code=func, label=target, id=str(idx) if idx is not None else str(index))


@TASKS.register("vuln")
class VulnTask(FolderTask):
    """Devign: is this C function vulnerable? Headline metric: accuracy."""

    num_labels = 2
    label_names = ("not vulnerable", "vulnerable")
    is_pair = False
    language = "c"
    headline_metric = "accuracy"
    # Distillation temperature: the paper's code uses 10.0 for vulnerability prediction (not
    # re-measured here: Devign has no paper teacher logits to ablate against).
    temperature = 10.0

    folder = "devign"
    markers = ("train.jsonl.gz", "train.jsonl", "test.jsonl")

    def describe(self) -> str:
        where = self.data_dir or "$AVATAR_DATA/devign"
        limit = f", at most {self.limit} per split" if self.limit is not None else ""
        return (
            f"vuln: Devign vulnerability prediction (CodeXGLUE Defect-detection), C, 2 labels, "
            f"headline accuracy; train halved 50/50 stratified with seed {self.seed}{limit}; data {where}"
        )

    def read_split(self, split: Split) -> list[Example]:
        if split not in self._cache:
            if split in ("label_train", "unlabel_train"):
                self._read_train()
            elif split in FILES:
                self._cache[split] = self._cap(self._read_file(self.directory / FILES[split]))
            else:
                raise DataError(f"unknown split {split!r} for task vuln")
        return self._cache[split]

    def _read_train(self) -> None:
        """Parse train once and keep both halves: the two splits are always asked for together."""
        gz = self.directory / "train.jsonl.gz"
        examples = self._read_file(gz if gz.is_file() else self.directory / "train.jsonl")
        labelled, unlabelled = stratified_halves([e.label for e in examples], self.seed)  # type: ignore[misc]
        self._cache["label_train"] = self._cap([examples[i] for i in labelled])
        self._cache["unlabel_train"] = self._cap([examples[i] for i in unlabelled])

    def _read_file(self, path: Path) -> list[Example]:
        require_file(path, HINT)
        return [_example(record, path, i, self.num_labels) for i, record in enumerate(iter_jsonl(path))]

    def _cap(self, examples: list[Example]) -> list[Example]:
        return examples if self.limit is None else examples[: self.limit]
