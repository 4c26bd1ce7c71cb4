"""Stage 6, distillation: train a candidate's student on the teacher's knowledge.

The loss is the teacher-student KL divergence at a temperature ``T`` on soft labels, or
cross-entropy on the teacher's hard labels when the teacher gave only labels
(``distill.loss=hard`` forces it); the loop itself is ``avatar.classifier``'s, shared with
the teacher's fine-tuning, and the Trainer comes from ``avatar.training``. ``T`` is the
task's own unless ``distill.temperature`` sets it (``Task.temperature``; chosen by
measurement, see the tasks).

``distill_candidate`` runs one student: early stopping and checkpoints on the task's
headline validation metric, ``last.ckpt`` refreshed every few minutes of training
(``distill.checkpoint_every_minutes``) so a killed run resumes from there (how a resumed
run differs from an uninterrupted one: the weights, optimiser, learning-rate schedule,
step count and best checkpoint all continue exactly; the data order does not, because
Lightning restarts the interrupted epoch's shuffled order from its beginning, a plain
DataLoader having no mid-epoch state, so the steps after the resume see other batches
and end near, not at, the uninterrupted result), best weights
reloaded for the test, and the student saved in Hugging Face format with ``avatar.json``
(``avatar.student_folder``). A student that already finished in ``out_dir`` is not trained
again: its ``result.json`` is returned. With ``fast=True`` (the surrogate's brief runs) it
writes nothing, prints nothing and returns the validation metrics of the last weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from transformers import PreTrainedTokenizerFast

from avatar.classifier import SELECTION, ClassifierModule, check_schedule
from avatar.cost import MB, forward_flops
from avatar.errors import AvatarError
from avatar.executor import Executor, LocalExecutor
from avatar.io import UnreadableCheckpoint, atomic_write_json, load_checkpoint, to_jsonable
from avatar.progress import progress_bar
from avatar.smt import candidate_vars
from avatar.space import Candidate
from avatar.student import (
    StudentDataModule,
    agreement,
    build_model,
    build_tokenizer,
    default_cache_dir,
    label_names,
    parameter_bytes,
)
from avatar.student_folder import HOLDOUT_AGREEMENT, save_student
from avatar.task import Task
from avatar.teacher import Knowledge, check_knowledge
from avatar.training import (
    SINGLE_PROCESS,
    Throughput,
    build_trainer,
    explain_out_of_memory,
    leave_unless_rank_zero,
    quiet_lightning,
)

log = logging.getLogger("avatar")

LOSSES = ("auto", "soft", "hard")
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

    loss: str = "auto"
    temperature: float | None = None  # None: the task's own (Task.temperature)
    schedule: str = "linear"
    warmup_ratio: float = 0.1
    patience: int = 3
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

    @classmethod
    def from_config(cls, distill: Mapping[str, Any] | None = None, ignore: Sequence[str] = ("top_k",),
                    **overrides: Any) -> DistillSettings:
        """Settings from the ``distill`` config group (a plain mapping).

        An unknown key is an error (a typo would otherwise be silently ignored); ``ignore``
        lists the keys other stages read (``top_k``).
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
        if self.loss not in LOSSES:
            raise AvatarError(f"distill.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.temperature is not None and self.temperature <= 0:
            raise AvatarError(f"distill.temperature must be positive, got {self.temperature}")
        check_schedule(self.schedule, self.warmup_ratio, "distill")
        if self.holdout < 0:
            raise AvatarError(f"distill.holdout must be >= 0, got {self.holdout}")
        if self.patience < 0:
            raise AvatarError(f"distill.patience must be >= 0, got {self.patience}")
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

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["candidate"] = self.candidate.as_dict()
        return to_jsonable(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistillResult:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["candidate"] = Candidate.from_dict(data["candidate"])
        for name in ("student_dir", "resumed_from"):
            values[name] = Path(values[name]) if values.get(name) else None
        return cls(**values)


def student_key(candidate: Candidate) -> str:
    """A short stable folder name for a candidate (``students/<key>/``)."""
    return hashlib.sha256(candidate.key().encode()).hexdigest()[:12]


def temperature_for(settings: DistillSettings, task: Task) -> float:
    """``distill.temperature`` when set, else the task's own (``Task.temperature``)."""
    if settings.temperature is not None:
        return float(settings.temperature)
    return float(getattr(task, "temperature", 2.0) or 2.0)


# ------------------------------------------------------------------------------- training


def _use_soft(loss: str, knowledge: Knowledge) -> bool:
    if loss == "soft":
        if not knowledge.soft:
            raise AvatarError("distill.loss=soft needs teacher logits; this teacher gave hard labels only")
        return True
    return loss == "auto" and knowledge.soft


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def _load_weights(module: ClassifierModule, path: str) -> None:
    module.load_state_dict(load_checkpoint(path)["state_dict"])


def usable_checkpoint(path: Path) -> Path | None:
    """``path`` if it holds a checkpoint the restricted unpickler reads, else None.

    A damaged or foreign ``last.ckpt`` (a torn write, a file planted in a shared run
    directory) is set aside as ``last.ckpt.unreadable-<n>`` with one warning, and the
    student restarts: one line and a way out instead of the same traceback on every rerun.
    """
    if not path.is_file():
        return None
    try:
        load_checkpoint(path)
    except UnreadableCheckpoint as error:
        taken = sum(1 for _ in path.parent.glob(f"{path.name}.unreadable-*"))
        aside = path.with_name(f"{path.name}.unreadable-{taken}")
        path.rename(aside)
        log.warning("%s is not a checkpoint Avatar wrote, or damaged (%s); set aside as %s, "
                    "this student starts again", path, error.reason, aside.name)
        return None
    return path


def run_signature(candidate: Candidate, settings: DistillSettings, trainer: Mapping[str, Any]) -> str:
    """What a finished student's result depends on: the candidate, the method and the budget.

    A rerun with the same signature returns the finished student; a larger budget resumes
    from ``last.ckpt`` instead (progress bars and energy metering do not count).
    """
    ignored = ("progress_bar", "measure_energy")
    method = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ignored}
    text = json.dumps([candidate.key(), method, dict(trainer)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_result(out_dir: Path, signature: str) -> DistillResult | None:
    """The result of a student that already finished in ``out_dir`` under ``signature``, else None."""
    path = out_dir / RESULT_NAME
    if not path.is_file() or not (out_dir / "student" / "config.json").is_file():
        return None
    try:
        result = DistillResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.signature == signature else None


def distill_candidate(
    candidate: Candidate,
    task: Task,
    knowledge: Knowledge,
    settings: DistillSettings | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    trainer: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    logger: Logger | bool | None = None,
    callbacks: Sequence[Callback] = (),
    teacher: str | None = None,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> DistillResult:
    """Distil ``candidate``'s student from ``knowledge`` (row-aligned with ``unlabel_train``).

    ``trainer`` holds the Lightning Trainer options (budget, hardware). ``out_dir`` receives
    ``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``logs/`` (CSV, unless ``logger`` says
    otherwise), ``student/`` (Hugging Face model + tokenizer + ``avatar.json``) and
    ``result.json``; a rerun in the same ``out_dir`` resumes from ``last.ckpt``, or returns
    the finished result. ``cache_dir`` is Avatar's cache root (tokenizers go to
    ``<cache_dir>/tokenizers``); default ``$AVATAR_CACHE`` or ``~/.cache/avatar``; a
    ``tokenizer`` built beforehand (by the driver of a Ray map) is used as it is. With
    ``settings.fast`` nothing is written to ``out_dir`` (it may be ``None``) and only
    validation metrics are returned.
    """
    settings = settings or DistillSettings()
    settings.check()
    trainer = dict(trainer or {})
    if out_dir is None and not settings.fast:
        raise AvatarError("distill_candidate needs an out_dir unless settings.fast is set")
    out = Path(out_dir) if out_dir is not None else None
    signature = run_signature(candidate, settings, trainer)
    if out is not None and not settings.fast:
        done = finished_result(out, signature)
        if done is not None:
            log.info("student %s already finished in %s: not training it again", candidate, out)
            return done
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    soft = _use_soft(settings.loss, knowledge)
    check_knowledge(task, knowledge)  # before a tokenizer is trained for nothing

    with quiet_lightning(info=not settings.fast):
        L.seed_everything(settings.seed, workers=True, verbose=False)
        if tokenizer is None:
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
            holdout=settings.holdout,
        )
        labels = label_names(task)
        module = ClassifierModule(
            build_model(candidate, task.num_labels, labels),
            task,
            learning_rate=float(candidate["learning_rate"]),
            objective="soft" if soft else "hard",
            temperature=temperature_for(settings, task),
            weight_decay=settings.weight_decay,
            schedule=settings.schedule,
            warmup_ratio=settings.warmup_ratio,
        )
        if settings.fast:
            return _fast_run(candidate, task, module, data, settings, trainer, callbacks)
        assert out is not None
        return _full_run(
            candidate, task, module, data, tokenizer, settings, trainer, out, logger, callbacks, labels,
            teacher or knowledge.teacher, signature,
        )


def _fast_run(
    candidate: Candidate,
    task: Task,
    module: ClassifierModule,
    data: StudentDataModule,
    settings: DistillSettings,
    options: dict[str, Any],
    callbacks: Sequence[Callback],
) -> DistillResult:
    """Train without validation or files, then validate the last weights once."""
    throughput = Throughput()
    fit = build_trainer(
        options, callbacks=[throughput, *callbacks], enable_progress_bar=bool(settings.progress_bar),
        limit_val_batches=0,
    )
    started = time.perf_counter()
    with explain_out_of_memory(data.batch_size, "distilling a student"):
        energy = _measured(lambda: fit.fit(module, datamodule=data, weights_only=True), settings)
    seconds = time.perf_counter() - started
    evaluator = build_trainer({**options, "max_steps": -1}, enable_progress_bar=False)
    metrics = _scalars(evaluator.validate(module, datamodule=data, verbose=False)[0])
    return _result(candidate, task, module, metrics, throughput, seconds, fit.global_step, energy)


def _measured(fit: Any, settings: DistillSettings) -> float | None:
    """Run ``fit()``; its energy in kWh (codecarbon), or None when not measured."""
    if not settings.measure_energy:
        fit()
        return None
    from avatar.green import measure_workload

    return measure_workload(fit, name="distillation").energy_kwh


def _checkpoints(
    task: Task, settings: DistillSettings, folder: Path
) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """``best.ckpt`` on ``SELECTION`` (the headline metric; collapsed validations rank last);
    ``last.ckpt`` every N steps or minutes and at the end."""
    best = ModelCheckpoint(
        dirpath=folder, filename="best", monitor=SELECTION, mode="max", save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False, save_on_train_epoch_end=False,
    )
    every: dict[str, Any] = {}
    if settings.checkpoint_every_n_steps:
        every["every_n_train_steps"] = settings.checkpoint_every_n_steps
    elif settings.checkpoint_every_minutes:
        every["train_time_interval"] = timedelta(minutes=settings.checkpoint_every_minutes)
    last = ModelCheckpoint(dirpath=folder, save_top_k=0, save_last=True, **every)
    return best, last


def _full_run(
    candidate: Candidate,
    task: Task,
    module: ClassifierModule,
    data: StudentDataModule,
    tokenizer: Any,
    settings: DistillSettings,
    options: dict[str, Any],
    out: Path,
    logger: Logger | bool | None,
    callbacks: Sequence[Callback],
    labels: list[str],
    teacher: str,
    signature: str,
) -> DistillResult:
    checkpoints = out / "checkpoints"
    best, last = _checkpoints(task, settings, checkpoints)
    stopper = EarlyStopping(
        monitor=SELECTION, mode="max", patience=settings.patience, check_finite=False,
        check_on_train_epoch_end=False,
    )
    throughput = Throughput()
    if logger is None:
        logger = CSVLogger(out, name="logs")
    extra = {} if settings.progress_bar is None else {"enable_progress_bar": settings.progress_bar}
    fit = build_trainer(
        options, root_dir=out, logger=logger, checkpointing=True,
        callbacks=[best, last, stopper, throughput, *callbacks], **extra,
    )
    resumed_from = usable_checkpoint(checkpoints / LAST_CKPT)
    if resumed_from is not None:
        log.info("resuming %s from %s", candidate, resumed_from)
    started = time.perf_counter()
    with explain_out_of_memory(data.batch_size, "distilling a student"):
        # weights_only: torch's restricted unpickler, so a planted checkpoint cannot run code
        energy = _measured(
            lambda: fit.fit(module, datamodule=data, ckpt_path=resumed_from, weights_only=True), settings
        )
    seconds = time.perf_counter() - started
    leave_unless_rank_zero(fit)  # DDP: the other ranks end here; rank 0 evaluates and saves once

    best_path = best.best_model_path or (
        str(checkpoints / "best.ckpt") if (checkpoints / "best.ckpt").is_file() else ""
    )
    if best_path:
        _load_weights(module, best_path)
    else:
        log.warning("no validation ran before training stopped: the student keeps its last weights")
    with quiet_lightning(info=False):
        keep = ("accelerator", "precision", "limit_val_batches", "limit_test_batches")
        evaluator = build_trainer({k: v for k, v in options.items() if k in keep}, enable_progress_bar=False,
                                  **SINGLE_PROCESS)
        metrics = _scalars(evaluator.validate(module, datamodule=data, verbose=False)[0])
        metrics.update(_scalars(evaluator.test(module, datamodule=data, verbose=False)[0]))
    held = data.holdout_split()
    if held is not None:
        metrics[HOLDOUT_AGREEMENT] = agreement(module.model, held, settings.eval_batch_size)
        log.info("student %s agrees with the teacher on %.2f%% of %d held-out unlabeled examples",
                 candidate, 100 * metrics[HOLDOUT_AGREEMENT], len(held))
    result = _result(candidate, task, module, metrics, throughput, seconds, fit.global_step, energy)
    result.resumed_from = resumed_from
    result.signature = signature
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
            "loss": "soft" if module.soft else "hard",
            "temperature": module.temperature if module.soft else None,
            "schedule": settings.schedule,
            "warmup_ratio": settings.warmup_ratio,
            "global_step": result.global_step,
            "collapsed": result.collapsed,
        },
    }
    result.student_dir = save_student(module.model, tokenizer, meta, out / "student")
    atomic_write_json(out / RESULT_NAME, result.to_dict())
    return result


def _result(
    candidate: Candidate,
    task: Task,
    module: ClassifierModule,
    metrics: dict[str, float],
    throughput: Throughput,
    seconds: float,
    global_step: int,
    energy_kwh: float | None = None,
) -> DistillResult:
    if module.collapsed:
        log.warning("student %s collapsed to one class: its metrics are chance level", candidate)
    return DistillResult(
        candidate=candidate,
        headline_metric=task.headline_metric,
        headline=metrics.get(f"val/{task.headline_metric}", float("nan")),
        metrics=metrics,
        train_examples=throughput.examples,
        train_seconds=seconds,
        train_examples_per_second=throughput.per_second,
        global_step=int(global_step),
        size_mb=parameter_bytes(module.model) / MB,
        soft=module.soft,
        collapsed=bool(module.collapsed),
        train_energy_kwh=energy_kwh,
    )


# ---------------------------------------------------------------------------- the front


def spread(front: Sequence[Any], k: int) -> list[int]:
    """``k`` indices spread evenly along the front (both ends included)."""
    if k >= len(front):
        return list(range(len(front)))
    if k == 1:
        return [len(front) // 2]
    return sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)})


def training_cost(candidate: Candidate, num_labels: int) -> float:
    """A training's relative cost on a fixed budget of examples, so an executor starts the longest
    first: the forward FLOPs of one example (the backward pass is about twice the forward)."""
    return float(forward_flops(candidate_vars(candidate, num_labels)))


@dataclass(frozen=True)
class StudentRun:
    """One final student, self-contained: what a worker needs besides the task and knowledge."""

    candidate: Candidate
    settings: DistillSettings
    trainer: dict[str, Any]
    out_dir: Path
    tokenizer: PreTrainedTokenizerFast  # built by the driver, so workers write no cache


def train_student(unit: StudentRun, task: Task, knowledge: Knowledge) -> DistillResult:
    """Distil ``unit`` into its folder (resuming or returning a finished one), on any worker.

    The student's folder is written where it trains (checkpoints make it resumable), so on
    a cluster the run directory must be on a file system every worker sees.
    """
    if not unit.out_dir.parent.parent.is_dir():
        raise AvatarError(
            f"run directory {unit.out_dir.parent.parent} is not visible on this worker "
            f"({socket.gethostname()}): put the run directory on a file system the whole cluster "
            "shares (docs/scale.md)"
        )
    return distill_candidate(
        unit.candidate, task, knowledge, unit.settings, unit.out_dir, trainer=unit.trainer,
        tokenizer=unit.tokenizer,
    )


def distill_front(
    task: Task,
    space: Any,
    front: list[dict[str, Any]],
    top_k: int,
    knowledge: Knowledge,
    settings: DistillSettings,
    trainer: Mapping[str, Any],
    run_dir: Path,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Distil ``top_k`` Pareto members spread across the front into ``run_dir/students/``.

    Each student trains in its own folder, on ``executor`` (default: one after another in
    this process); a rerun resumes each from its last checkpoint and returns finished ones
    as they are. ``students.json`` (front order) is rewritten by this process as each finishes.
    """
    executor = executor or LocalExecutor()
    if executor.workers > 1:  # several progress bars would interleave: the driver's count stands for them
        settings = dataclasses.replace(settings, progress_bar=False)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    chosen = spread(front, top_k)
    units = []
    for index in chosen:
        candidate = space.validate(front[index]["config"])
        out_dir = Path(run_dir) / "students" / student_key(candidate)
        tokenizer = build_tokenizer(candidate, task, cache)
        units.append(StudentRun(candidate, settings, dict(trainer), out_dir, tokenizer))
    log.info("distilling %d Pareto members %s on %s", len(units), chosen, executor.describe())
    finished: dict[int, dict[str, Any]] = {}
    # one bar for all when several train at once; a single student shows Lightning's own
    bar = progress_bar("students", len(units)) if executor.workers > 1 else nullcontext(lambda *_: None)
    with bar as update:

        def record(number: int, result: DistillResult) -> None:
            index = chosen[number]
            log.info("student of Pareto member %d finished in %s", index, result.student_dir)
            finished[number] = {
                "front_index": index, "objectives": front[index]["objectives"], **result.to_dict()
            }
            atomic_write_json(Path(run_dir) / "students.json", [finished[n] for n in sorted(finished)])
            update(len(finished))

        # Finished students are read here, in the driver: sent to an executor they would cost
        # a Ray start, the task and knowledge shipped, and a worker's imports, to read a file.
        todo = []
        for number, unit in enumerate(units):
            done = finished_result(unit.out_dir, run_signature(unit.candidate, unit.settings, unit.trainer))
            if done is not None:
                log.info("student %s already finished in %s", unit.candidate, unit.out_dir)
                record(number, done)
            else:
                todo.append(number)
        shared = {"task": task, "knowledge": knowledge}
        costs = [training_cost(units[n].candidate, task.num_labels) for n in todo]
        for position, result in executor.map(train_student, [units[n] for n in todo], shared, costs):
            record(todo[position], result)
    return [finished[n] for n in sorted(finished)]
