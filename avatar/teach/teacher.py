"""Stage 1, the teacher: its knowledge of the task's unlabeled half.

The knowledge contract (what distillation consumes, whatever the teacher):
for each example of ``task.read_split("unlabel_train")``, in that order,
- ``logits``: the teacher's raw logits, shape (N, num_labels), float32 (soft labels), or
- ``hard_labels``: the teacher's predicted label, shape (N,), int64 (hard labels),
at least one of the two; and ``gold``: the task's gold labels where the data has them,
shape (N,), int64, -1 where unknown (used only for reporting teacher agreement, never
for training). Distillation uses KL at a temperature on ``logits`` when present, else
cross-entropy on ``hard_labels``.

Knowledge is cached on disk keyed by (task, teacher id, the task's labels, data fingerprint,
``KNOWLEDGE_FORMAT``): a second run reuses it, and changed data, other labels or a different
teacher never read a stale cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_bytes, cache_lock, discard_corrupt
from avatar.task.base import Task, label_signature

log = logging.getLogger("avatar")

KNOWLEDGE_FORMAT = 2
"""Version of the cached knowledge files: bump it when what a teacher stores changes."""


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

    def undecided_share(self, margin: float = 0.05) -> float:
        """Share of examples whose top two classes the teacher's probabilities (temperature 1)
        separate by less than ``margin``: soft labels that say "either of these two"."""
        if self.logits is None or len(self) == 0 or self.logits.shape[1] < 2:
            return 0.0
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        top = np.sort(probabilities, axis=1)
        return float(np.mean(top[:, -1] - top[:, -2] < margin))

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
    """A teacher plugin. Register with ``@TEACHERS.register(name)``.

    ``identity()`` names the plugin's own options; ``cache_identity(task, context)`` adds what
    the run contributes (a fine-tuning budget, the labeled data it learns from), so two
    runs share a cache entry exactly when they would produce the same knowledge.

    ``architecture`` (candidate keys: ``num_hidden_layers``, ``hidden_size`` ...) and
    ``model_name`` describe the model behind a teacher whose model is not at hand (a
    predictions file): the report then measures that architecture's cost with random
    weights, so the size, latency and energy ratios and the payback exist.
    """

    architecture: dict[str, Any] | None = None
    model_name: str = "teacher"

    @abstractmethod
    def identity(self) -> str:
        """What makes this teacher's knowledge distinct (model path, file, options): the cache key."""

    def cache_identity(self, task: Task, context: TeacherContext) -> str:
        """``identity()`` plus whatever of the task and context changes the knowledge (default: nothing)."""
        return self.identity()

    def check_ready(self, task: Task, context: TeacherContext) -> None:  # noqa: B027 (optional hook)
        """Fail in one line, in seconds, when ``produce`` would fail for a reason known now (a
        model that cannot be loaded offline, a missing file). Called before the long work
        (pruning, the search) when the knowledge is not cached yet; default: nothing to check."""

    @abstractmethod
    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        """Compute the knowledge (fine-tune and predict, or read a file)."""

    def model_dir(self, task: Task, context: TeacherContext) -> Path | None:
        """Where this teacher's model folder lives (or will, once produced); None: the teacher has
        no model of its own (a predictions file). The report measures the teacher from it."""
        return None


@dataclass
class TeacherContext:
    """Where a teacher may write (its fine-tuned model) and its Lightning budget (``teacher.trainer``
    over the machine's ``trainer`` keys): plain options for ``avatar.learn.training.build_trainer``."""

    cache_dir: Path
    run_dir: Path
    trainer: dict[str, Any]


def stable_key(*parts: Any) -> str:
    """12 hex digits of SHA-256 over ``parts`` (canonical JSON): file and folder names for cache entries."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(
    cache_dir: str | Path, task: Task, teacher: Teacher, context: TeacherContext | None = None
) -> Path:
    """``<cache>/knowledge/<task>-<teacher and labels key>-<unlabel_train fingerprint>.npz``."""
    identity = teacher.identity() if context is None else teacher.cache_identity(task, context)
    return _knowledge_file(cache_dir, task, identity, task.fingerprint("unlabel_train"))


def _knowledge_key(task: Task, identity: str) -> str:
    """The teacher's identity, the task's labels (the logits' width and meaning) and the format."""
    return stable_key(identity, label_signature(task), KNOWLEDGE_FORMAT)


def _knowledge_file(cache_dir: str | Path, task: Task, identity: str, fingerprint: str) -> Path:
    return Path(cache_dir) / "knowledge" / f"{task.name}-{_knowledge_key(task, identity)}-{fingerprint}.npz"


def gold_labels(task: Task) -> np.ndarray:
    """Gold labels of ``unlabel_train`` row by row, -1 where unknown (for agreement reports only).

    ``Task.gold_labels_for_unlabeled`` (each example's ``label``, unless the task withholds
    them from its examples and knows them elsewhere, as clone does).
    """
    values = task.gold_labels_for_unlabeled()
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def check_knowledge(
    task: Task, knowledge: Knowledge, source: str = "teacher knowledge", unlabeled: int | None = None
) -> None:
    """Raise one clear ``AvatarError`` when ``knowledge`` cannot be row-aligned with ``task``.

    ``source`` names where it came from (a teacher's identity, "teacher knowledge") in
    the message. Checked before caching (teacher stage) and before distilling (so a
    stale or mismatched cache fails before a tokenizer is trained for nothing).
    """
    if unlabeled is None:
        unlabeled = len(task.read_split("unlabel_train"))
    if len(knowledge) != unlabeled:
        limit = f" (data.limit={task.limit})" if task.limit is not None else ""
        raise AvatarError(
            f"{source} gave {len(knowledge)} predictions but task {task.name!r} has {unlabeled} unlabeled "
            f"examples{limit}: knowledge and data must come from the same data and limit"
        )
    if knowledge.logits is not None and knowledge.logits.shape[1] != task.num_labels:
        raise AvatarError(
            f"{source} gave {knowledge.logits.shape[1]} logits per example; "
            f"task {task.name!r} has {task.num_labels} labels"
        )
    if knowledge.hard_labels is not None and len(knowledge.hard_labels):
        low, high = int(knowledge.hard_labels.min()), int(knowledge.hard_labels.max())
        if low < 0 or high >= task.num_labels:
            raise AvatarError(
                f"{source} gave labels in {low}..{high}; "
                f"task {task.name!r} has labels 0..{task.num_labels - 1}"
            )
    if knowledge.logits is not None and not np.all(np.isfinite(knowledge.logits)):
        raise AvatarError(f"{source} gave logits with NaN or infinite values")
    if knowledge.task and knowledge.task != task.name:
        log.warning("teacher knowledge is for task %r, distilling task %r", knowledge.task, task.name)
    elif knowledge.fingerprint and knowledge.fingerprint != task.fingerprint("unlabel_train"):
        log.warning(
            "teacher knowledge fingerprint %s differs from the data's %s: is the knowledge stale?",
            knowledge.fingerprint,
            task.fingerprint("unlabel_train"),
        )


def teacher_knowledge(task: Task, teacher: Teacher, context: TeacherContext) -> tuple[Knowledge, bool, Path]:
    """The cached knowledge of exactly this teacher and budget, or freshly produced (then cached).

    Returns ``(knowledge, from_cache, path)``. The stored ``teacher`` and ``fingerprint``
    fields are always the cache identity and the unlabeled split's fingerprint, whatever the
    plugin set. The identity holds the teacher's own budget (``teacher.trainer``), never the
    students': a students' budget change reuses the knowledge.
    """
    identity = teacher.cache_identity(task, context)
    fingerprint = task.fingerprint("unlabel_train")
    path = _knowledge_file(context.cache_dir, task, identity, fingerprint)
    found = _cached_knowledge(path, repair=False)
    if found is not None:
        return found, True, path
    with cache_lock(path):  # a concurrent run producing the same knowledge finishes first
        found = _cached_knowledge(path, repair=True)
        if found is not None:
            return found, True, path
        knowledge = teacher.produce(task, context)
        check_knowledge(task, knowledge, f"teacher {teacher.identity()}")
        knowledge = replace(knowledge, task=task.name, teacher=identity, fingerprint=fingerprint)
        knowledge.save(path)
    return knowledge, False, path


def _cached_knowledge(path: Path, repair: bool) -> Knowledge | None:
    """The cached knowledge at ``path``; ``None`` when there is none or it does not load. With
    ``repair`` (the entry's lock held) a file that does not load is reported and deleted, so
    the caller rebuilds it."""
    return _load_knowledge(path, repair) if path.exists() else None


def _load_knowledge(path: Path, repair: bool) -> Knowledge | None:
    try:
        return Knowledge.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AvatarError) as error:
        if repair:
            discard_corrupt(path, error)
        return None


def collapse_warning(knowledge: Knowledge) -> str | None:
    """A warning when the teacher gives every unlabeled example the same class: its students
    can only learn that class (seen on Devign, where a scratch teacher's best epoch by
    accuracy was the one that predicted the majority class everywhere)."""
    counts = np.bincount(knowledge.labels())
    if len(knowledge) < 2 or int(counts.max()) < len(knowledge):
        return None
    return (
        f"collapsed teacher: it gives class {int(counts.argmax())} to all {len(knowledge):,} unlabeled "
        f"{knowledge.task} examples, so its students can only learn that class; train it longer or "
        "differently (teacher.trainer.max_epochs, teacher.lr), or use another teacher"
    )


def weak_teacher_warning(knowledge: Knowledge) -> str | None:
    """A warning when the teacher closes less than a quarter of the gap between always
    answering the most frequent class and the gold labels, on the unlabeled examples.

    Why: students learn the teacher's answers; a scratch teacher trained for a few dozen
    steps (0.66 on an easy 3-class task) caps every student below it, and the user should
    hear that before the search spends its time.
    """
    agreement = knowledge.gold_agreement()
    if agreement is None or knowledge.gold is None or (knowledge.gold >= 0).sum() < 10:
        return None
    gold = knowledge.gold[knowledge.gold >= 0]
    majority = float(np.bincount(gold).max() / len(gold))
    if agreement >= majority + 0.25 * (1 - majority):
        return None
    return (f"weak teacher: it agrees with gold on {agreement:.1%} of the unlabeled {knowledge.task} "
            f"examples, where always answering the most frequent class gives {majority:.1%}: its students "
            "cannot do better; train it longer (teacher.trainer.min_steps, max_epochs) or use a pretrained "
            "teacher")


def describe_knowledge(knowledge: Knowledge, from_cache: bool, path: Path, seconds: float) -> str:
    """One line for the log: size, kind, cache hit or not, agreement with gold."""
    kind = "soft labels (logits)" if knowledge.soft else "hard labels"
    agreement = knowledge.gold_agreement()
    agrees = "no gold labels to compare" if agreement is None else f"agrees with gold on {agreement:.2%}"
    origin = f"reused from cache {path}" if from_cache else f"computed and cached at {path}"
    return (
        f"teacher knowledge for {knowledge.task}: {len(knowledge):,} {kind}; {agrees}; "
        f"{origin} ({seconds:.1f} s)"
    )
