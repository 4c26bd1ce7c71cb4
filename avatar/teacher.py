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
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import AvatarError
from avatar.io import atomic_write_bytes, atomic_write_json, atomic_write_text, plain
from avatar.task import Task, label_signature

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
    """

    @abstractmethod
    def identity(self) -> str:
        """What makes this teacher's knowledge distinct (model path, file, options): the cache key."""

    def cache_identity(self, task: Task, context: TeacherContext) -> str:
        """``identity()`` plus whatever of the task and context changes the knowledge (default: nothing)."""
        return self.identity()

    @abstractmethod
    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        """Compute the knowledge (fine-tune and predict, or read a file)."""


@dataclass
class TeacherContext:
    """Where a teacher may write (its fine-tuned model) and how to train (Lightning options)."""

    cache_dir: Path
    run_dir: Path
    trainer: dict[str, Any]


DEFAULT_TRAINER: dict[str, Any] = {"accelerator": "auto", "devices": 1, "max_epochs": 3, "max_steps": -1}
"""Lightning options when a config has no ``trainer`` group (``configs/trainer/default.yaml``'s budget)."""


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

    A task that withholds the gold labels from its unlabeled examples (clone) may offer
    ``gold_labels_for_unlabeled()``; otherwise each example's ``label`` is used.
    """
    provider = getattr(task, "gold_labels_for_unlabeled", None)
    values = provider() if callable(provider) else [e.label for e in task.read_split("unlabel_train")]
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def check_knowledge(knowledge: Knowledge, task: Task, source: str, unlabeled: int | None = None) -> None:
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


def teacher_knowledge(task: Task, teacher: Teacher, context: TeacherContext) -> tuple[Knowledge, bool]:
    """The cached knowledge, or the teacher's freshly produced one (then cached).

    Returns ``(knowledge, from_cache)``. The stored ``teacher`` and ``fingerprint`` fields are
    always the cache identity and the unlabeled split's fingerprint, whatever the plugin set.
    """
    knowledge, from_cache, _ = _lookup(task, teacher, context)
    return knowledge, from_cache


def _latest_pointer(cache_dir: str | Path, task: Task, teacher: Teacher, fingerprint: str) -> Path:
    """Names the knowledge last produced by this teacher (its options, any trainer budget)."""
    name = f"{task.name}-{_knowledge_key(task, teacher.identity())}-{fingerprint}.latest"
    return Path(cache_dir) / "knowledge" / name


def _lookup(
    task: Task, teacher: Teacher, context: TeacherContext, reuse_latest: bool = False
) -> tuple[Knowledge, bool, Path]:
    """The knowledge of exactly this teacher and trainer budget, cached or produced now.

    With ``reuse_latest`` (the search and distillation), knowledge that ``stage=teacher``
    produced for the same teacher and data under another trainer budget is reused: the
    ``trainer`` group then configures the students, and must not silently fine-tune a
    second teacher.
    """
    identity = teacher.cache_identity(task, context)
    fingerprint = task.fingerprint("unlabel_train")
    path = _knowledge_file(context.cache_dir, task, identity, fingerprint)
    pointer = _latest_pointer(context.cache_dir, task, teacher, fingerprint)
    if not path.exists() and reuse_latest and pointer.exists():
        latest = path.parent / pointer.read_text().strip()
        if latest.exists():
            log.info("using the teacher knowledge last produced by stage=teacher: %s", latest)
            return Knowledge.load(latest), True, latest
    if path.exists():
        return Knowledge.load(path), True, path
    knowledge = teacher.produce(task, context)
    check_knowledge(knowledge, task, f"teacher {teacher.identity()}")
    knowledge = replace(knowledge, task=task.name, teacher=identity, fingerprint=fingerprint)
    knowledge.save(path)
    atomic_write_text(pointer, path.name)
    return knowledge, False, path


# ---------------------------------------------------------------------------------------
# The stage, from a Hydra config


def build_teacher(cfg: Any) -> Teacher:
    """The teacher plugin of ``cfg.teacher``: ``name`` picks it, the other keys are its options."""
    from avatar.objectives import build_plugin
    from avatar.registry import TEACHERS

    spec = plain(cfg.get("teacher"))
    if not spec:
        raise AvatarError("no teacher configured: pick one with teacher=<name> (e.g. teacher=codebert)")
    return build_plugin(TEACHERS, spec)


def teacher_context(cfg: Any, run_dir: str | Path) -> TeacherContext:
    """Cache folder from ``paths.cache``; Lightning options from ``trainer`` (or ``DEFAULT_TRAINER``)."""
    trainer = plain(cfg.get("trainer"))
    return TeacherContext(
        cache_dir=Path(str(cfg.paths.cache)).expanduser(),
        run_dir=Path(run_dir),
        trainer=dict(trainer) if trainer else dict(DEFAULT_TRAINER),
    )


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


def knowledge_for(cfg: Any, task: Task, run_dir: str | Path | None = None) -> Knowledge:
    """The teacher knowledge the search and distillation use: cached, or produced now.

    ``run_dir`` is where a fine-tuning teacher writes its Lightning logs and checkpoints
    (checkpoints are deleted once the model is in the cache); default ``<paths.cache>/teacher_runs``.
    """
    return _knowledge_with_summary(cfg, task, run_dir, reuse_latest=True)[0]


def _knowledge_with_summary(
    cfg: Any, task: Task, run_dir: str | Path | None, reuse_latest: bool = False
) -> tuple[Knowledge, dict[str, Any]]:
    teacher = build_teacher(cfg)
    if run_dir is None:
        run_dir = Path(str(cfg.paths.cache)).expanduser() / "teacher_runs"
    context = teacher_context(cfg, run_dir)
    started = time.perf_counter()
    knowledge, from_cache, path = _lookup(task, teacher, context, reuse_latest)
    seconds = time.perf_counter() - started
    log.info(describe_knowledge(knowledge, from_cache, path, seconds))
    summary = {
        "task": task.name,
        "teacher": knowledge.teacher,
        "examples": len(knowledge),
        "soft": knowledge.soft,
        "from_cache": from_cache,
        "cache_path": str(path),
        "gold_agreement": knowledge.gold_agreement(),
        "seconds": round(seconds, 3),
    }
    return knowledge, summary


def run_teacher_stage(cfg: Any, run_dir: str | Path) -> Knowledge:
    """``python train.py stage=teacher``: cached teacher knowledge, and ``teacher.json`` in ``run_dir``."""
    from avatar.pipeline import build_task

    run_dir = Path(run_dir)
    task = build_task(cfg)
    knowledge, summary = _knowledge_with_summary(cfg, task, run_dir)
    atomic_write_json(run_dir / "teacher.json", summary)
    return knowledge
