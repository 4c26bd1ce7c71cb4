"""Stage 6, distillation: train a candidate's student on the teacher's knowledge.

The loss is the teacher-student KL divergence at a temperature ``T`` on soft labels, or
cross-entropy on the teacher's hard labels when the teacher gave only labels
(``distill.loss=hard`` forces it); the loop itself is ``avatar.learn.classifier``'s, shared with
the teacher's fine-tuning, and the Trainer comes from ``avatar.learn.training``. ``T`` is the
task's own unless ``distill.temperature`` sets it (``Task.temperature``; chosen by
measurement, see the tasks).

``distill_candidate`` runs one student: early stopping and checkpoints on the task's
headline validation metric, ``last.ckpt`` refreshed every few minutes of training
(``distill.checkpoint_every_minutes``) so a killed run resumes from there, as the run it
continues: weights, optimiser, schedule, step counts, early stopping, the data order within
the epoch and dropout's generator all carry over (``avatar.learn.resumable``), best weights
reloaded for the test, and the student saved in Hugging Face format with ``avatar.json``
(``avatar.distill.folder``). A student that already finished in ``out_dir`` is not trained
again: its ``result.json`` is returned. With ``fast=True`` (the surrogate's brief runs) it
writes nothing, prints nothing and returns the validation metrics of the last weights.
"""


from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from transformers import PreTrainedTokenizerFast

from avatar.code.metamorphic import MetamorphicCopy, canonical_split, metamorphic_copy, supports
from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_json, load_checkpoint
from avatar.distill.folder import HOLDOUT_AGREEMENT, save_student
from avatar.distill.settings import (
    LAST_CKPT,
    RESULT_NAME,
    DistillResult,
    DistillSettings,
    finished_result,
    loss_for,
    run_signature,
)
from avatar.distill.student import (
    FLIPS,
    StudentDataModule,
    agreement,
    build_model,
    build_tokenizer,
    default_cache_dir,
    flip_metrics,
    label_names,
    parameter_bytes,
)
from avatar.learn.classifier import SELECTION, ClassifierModule
from avatar.learn.losses import AUTO
from avatar.learn.training import (
    SINGLE_PROCESS,
    Throughput,
    build_trainer,
    explain_out_of_memory,
    leave_unless_rank_zero,
    quiet_lightning,
    resume_checkpoint,
    with_min_steps,
)
from avatar.search.cost import MB, available_memory_bytes, check_training_memory
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars
from avatar.task.base import Code, Split, Task
from avatar.teach.teacher import Knowledge, check_knowledge

log = logging.getLogger("avatar")


# ------------------------------------------------------------------------------- training


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def _load_weights(module: ClassifierModule, path: str) -> None:
    module.load_state_dict(load_checkpoint(path)["state_dict"])


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
    settings = (settings or DistillSettings()).for_task(task)
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
    loss = loss_for(settings, task, knowledge.soft and not undecided_teacher(knowledge, settings))
    check_knowledge(task, knowledge)  # before a tokenizer is trained for nothing
    check_training_memory(candidate_vars(candidate, task.num_labels), f"student {candidate}",
                          available_memory_bytes())

    with quiet_lightning(info=not settings.fast):
        L.seed_everything(settings.seed, workers=True, verbose=False)
        if tokenizer is None:
            tokenizer = build_tokenizer(candidate, task, cache, settings.canonical_names)
        data = StudentDataModule(
            task,
            tokenizer,
            knowledge,
            batch_size=int(candidate["batch_size"]),
            max_length=int(candidate["max_sequence_length"]),
            soft=loss.needs_logits,
            eval_batch_size=settings.eval_batch_size,
            num_workers=settings.num_workers,
            max_train_examples=settings.max_train_examples,
            seed=settings.seed,
            holdout=settings.holdout,
            augmented=_augmented(task, settings, cache),
            group_by_length=settings.group_by_length,
            canonical=_canonical(task, settings, cache),
        )
        labels = label_names(task)
        module = ClassifierModule(
            build_model(candidate, task.num_labels, labels),
            task,
            learning_rate=float(candidate["learning_rate"]),
            loss=loss,
            weight_decay=settings.weight_decay,
            schedule=settings.schedule,
            warmup_ratio=settings.warmup_ratio,
        )
        if settings.fast:
            return _fast_run(candidate, task, module, data, settings, trainer, callbacks, cache)
        assert out is not None
        steps_per_epoch = math.ceil(len(data.split("unlabel_train")) / data.batch_size)
        trainer = with_min_steps(trainer, steps_per_epoch, settings.min_steps)
        return _full_run(
            candidate, task, module, data, tokenizer, settings, trainer, out, logger, callbacks, labels,
            teacher or knowledge.teacher, signature, cache,
        )


UNDECIDED_SHARE = 0.25
"""``distill.loss=auto`` takes the teacher's hard labels when it leaves more of the unlabeled
examples than this undecided between two classes (``Knowledge.undecided_share``)."""


def undecided_teacher(knowledge: Knowledge, settings: DistillSettings) -> bool:
    """Whether ``auto`` should distil the teacher's hard labels instead of its logits.

    Why: a scratch teacher that reached 100% validation accuracy early kept logits that
    barely separate two of three classes (1.32 against 1.27 on a 750-snippet language task):
    its soft labels taught every student the tie (0.667 test accuracy, validation loss ln 2),
    and the same student on its hard labels reached 1.0. Measured shares: that teacher 67%,
    the demo's 0.5%, the paper's BigCloneBench teachers 0.06% and 0.004%.
    """
    if settings.loss != AUTO or not knowledge.soft:
        return False
    share = knowledge.undecided_share()
    if share <= UNDECIDED_SHARE:
        return False
    if not settings.fast:
        log.warning("the teacher's probabilities leave %.0f%% of the unlabeled examples undecided between "
                    "two classes: distilling its hard labels (distill.loss=auto; distill.loss=kl keeps the "
                    "logits)", 100 * share)
    return True


def _fast_run(
    candidate: Candidate,
    task: Task,
    module: ClassifierModule,
    data: StudentDataModule,
    settings: DistillSettings,
    options: dict[str, Any],
    callbacks: Sequence[Callback],
    cache: Path,
) -> DistillResult:
    """Train without validation or files, then validate the last weights once (and, with
    ``validation_flips``, count their flips on the validation split's metamorphic copy)."""
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
    if settings.validation_flips and settings.flips and supports(task):
        copy = metamorphic_copy(task, "valid", cache, settings.flips, seed=0)
        metrics.update(flip_metrics(module.model, data, copy, settings.eval_batch_size, split="valid",
                                    limit=settings.validation_flips))
    return _result(candidate, task, module, metrics, throughput, seconds, fit.global_step, energy)


def _measured(fit: Any, settings: DistillSettings) -> float | None:
    """Run ``fit()``; its energy in kWh (codecarbon), or None when not measured."""
    if not settings.measure_energy:
        fit()
        return None
    from avatar.run.green import measure_workload

    return measure_workload(fit, name="distillation").energy_kwh


def _checkpoints(settings: DistillSettings, folder: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
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
    # no last-v1.ckpt: a last.ckpt this callback did not write (a SIGTERM save, a copied run) is its own
    last = ModelCheckpoint(dirpath=folder, save_top_k=0, save_last=True, enable_version_counter=False,
                           **every)
    return best, last


def _augmented(task: Task, settings: DistillSettings, cache: Path) -> list[MetamorphicCopy]:
    """``distill.augment_copies`` metamorphic copies of the unlabeled split (seeds 1..k), or none."""
    if settings.augment is None:
        return []
    if not supports(task):
        log.warning("distill.augment=%s: task %s is in %s, which the transforms do not parse; "
                    "training without augmentation", settings.augment, task.name, task.language)
        return []
    return [metamorphic_copy(task, "unlabel_train", cache, settings.augment, seed=settings.seed + copy)
            for copy in range(1, settings.augment_copies + 1)]


def _canonical(task: Task, settings: DistillSettings, cache: Path) -> Callable[[Split], list[Code]] | None:
    """``distill.canonical_names``: the reader of a split's canonical form (cached), or None."""
    if not settings.canonical_names:
        return None
    if not supports(task):
        raise AvatarError(f"distill.canonical_names: task {task.name!r} is in {task.language}, which the "
                          "transforms do not parse; set distill.canonical_names=false")
    return lambda split: canonical_split(task, split, cache)


def _flips(module: ClassifierModule, task: Task, data: StudentDataModule, settings: DistillSettings,
           cache: Path) -> dict[str, float]:
    """``distill.flips``: the student's prediction flips on the metamorphic copy of the test split."""
    if settings.flips is None or not supports(task):
        return {}
    copy = metamorphic_copy(task, "test", cache, settings.flips, seed=0)  # one copy for every model
    flips = flip_metrics(module.model, data, copy, settings.eval_batch_size)
    log.info("student flips its answer on %d of %d metamorphic test copies (%s)", flips[FLIPS],
             flips["test/flip_examples"], settings.flips)
    return flips


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
    cache: Path,
) -> DistillResult:
    checkpoints = out / "checkpoints"
    best, last = _checkpoints(settings, checkpoints)
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
    resumed_from = resume_checkpoint(checkpoints / LAST_CKPT, options)
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
    metrics.update(_flips(module, task, data, settings, cache))
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
        "language": task.language,  # avatar scan: which files, which parser, with no plugin import
        **({"canonical_names": True} if settings.canonical_names else {}),  # what every caller must feed it
        "max_length": int(candidate["max_sequence_length"]),
        "labels": labels,
        "candidate": candidate.as_dict(),
        "size_mb": result.size_mb,
        "metrics": metrics,
        "teacher": teacher,
        "distillation": {
            **{key if key != "name" else "loss": value for key, value in module.loss.describe().items()},
            "schedule": settings.schedule,
            "warmup_ratio": settings.warmup_ratio,
            "global_step": result.global_step,
            "collapsed": result.collapsed,
        },
    }
    result.student_dir = save_student(module.model, tokenizer, meta, out / "student")
    atomic_write_json(out / RESULT_NAME, result.to_dict(base=out))  # relative: the run may move
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
