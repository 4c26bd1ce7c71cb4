"""Stage 1, the teacher: its knowledge of the task's unlabeled half.

The knowledge contract (what distillation consumes, whatever the teacher):
for each example of ``task.read_split("unlabel_train")``, in that order,
- ``logits``: the teacher's raw logits, shape (N, num_labels), float32 (soft labels), or
- ``hard_labels``: the teacher's predicted label, shape (N,), int64 (hard labels),
at least one of the two; and ``gold``: the task's gold labels where the data has them,
shape (N,), int64, -1 where unknown (used only for reporting teacher agreement, never
for training). Distillation uses KL at a temperature on ``logits`` when present, else
cross-entropy on ``hard_labels``.

Knowledge is cached on disk keyed by (task, teacher id, data fingerprint): a second run
reuses it, and changed data or a different teacher never reads a stale cache.
"""

from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import AvatarError
from avatar.io import atomic_write_bytes
from avatar.task import Task


@dataclass
class Knowledge:
    """The teacher's knowledge on the unlabeled split (see the module docstring)."""

    task: str
    teacher: str
    fingerprint: str
    logits: np.ndarray | None = None
    hard_labels: np.ndarray | None = None
    gold: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.logits is None and self.hard_labels is None:
            raise AvatarError("teacher knowledge needs logits or hard labels")
        if self.logits is not None:
            self.logits = np.asarray(self.logits, dtype=np.float32)
            if self.logits.ndim != 2:
                raise AvatarError(f"teacher logits must be 2-D (examples x labels), got {self.logits.shape}")
        if self.hard_labels is not None:
            self.hard_labels = np.asarray(self.hard_labels, dtype=np.int64)
        if self.gold is not None:
            self.gold = np.asarray(self.gold, dtype=np.int64)
        lengths = {len(a) for a in (self.logits, self.hard_labels, self.gold) if a is not None}
        if len(lengths) != 1:
            raise AvatarError(f"teacher knowledge arrays disagree in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.logits if self.logits is not None else self.hard_labels)  # type: ignore[arg-type]

    @property
    def soft(self) -> bool:
        return self.logits is not None

    def labels(self) -> np.ndarray:
        """The teacher's hard labels (argmax of the logits when only logits exist)."""
        if self.hard_labels is not None:
            return self.hard_labels
        return self.logits.argmax(axis=1)  # type: ignore[union-attr]

    def gold_agreement(self) -> float | None:
        """Share of examples with a gold label where the teacher agrees with it."""
        if self.gold is None:
            return None
        known = self.gold >= 0
        if not known.any():
            return None
        return float((self.labels()[known] == self.gold[known]).mean())

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        arrays = {k: v for k, v in (("logits", self.logits), ("hard_labels", self.hard_labels),
                                    ("gold", self.gold)) if v is not None}
        meta = np.array([self.task, self.teacher, self.fingerprint])
        np.savez(buffer, meta=meta, **arrays)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Knowledge:
        with np.load(path, allow_pickle=False) as data:
            task, teacher, fingerprint = (str(v) for v in data["meta"])
            return cls(
                task,
                teacher,
                fingerprint,
                logits=data["logits"] if "logits" in data else None,
                hard_labels=data["hard_labels"] if "hard_labels" in data else None,
                gold=data["gold"] if "gold" in data else None,
            )


class Teacher(ABC):
    """A teacher plugin. Register with ``@TEACHERS.register(name)``."""

    @abstractmethod
    def identity(self) -> str:
        """What makes this teacher's knowledge distinct (model path, file, options): the cache key."""

    @abstractmethod
    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        """Compute the knowledge (fine-tune and predict, or read a file)."""


@dataclass
class TeacherContext:
    """Where a teacher may write (its fine-tuned model) and how to train (Lightning options)."""

    cache_dir: Path
    run_dir: Path
    trainer: dict[str, Any]


def cache_path(cache_dir: str | Path, task: Task, teacher: Teacher) -> Path:
    fingerprint = task.fingerprint("unlabel_train")
    teacher_key = hashlib.sha256(teacher.identity().encode()).hexdigest()[:12]
    return Path(cache_dir) / "knowledge" / f"{task.name}-{teacher_key}-{fingerprint}.npz"


def teacher_knowledge(task: Task, teacher: Teacher, context: TeacherContext) -> tuple[Knowledge, bool]:
    """The cached knowledge, or the teacher's freshly produced one (then cached).

    Returns ``(knowledge, from_cache)``.
    """
    path = cache_path(context.cache_dir, task, teacher)
    if path.exists():
        return Knowledge.load(path), True
    knowledge = teacher.produce(task, context)
    expected = len(task.read_split("unlabel_train"))
    if len(knowledge) != expected:
        raise AvatarError(
            f"teacher {teacher.identity()} gave {len(knowledge)} predictions"
            f" for {expected} unlabeled examples"
        )
    knowledge.save(path)
    return knowledge, False
