"""Stage 6, distillation: train a candidate's student on the teacher's knowledge.

The loss is the teacher-student KL divergence at a temperature ``T`` on soft labels
(``KL(softmax(t/T) || softmax(s/T)) * T^2``, Hinton et al.; the ``T^2`` keeps the gradient
scale independent of ``T``), or cross-entropy on the teacher's hard labels when the teacher
gave only labels (``distill.loss=hard`` forces it). ``T`` defaults to 2.0: BigCloneBench's
fine-tuned teachers are over 99% right and very confident, so at ``T=1`` their soft labels
are nearly one-hot and the student learns little beyond the hard labels; ``T=2`` exposes
their relative confidence while keeping the argmax signal strong. It is a choice, not a
number copied from the paper: set ``distill.temperature``.

``distill_candidate`` runs one student with Lightning: early stopping and checkpoints on
the task's headline validation metric, resume from ``checkpoints/last.ckpt`` when an
earlier run was killed, best weights reloaded for the test, and the student saved in
Hugging Face format with ``avatar.json`` (the metadata ``avatar.predict`` reads). With
``fast=True`` (the surrogate's brief runs) it writes nothing, prints nothing and returns the
validation metrics of the last weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, Logger
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from avatar.cost import MB
from avatar.errors import AvatarError, is_out_of_memory, out_of_memory_hint
from avatar.io import atomic_directory, atomic_write_json, plain, to_jsonable
from avatar.space import Candidate
from avatar.student import (
    StudentDataModule,
    build_model,
    build_tokenizer,
    check_knowledge,
    default_cache_dir,
    label_names,
    parameter_bytes,
)
from avatar.task import Task
from avatar.teacher import Knowledge

log = logging.getLogger("avatar")

TEMPERATURE = 2.0
LOSSES = ("auto", "soft", "hard")
SCHEDULES = ("linear", "constant")
META_NAME = "avatar.json"  # the same name avatar.predict reads
LAST_CKPT = "last.ckpt"

# Lightning warnings that are expected here and say nothing to a user.
_QUIET = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*could not find the monitored key.*",
    ".*You are using a CUDA device .* that has Tensor Cores.*",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
)


# ---------------------------------------------------------------------------------- losses


def soft_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """``KL(teacher/T || student/T) * T^2``, averaged over the batch."""
    t = float(temperature)
    student = F.log_softmax(student_logits.float() / t, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * (t * t)


def hard_loss(student_logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(student_logits.float(), labels)


# ---------------------------------------------------------------------------------- module


class DistillationModule(L.LightningModule):
    """A student and its loss; validation and test metrics are the task's (torchmetrics).

    Logs ``train/loss``, ``train/lr``, ``val/loss`` (cross-entropy against gold),
    ``val/<metric>`` and ``test/<metric>`` for each of ``task.metrics()`` (accuracy,
    precision, recall, F1), and ``val/majority_fraction``: the share of validation examples
    given the most predicted class. At 1.0 the student has collapsed to one class (chance
    accuracy, F1 0 or the positive rate's): ``collapsed`` turns true and a warning is logged,
    so no collapsed student passes silently.

    The learning rate warms up linearly over ``warmup_ratio`` of the training budget and
    then decays linearly to zero (``schedule="linear"``, the paper's recipe), or stays
    constant. The budget is whichever ends first: the Trainer's steps/epochs or its
    ``max_time``, so a wall-clock budget gets a full schedule too.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        task: Task,
        learning_rate: float,
        soft: bool = True,
        temperature: float = TEMPERATURE,
        weight_decay: float = 0.0,
        schedule: str = "linear",
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise AvatarError(f"distill.temperature must be positive, got {temperature}")
        self.model = model
        self.learning_rate = float(learning_rate)
        self.soft = soft
        self.temperature = float(temperature)
        self.weight_decay = float(weight_decay)
        self.schedule = schedule
        self.warmup_ratio = float(warmup_ratio)
        self.num_labels = int(task.num_labels)
        self.headline = task.headline_metric
        self.val_metrics = task.metrics(prefix="val/")
        self.test_metrics = task.metrics(prefix="test/")
        self._predicted = torch.zeros(self.num_labels, dtype=torch.long)
        self.collapsed = False
        self._total_steps: float | None = None

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        targets = batch["targets"]
        loss = soft_loss(logits, targets, self.temperature) if self.soft else hard_loss(logits, targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(targets))
        return loss

    def _evaluate(self, batch: dict[str, Tensor], metrics: Any, prefix: str) -> Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        labels = batch["targets"]
        self.log(f"{prefix}/loss", hard_loss(logits, labels), batch_size=len(labels))
        predicted = logits.argmax(dim=-1)
        metrics.update(predicted, labels)
        return predicted

    def on_validation_epoch_start(self) -> None:
        self._predicted = torch.zeros(self.num_labels, dtype=torch.long)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        predicted = self._evaluate(batch, self.val_metrics, "val")
        self._predicted += torch.bincount(predicted.cpu(), minlength=self.num_labels)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=False)
        self.val_metrics.reset()
        counts = self._predicted
        total = int(counts.sum())
        if total == 0:
            return
        majority = float(counts.max()) / total
        self.log("val/majority_fraction", majority)
        self.collapsed = majority >= 1.0
        if self.collapsed and not self.trainer.sanity_checking:
            log.warning(
                "student collapsed: it predicts class %d for all %d validation examples (%s)",
                int(counts.argmax()),
                total,
                f"step {self.global_step}" if self.trainer.training else "final weights",
            )

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        if self.schedule == "constant":
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_progress(self, step: int) -> float:
        """How much of the training budget ``step`` steps used: steps or time, whichever is further."""
        trainer = self.trainer
        if self._total_steps is None:
            total = float(trainer.estimated_stepping_batches)
            self._total_steps = total if math.isfinite(total) and total > 0 else math.inf
        fractions = [step / self._total_steps]
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        duration = getattr(timer, "_duration", None) if timer is not None else None
        if duration:
            fractions.append((timer.time_elapsed("train") or 0.0) / duration)
        progress = max(fractions)
        return min(max(progress, 0.0), 1.0) if math.isfinite(progress) else 0.0

    def _lr_factor(self, step: int) -> float:
        """Linear warm-up over ``warmup_ratio`` of the budget, then linear decay to zero."""
        progress = self.training_progress(step)
        if self.warmup_ratio > 0 and progress < self.warmup_ratio:
            return max(progress / self.warmup_ratio, 1e-3)
        return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - self.warmup_ratio))


# -------------------------------------------------------------------------------- settings

_TRAINER_FIELDS = (
    "max_epochs",
    "max_steps",
    "accelerator",
    "devices",
    "precision",
    "log_every_n_steps",
    "deterministic",
    "limit_train_batches",
    "limit_val_batches",
    "val_check_interval",
)


@dataclass
class DistillSettings:
    """How to train one student: ``configs/distill`` (the method) + ``configs/trainer`` (Lightning).

    ``fast=True`` is the surrogate's brief run: no checkpoints, no logger, no progress bar,
    no test and no saved student; validation runs once, on the last weights. Trainer
    options not named here go through ``trainer_extra`` to ``lightning.Trainer`` verbatim.
    """

    # Lightning Trainer
    max_epochs: int = 3
    max_steps: int = -1
    accelerator: str = "auto"
    devices: int | str = 1
    precision: str | int = "32-true"
    log_every_n_steps: int = 10
    deterministic: bool = False
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    val_check_interval: int | float | None = None
    trainer_extra: dict[str, Any] = field(default_factory=dict)
    # distillation
    loss: str = "auto"
    temperature: float | None = None  # None: the task's own (Task.temperature)
    schedule: str = "linear"
    warmup_ratio: float = 0.1
    patience: int = 3
    weight_decay: float = 0.0
    eval_batch_size: int = 64
    num_workers: int = 0
    max_train_examples: int | None = None
    checkpoint_every_n_steps: int | None = None
    seed: int = 42
    fast: bool = False
    progress_bar: bool | None = None  # None: on unless fast

    @classmethod
    def from_config(
        cls,
        distill: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        ignore: Sequence[str] = ("top_k",),
        **overrides: Any,
    ) -> DistillSettings:
        """Settings from the ``distill`` and ``trainer`` config groups (plain mappings).

        An unknown ``distill`` key is an error (a typo would otherwise be silently
        ignored); ``ignore`` lists the keys other stages read (``top_k``).
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"trainer_extra", *_TRAINER_FIELDS}
        values: dict[str, Any] = {}
        for key, value in (distill or {}).items():
            if key in ignore:
                continue
            if key not in names:
                raise AvatarError(f"unknown distill option {key!r}; known: {', '.join(sorted(names))}")
            values[key] = value
        extra: dict[str, Any] = {}
        for key, value in (trainer or {}).items():
            if key in _TRAINER_FIELDS:
                values[key] = value
            else:
                extra[key] = value
        values.update(overrides)
        extra.update(values.pop("trainer_extra", None) or {})
        settings = cls(**values, trainer_extra=extra)
        settings.check()
        return settings

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise AvatarError(f"distill.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.temperature is not None and self.temperature <= 0:
            raise AvatarError(f"distill.temperature must be positive, got {self.temperature}")
        if self.schedule not in SCHEDULES:
            known = ", ".join(SCHEDULES)
            raise AvatarError(f"distill.schedule must be one of {known}, got {self.schedule!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise AvatarError(f"distill.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.patience < 0:
            raise AvatarError(f"distill.patience must be >= 0, got {self.patience}")

    def trainer_options(self) -> dict[str, Any]:
        """The Lightning Trainer keywords these settings set (``None`` means Lightning's default)."""
        options = {name: getattr(self, name) for name in _TRAINER_FIELDS if getattr(self, name) is not None}
        options.update(self.trainer_extra)
        return options


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
    student_dir: Path | None = None
    resumed_from: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["candidate"] = self.candidate.as_dict()
        return to_jsonable(data)


def student_key(candidate: Candidate) -> str:
    """A short stable folder name for a candidate (``students/<key>/``)."""
    return hashlib.sha256(candidate.key().encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------- training


class _Throughput(Callback):
    """Examples and seconds of the training steps only (validation and data loading excluded)."""

    def __init__(self) -> None:
        self.examples = 0
        self.seconds = 0.0
        self._started = 0.0

    def _sync(self, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        self._sync(module)
        self._started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._sync(module)
        self.seconds += time.perf_counter() - self._started
        self.examples += len(batch["targets"])


@contextmanager
def _quiet(fast: bool) -> Iterator[None]:
    """Silence expected Lightning warnings; in fast mode also its info lines (GPU available ...)."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        if fast:
            lightning_log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            lightning_log.setLevel(level)


def temperature_for(settings: DistillSettings, task: Task) -> float:
    """``distill.temperature`` when set, else the task's own (``Task.temperature``)."""
    if settings.temperature is not None:
        return float(settings.temperature)
    return float(getattr(task, "temperature", TEMPERATURE) or TEMPERATURE)


def _use_soft(loss: str, knowledge: Knowledge) -> bool:
    if loss == "soft":
        if not knowledge.soft:
            raise AvatarError("distill.loss=soft needs teacher logits; this teacher gave hard labels only")
        return True
    return loss == "auto" and knowledge.soft


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def _load_weights(module: DistillationModule, path: str) -> None:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # our own file
    module.load_state_dict(checkpoint["state_dict"])


@contextmanager
def _explain_out_of_memory(batch_size: int) -> Iterator[None]:
    """Out-of-memory during training becomes one line with the batch size to lower."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if is_out_of_memory(error):
            raise AvatarError(out_of_memory_hint(batch_size, "distilling a student")) from None
        raise


def distill_candidate(
    candidate: Candidate,
    task: Task,
    knowledge: Knowledge,
    settings: DistillSettings | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    logger: Logger | bool | None = None,
    callbacks: Sequence[Callback] = (),
    teacher: str | None = None,
) -> DistillResult:
    """Distil ``candidate``'s student from ``knowledge`` (row-aligned with ``unlabel_train``).

    ``out_dir`` receives ``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``logs/`` (CSV,
    unless ``logger`` says otherwise) and ``student/`` (Hugging Face model + tokenizer +
    ``avatar.json``); a rerun in the same ``out_dir`` resumes from ``last.ckpt``.
    ``cache_dir`` is Avatar's cache root (tokenizers go to ``<cache_dir>/tokenizers``);
    default ``$AVATAR_CACHE`` or ``~/.cache/avatar``. With ``settings.fast`` nothing is
    written to ``out_dir`` (it may be ``None``) and only validation metrics are returned.
    """
    settings = settings or DistillSettings()
    settings.check()
    if out_dir is None and not settings.fast:
        raise AvatarError("distill_candidate needs an out_dir unless settings.fast is set")
    out = Path(out_dir) if out_dir is not None else None
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    soft = _use_soft(settings.loss, knowledge)
    check_knowledge(task, knowledge)  # before a tokenizer is trained for nothing

    with _quiet(settings.fast):
        L.seed_everything(settings.seed, workers=True, verbose=False)
        tokenizer = build_tokenizer(candidate, task, cache)
        data = StudentDataModule(
            task,
            tokenizer,
            knowledge,
            batch_size=int(candidate["batch_size"]),
            max_length=int(candidate["max_sequence_length"]),
            soft=soft,
            eval_batch_size=settings.eval_batch_size,
            num_workers=settings.num_workers,
            max_train_examples=settings.max_train_examples,
            seed=settings.seed,
        )
        labels = label_names(task)
        model = build_model(candidate, task.num_labels, labels)
        module = DistillationModule(
            model,
            task,
            learning_rate=float(candidate["learning_rate"]),
            soft=soft,
            temperature=temperature_for(settings, task),
            weight_decay=settings.weight_decay,
            schedule=settings.schedule,
            warmup_ratio=settings.warmup_ratio,
        )
        if settings.fast:
            return _fast_run(candidate, task, module, data, settings, callbacks, soft)
        assert out is not None
        return _full_run(
            candidate,
            task,
            module,
            data,
            tokenizer,
            settings,
            out,
            logger,
            callbacks,
            soft,
            labels,
            teacher or knowledge.teacher,
        )


def _fast_run(
    candidate: Candidate,
    task: Task,
    module: DistillationModule,
    data: StudentDataModule,
    settings: DistillSettings,
    callbacks: Sequence[Callback],
    soft: bool,
) -> DistillResult:
    """Train without validation or files, then validate the last weights once."""
    common = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": bool(settings.progress_bar),
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    options = {**settings.trainer_options(), **common}
    throughput = _Throughput()
    trainer = L.Trainer(**{**options, "limit_val_batches": 0, "callbacks": [throughput, *callbacks]})
    started = time.perf_counter()
    with _explain_out_of_memory(data.batch_size):
        trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - started
    evaluator = L.Trainer(**{**options, "max_steps": -1, "callbacks": []})
    metrics = _scalars(evaluator.validate(module, datamodule=data, verbose=False)[0])
    return _result(candidate, task, module, metrics, throughput, seconds, trainer.global_step, soft)


def _full_run(
    candidate: Candidate,
    task: Task,
    module: DistillationModule,
    data: StudentDataModule,
    tokenizer: PreTrainedTokenizerFast,
    settings: DistillSettings,
    out: Path,
    logger: Logger | bool | None,
    callbacks: Sequence[Callback],
    soft: bool,
    labels: list[str],
    teacher: str,
) -> DistillResult:
    monitor = f"val/{task.headline_metric}"
    checkpoints = out / "checkpoints"
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
        save_on_train_epoch_end=False,
    )
    last = ModelCheckpoint(
        dirpath=checkpoints,
        save_top_k=0,
        save_last=True,
        every_n_train_steps=settings.checkpoint_every_n_steps,
    )
    stopper = EarlyStopping(
        monitor=monitor,
        mode="max",
        patience=settings.patience,
        check_finite=False,
        check_on_train_epoch_end=False,
    )
    throughput = _Throughput()
    if logger is None:
        logger = CSVLogger(out, name="logs")
    options = settings.trainer_options()
    if settings.progress_bar is not None:
        options["enable_progress_bar"] = settings.progress_bar
    options.update(
        default_root_dir=out, logger=logger, callbacks=[best, last, stopper, throughput, *callbacks]
    )
    trainer = L.Trainer(**options)
    resume = checkpoints / LAST_CKPT
    resumed_from = resume if resume.is_file() else None
    if resumed_from is not None:
        log.info("resuming %s from %s", candidate, resumed_from)
    started = time.perf_counter()
    with _explain_out_of_memory(data.batch_size):
        trainer.fit(module, datamodule=data, ckpt_path=resumed_from)
    seconds = time.perf_counter() - started

    best_path = best.best_model_path or (
        str(checkpoints / "best.ckpt") if (checkpoints / "best.ckpt").is_file() else ""
    )
    if best_path:
        _load_weights(module, best_path)
    else:
        log.warning("no validation ran before training stopped: the student keeps its last weights")
    with _quiet(True):
        evaluator = L.Trainer(
            accelerator=settings.accelerator,
            devices=settings.devices,
            precision=settings.precision,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            **(
                {"limit_val_batches": settings.limit_val_batches}
                if settings.limit_val_batches is not None
                else {}
            ),
        )
        metrics = _scalars(evaluator.validate(module, datamodule=data, verbose=False)[0])
        metrics.update(_scalars(evaluator.test(module, datamodule=data, verbose=False)[0]))
    result = _result(candidate, task, module, metrics, throughput, seconds, trainer.global_step, soft)
    result.resumed_from = resumed_from
    meta = {
        "task": task.name,
        "is_pair": task.is_pair,
        "max_length": int(candidate["max_sequence_length"]),
        "labels": labels,
        "candidate": candidate.as_dict(),
        "size_mb": result.size_mb,
        "metrics": metrics,
        "teacher": teacher,
        "distillation": {
            "loss": "soft" if soft else "hard",
            "temperature": module.temperature if soft else None,
            "schedule": settings.schedule,
            "warmup_ratio": settings.warmup_ratio,
            "collapsed": result.collapsed,
            "global_step": result.global_step,
        },
    }
    result.student_dir = save_student(module.model, tokenizer, meta, out / "student")
    atomic_write_json(out / "result.json", result.to_dict())
    return result


def _result(
    candidate: Candidate,
    task: Task,
    module: DistillationModule,
    metrics: dict[str, float],
    throughput: _Throughput,
    seconds: float,
    global_step: int,
    soft: bool,
) -> DistillResult:
    headline = f"val/{task.headline_metric}"
    return DistillResult(
        candidate=candidate,
        headline_metric=task.headline_metric,
        headline=metrics.get(headline, float("nan")),
        metrics=metrics,
        train_examples=throughput.examples,
        train_seconds=seconds,
        train_examples_per_second=throughput.examples / throughput.seconds if throughput.seconds else 0.0,
        global_step=int(global_step),
        size_mb=parameter_bytes(module.model) / MB,
        soft=soft,
        collapsed=bool(module.collapsed),
    )


def save_student(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, meta: Mapping[str, Any], target: Path
) -> Path:
    """``save_pretrained`` model and tokenizer plus ``avatar.json`` into ``target``, atomically.

    Everything is written to a temporary folder beside ``target`` and renamed into place;
    an older student there is moved aside first and deleted after, so a kill leaves either
    the old or the new folder whole (or a stray ``.student.*`` folder, never a half one).
    """
    with atomic_directory(target) as tmp:
        model.to("cpu").save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / META_NAME).write_text(json.dumps(to_jsonable(dict(meta)), indent=2) + "\n", encoding="utf-8")
    return target


# ---------------------------------------------------------------------------------- stage


def resolve_candidate(cfg: Any) -> Candidate:
    """``cfg.candidate``: an index into ``cfg.pareto``'s front, or an inline dict checked by the space."""
    value = plain(cfg.get("candidate"))
    if isinstance(value, Mapping):
        from avatar.pipeline import build_space

        return build_space(cfg).validate(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AvatarError(f"candidate must be an index into the Pareto front or a dict, got {value!r}")
    pareto = cfg.get("pareto")
    if not pareto:
        raise AvatarError("candidate=<index> needs pareto=<path to pareto.json> (written by search.py)")
    path = Path(str(pareto))
    try:
        front = json.loads(path.read_text(encoding="utf-8"))["front"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise AvatarError(f"cannot read the Pareto front from {path}: {error}") from None
    if not -len(front) <= value < len(front):
        raise AvatarError(f"candidate={value} is out of range: {path} has {len(front)} Pareto members")
    config = front[value].get("config") if isinstance(front[value], Mapping) else None
    if not isinstance(config, Mapping):
        raise AvatarError(f"{path}: front[{value}] has no 'config' mapping")
    return Candidate.from_dict(config)


def run_distill_stage(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``train.py stage=distill``: distil one candidate into ``run_dir/students/<key>/``."""
    from avatar.pipeline import build_task
    from avatar.teacher import knowledge_for  # written beside this stage; imported when used

    task = build_task(cfg)
    candidate = resolve_candidate(cfg)
    knowledge = knowledge_for(cfg, task)
    settings = DistillSettings.from_config(plain(cfg.get("distill")), plain(cfg.get("trainer")))
    out_dir = Path(run_dir) / "students" / student_key(candidate)
    log.info("distilling %s into %s", candidate, out_dir)
    result = distill_candidate(candidate, task, knowledge, settings, out_dir, cache_dir=cfg.paths.cache)
    summary = result.to_dict()
    log.info("student %s: %s", out_dir, {k: round(v, 4) for k, v in result.metrics.items()})
    return summary
