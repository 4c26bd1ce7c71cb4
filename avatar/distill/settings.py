"""What a student's training depends on: the distillation settings, its result, its signature.

``run_signature`` names everything a finished student's result depends on (the
candidate, the method, the budget), so a rerun with the same signature returns the
finished student instead of training it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError
from avatar.core.io import portable_path, recorded_path, to_jsonable
from avatar.core.registry import TRANSFORMS
from avatar.learn.classifier import check_schedule
from avatar.learn.losses import AUTO, Loss, build_loss
from avatar.search.space import Candidate
from avatar.task.base import Task

log = logging.getLogger("avatar")

LAST_CKPT = "last.ckpt"
RESULT_NAME = "result.json"


@dataclass
class DistillSettings:
    """How to train one student (``configs/distill``): the method, not the Lightning budget.

    The budget and hardware (``max_steps``, ``max_time``, ``accelerator`` ...) are Lightning
    Trainer options passed beside these settings (``configs/trainer``). ``fast=True`` is the
    surrogate's brief run: no checkpoints, no logger, no progress bar, no test and no saved
    student; validation runs once, on the last weights.
    """

    loss: str = "auto"  # a name of the losses registry; auto: kl with teacher logits, else hard
    temperature: float | None = None  # None: the task's own (Task.temperature)
    loss_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the loss's own options
    # Robustness: each student's flips on a metamorphic copy of the test split (the transform
    # measured; None: not measured), and augmentation of its training data by k copies.
    flips: str | None = "rename"
    # A brief run's robustness (the surrogate's ``robustness`` objective): its flips on the
    # metamorphic copy of this many validation examples (0: not measured)
    validation_flips: int = 0
    augment: str | None = None
    augment_copies: int = 1
    schedule: str = "linear"
    warmup_ratio: float = 0.1
    patience: int = 3
    # At least this many optimizer steps under an epoch budget: a small task's few batches per
    # epoch get more epochs (a 750-snippet task had 39 steps in 3 epochs, and its students collapsed)
    min_steps: int = 0
    # Training batches of similar lengths (avatar.learn.resumable): less padding, more examples
    # per second; each batch still a random draw, the batches in random order
    group_by_length: bool = False
    # The student reads every function with canonical names (fa, va, vb ...: transform canonical),
    # in training and wherever it runs (avatar.json says so): renaming cannot change its answer.
    # auto: on where the transforms parse the task's language and no augment is asked (for_task)
    canonical_names: bool | str = False
    weight_decay: float = 0.0
    eval_batch_size: int = 64
    num_workers: int = 0
    max_train_examples: int | None = None
    holdout: int = 0  # unlabeled examples never trained on: the student's agreement with the teacher
    checkpoint_every_n_steps: int | None = None
    checkpoint_every_minutes: float | None = 5.0
    seed: int = 42
    measure_energy: bool = True  # codecarbon around training: what the greening itself costs
    fast: bool = False
    progress_bar: bool | None = None  # None: on unless fast

    def for_task(self, task: Task) -> DistillSettings:
        """These settings with ``canonical_names: auto`` decided for ``task``: on when the transforms
        parse its language and no ``augment`` asks for renamed copies (whose canonical form is the
        original's), off otherwise. Why decided once, here: the tokenizer, the run's signature,
        avatar.json and the surrogate's brief runs must all see the same yes or no."""
        if self.canonical_names != AUTO:
            return self
        from avatar.code.metamorphic import supports

        return dataclasses.replace(self, canonical_names=supports(task) and self.augment is None)

    @classmethod
    def from_config(cls, distill: Mapping[str, Any] | None = None, ignore: Sequence[str] = ("top_k", "race"),
                    **overrides: Any) -> DistillSettings:
        """Settings from the ``distill`` config group (a plain mapping).

        An unknown key is an error (a typo would otherwise be silently ignored); ``ignore``
        lists the keys other stages read (``top_k``, ``race``).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (distill or {}).items():
            if key in ignore:
                continue
            if key not in names:
                raise AvatarError(f"unknown distill option {key!r}; known: {', '.join(sorted(names))}")
            values[key] = value
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        self.loss_options = dict(self.loss_options or {})
        # the loss checks its own name and options (one line each) when it is built: probe it here,
        # before any work, as if the teacher gave logits (what the teacher gives is checked later)
        build_loss(self.loss if self.loss != AUTO else "kl", True, self.temperature or 1.0, self.loss_options)
        check_schedule(self.schedule, self.warmup_ratio, "distill")
        if self.augment_copies < 1:
            raise AvatarError(f"distill.augment_copies must be >= 1, got {self.augment_copies}")
        for key in ("flips", "augment"):
            name = getattr(self, key)
            if name is not None and name not in TRANSFORMS:
                raise AvatarError(f"distill.{key}: unknown transform {name!r}; known transforms: "
                                  f"{', '.join(TRANSFORMS.names())} (or null)")
        if self.canonical_names not in (True, False, AUTO):
            raise AvatarError(f"distill.canonical_names must be true, false or {AUTO}, "
                              f"got {self.canonical_names!r}")
        if self.canonical_names is True and self.augment is not None:
            raise AvatarError("distill.canonical_names with distill.augment: a renamed copy's canonical form "
                              "is the original's, so the copies would add nothing; set one of them")
        if self.holdout < 0:
            raise AvatarError(f"distill.holdout must be >= 0, got {self.holdout}")
        if self.validation_flips < 0:
            raise AvatarError(f"distill.validation_flips must be >= 0, got {self.validation_flips}")
        if self.patience < 0:
            raise AvatarError(f"distill.patience must be >= 0, got {self.patience}")
        if self.min_steps < 0:
            raise AvatarError(f"distill.min_steps must be >= 0 (0: the epoch budget alone), "
                              f"got {self.min_steps}")
        minutes = self.checkpoint_every_minutes
        if minutes is not None and minutes <= 0:
            raise AvatarError(f"distill.checkpoint_every_minutes must be positive or null, got {minutes}")


@dataclass
class DistillResult:
    """What one distillation produced. ``metrics`` holds ``val/*`` (and ``test/*`` unless fast)."""

    candidate: Candidate
    headline_metric: str
    headline: float  # val/<headline_metric> of the returned weights
    metrics: dict[str, float]
    train_examples: int  # examples seen by the training steps of this call
    train_seconds: float  # wall time of fit (data, training, validation)
    train_examples_per_second: float  # training steps only (forward, backward, optimiser)
    global_step: int
    size_mb: float
    soft: bool
    collapsed: bool = False  # the last validation predicted one class for every example
    train_energy_kwh: float | None = None  # codecarbon, for this call's training (estimated without sensors)
    signature: str = ""  # the settings and budget it finished under (see run_signature)
    student_dir: Path | None = None
    resumed_from: Path | None = None

    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        """Plain JSON values; with ``base`` (the folder of the file it goes to), its paths relative
        to it (``relative_paths``): a moved or copied run directory still finds its student."""
        data = dataclasses.asdict(self)
        data["candidate"] = self.candidate.as_dict()
        data = to_jsonable(data)
        return relative_paths(data, base) if base is not None else data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Path | None = None) -> DistillResult:
        """The result ``to_dict`` wrote; with ``base`` (where that file is now), its paths resolved
        against it (``absolute_paths``)."""
        data = absolute_paths(data, base) if base is not None else data
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["candidate"] = Candidate.from_dict(data["candidate"])
        for name in PATH_FIELDS:
            values[name] = Path(values[name]) if values.get(name) else None
        return cls(**values)


PATH_FIELDS = ("student_dir", "resumed_from")
"""The fields of a student's record (``result.json``, ``students.json``) that name files of its run."""


def relative_paths(record: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """``record`` with its ``PATH_FIELDS`` written relative to ``base`` (``portable_path``)."""
    return {k: portable_path(v, base) if k in PATH_FIELDS and v else v for k, v in record.items()}


def absolute_paths(record: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """``record`` with its ``PATH_FIELDS`` resolved against ``base``, where its file is now
    (``recorded_path``; a path that cannot be found is kept as recorded: a student's own
    checks say what is missing)."""
    return {k: str(recorded_path(v, base, must_exist=False)) if k in PATH_FIELDS and v else v
            for k, v in record.items()}


def student_key(candidate: Candidate) -> str:
    """A short stable folder name for a candidate (``students/<key>/``)."""
    return hashlib.sha256(candidate.key().encode()).hexdigest()[:12]


def temperature_for(settings: DistillSettings, task: Task) -> float:
    """``distill.temperature`` when set, else the task's own (``Task.temperature``)."""
    if settings.temperature is not None:
        return float(settings.temperature)
    return float(task.temperature)


def loss_for(settings: DistillSettings, task: Task, has_logits: bool) -> Loss:
    """The student's loss, checked against what the teacher gave (logits or labels only)."""
    return build_loss(settings.loss, has_logits, temperature_for(settings, task), settings.loss_options)


def run_signature(candidate: Candidate, settings: DistillSettings, trainer: Mapping[str, Any]) -> str:
    """What a finished student's result depends on: the candidate, the method and the budget.

    A rerun with the same signature returns the finished student; a larger budget resumes
    from ``last.ckpt`` instead (progress bars and energy metering do not count).
    """
    ignored = ("progress_bar", "measure_energy", "flips", "validation_flips")  # measured after training
    method = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ignored}
    # options at their old defaults are left out: students finished before they existed keep their signature
    for key, unset in (("loss_options", {}), ("augment", None), ("augment_copies", 1), ("min_steps", 0),
                         ("group_by_length", False), ("canonical_names", False)):
        if method[key] == unset:
            del method[key]
    text = json.dumps([candidate.key(), method, dict(trainer)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_result(out_dir: Path, signature: str) -> DistillResult | None:
    """The result of a student that already finished in ``out_dir`` under ``signature``, else None."""
    path = out_dir / RESULT_NAME
    if not path.is_file() or not (out_dir / "student" / "config.json").is_file():
        return None
    try:
        result = DistillResult.from_dict(json.loads(path.read_text(encoding="utf-8")), base=out_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.signature == signature else None
