"""The one place a ``lightning.Trainer`` is built: teacher fine-tuning, students, brief runs.

Every training in Avatar gets its Lightning options as a plain mapping of Trainer keywords
(``configs/trainer`` for students, ``teacher.trainer`` for the teacher, the indicator's
brief-run budget), and ``build_trainer`` turns it into a Trainer. The caller's own
pieces (callbacks, logger, checkpointing) are added here, so a user's option can never
drop them, and options no Lightning Trainer takes fail in one line naming the known ones.

Also here, because every training path needs them: the training-throughput callback,
the silencing of Lightning's expected warnings, and the out-of-memory hint.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from avatar.core.errors import AvatarError, is_out_of_memory, out_of_memory_hint
from avatar.core.io import UnreadableCheckpoint, load_checkpoint
from avatar.core.memory import keep_freed_memory

log = logging.getLogger("avatar")

# Keywords Avatar sets itself for every run: a user option for them would be overwritten.
OWNED = ("callbacks", "logger", "enable_checkpointing", "default_root_dir")

# Lightning warnings that are expected here and say nothing to a user.
_QUIET = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*log_every_n_steps.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*could not find the monitored key.*",
    ".*You are using a CUDA device .* that has Tensor Cores.*",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
)


class _NoAdverts(logging.Filter):
    """Drops Lightning's product tips (``litlogger``) from the run log; keeps everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def one_lightning_log() -> None:
    """Each Lightning line once in the run's log.

    Why: the ``lightning`` package logger prints every line itself (``INFO: ...``) and also
    passes it up; with the run's log configured on the root logger (Hydra's file and console),
    every Lightning line appeared twice. When the root logger has handlers, it alone prints.
    """
    if not logging.getLogger().handlers:
        return
    package = logging.getLogger("lightning")
    for handler in list(package.handlers):
        if type(handler) is logging.StreamHandler:
            package.removeHandler(handler)


@functools.cache
def trainer_defaults() -> dict[str, Any]:
    """Every keyword ``lightning.Trainer`` accepts, with its default (read from its signature)."""
    parameters = inspect.signature(L.Trainer.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


INTEGER_KEYS: frozenset[str] = frozenset({
    "max_epochs", "min_epochs", "max_steps", "min_steps", "log_every_n_steps", "accumulate_grad_batches",
    "num_sanity_val_steps", "num_nodes", "check_val_every_n_epoch", "reload_dataloaders_every_n_epochs",
})
"""Lightning keys that take a whole number (``None`` allowed: Lightning's default)."""

NUMBER_KEYS: frozenset[str] = frozenset({
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
    "overfit_batches", "gradient_clip_val",
})
"""Lightning keys that take an int (batches) or a float (a fraction, a norm)."""

BOOLEAN_KEYS: frozenset[str] = frozenset({
    "enable_progress_bar", "enable_checkpointing", "enable_model_summary", "benchmark", "inference_mode",
    "use_distributed_sampler", "detect_anomaly", "barebones", "sync_batchnorm",
})


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_interval(value: Any) -> bool:
    """``val_check_interval``: batches, a fraction of an epoch, or a time ("DD:HH:MM:SS", Lightning 2.6)."""
    if _is_number(value):
        return True
    try:
        check_max_time(value, "val_check_interval")
    except AvatarError:
        return False
    return True


CHECKS: tuple[tuple[frozenset[str], Any, str], ...] = (
    (frozenset({"val_check_interval"}), _is_interval, "a number of batches, a fraction or DD:HH:MM:SS"),
    (INTEGER_KEYS, _is_integer, "an integer"),
    (NUMBER_KEYS, _is_number, "a number"),
    (BOOLEAN_KEYS, lambda value: isinstance(value, bool), "true or false"),
)


def check_max_time(value: Any, where: str) -> timedelta:
    """A wall-clock budget Lightning's ``Timer`` reads ("DD:HH:MM:SS", a mapping of ``timedelta``
    keywords, or a ``timedelta``), and longer than zero: found now, not after the teacher trained."""
    try:
        if isinstance(value, timedelta):
            budget = value
        elif isinstance(value, Mapping):
            budget = timedelta(**dict(value))
        elif isinstance(value, str):
            days, hours, minutes, seconds = (int(part) for part in value.strip().split(":"))
            budget = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise AvatarError(f"{where} must be DD:HH:MM:SS (e.g. 00:01:00:00), got {value!r}") from None
    if budget <= timedelta(0):
        raise AvatarError(f"{where} must be longer than zero, got {value!r}: nothing would train")
    return budget


def wall_clock_seconds(options: Mapping[str, Any], where: str) -> float | None:
    """The seconds of the ``max_time`` in Lightning ``options``, or None when the budget is in
    epochs or steps (what an indicator predicting the students' result within it reads)."""
    budget = options.get("max_time")
    return check_max_time(budget, where).total_seconds() if budget else None


def check_trainer_options(options: Mapping[str, Any] | None, where: str = "trainer") -> dict[str, Any]:
    """The options a Trainer should get, checked before any work starts (one line each).

    An unknown keyword names the known ones; a numeric or boolean key with a value of the
    wrong type (``trainer.max_epochs=abc``) says what it takes: Lightning would only find
    out when the Trainer is built, after the pruning, the search and the surrogate runs.
    ``None`` where Lightning's own default is ``None`` means "unset" and is dropped (the
    config lists every keyword that way); ``None`` elsewhere is a real value
    (``check_val_every_n_epoch=null`` lets ``val_check_interval`` count steps across epochs).
    """
    options = dict(options or {})
    defaults = trainer_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        known = ", ".join(sorted(set(defaults) - set(OWNED)))
        raise AvatarError(f"{where}.{unknown[0]} is not a lightning.Trainer option; known: {known}")
    for key, value in options.items():
        if value is None:
            continue
        for keys, accepts, expected in CHECKS:
            if key in keys and not accepts(value):
                raise AvatarError(f"{where}.{key} must be {expected}, got {value!r} ({type(value).__name__})")
    if options.get("max_time") is not None:
        check_max_time(options["max_time"], f"{where}.max_time")
    return {k: v for k, v in options.items() if not (v is None and defaults[k] is None)}


@functools.cache
def cpu_has_bf16() -> bool | None:
    """Whether this CPU computes bf16 natively (``avx512_bf16`` or AMX); ``None`` off Linux.

    Read once per process: every Trainer built asks (brief runs build dozens).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


_WARNED_PRECISIONS: set[str] = set()
"""Precisions already warned about in this process: a search builds a Trainer per brief run."""


def _warn_slow_precision(merged: Mapping[str, Any]) -> None:
    """bf16 on a CPU without bf16 instructions is emulated: measured 3.5-5x slower than fp32.

    (``bench/train_speed_bench.py`` on an AMD EPYC without them: 0.19x to 0.28x of fp32.)
    Said once per process and precision.
    """
    precision = str(merged.get("precision") or "")
    on_cpu = merged.get("accelerator") == "cpu" or (
        merged.get("accelerator", "auto") == "auto" and not torch.cuda.is_available()
    )
    emulated = precision.startswith("bf16") and on_cpu and precision not in _WARNED_PRECISIONS
    if emulated and cpu_has_bf16() is False:
        _WARNED_PRECISIONS.add(precision)
        log.warning("precision %s on a CPU without bf16 instructions (avx512_bf16, AMX) is emulated and "
                    "several times slower than 32-true; see bench/train_speed_bench.py", precision)


def build_trainer(
    options: Mapping[str, Any],
    *,
    root_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    logger: Any = False,
    checkpointing: bool = False,
    defaults: Mapping[str, Any] | None = None,
    **required: Any,
) -> L.Trainer:
    """A Trainer from the user's ``options`` over Avatar's ``defaults``; ``required`` wins over both.

    Defaults: no model summary, no sanity validation. ``callbacks``, ``logger`` and
    ``checkpointing`` are the caller's (a user's ``trainer.logger`` would otherwise
    replace the run's CSV log).
    """
    one_lightning_log()
    keep_freed_memory()  # a training process reuses its freed tensors' pages (avatar.core.memory)
    merged: dict[str, Any] = {"enable_model_summary": False, "num_sanity_val_steps": 0, **(defaults or {})}
    merged.update(check_trainer_options(options))
    merged.update(required)
    for key in OWNED:
        merged.pop(key, None)
    if root_dir is not None:
        merged["default_root_dir"] = str(root_dir)
    _warn_slow_precision(merged)
    if checkpointing:
        callbacks = [*callbacks, CheckpointOnTerminate(), CheckpointsWhereTheyAre()]
    return L.Trainer(**merged, callbacks=list(callbacks), logger=logger, enable_checkpointing=checkpointing)


class CheckpointOnTerminate(Callback):
    """On SIGTERM, ``last.ckpt`` at the batch boundary where Lightning stops.

    Why: a preempted job (SLURM, ``docker stop``) would otherwise lose everything since the
    last periodic checkpoint. Lightning raises ``SIGTERMException`` only between batches,
    so the state saved here is consistent; the rerun resumes from it.
    """

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
                path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
                trainer.save_checkpoint(path)
                log.warning("SIGTERM: saved %s at step %d", path, trainer.global_step)
                return


def with_min_steps(options: Mapping[str, Any], steps_per_epoch: int, min_steps: int,
                   where: str = "distill.min_steps") -> dict[str, Any]:
    """``options`` with enough epochs for ``min_steps`` optimizer steps, when the budget is epochs.

    Why: an epoch budget means very different training on different data sizes. Three epochs
    of a 750-snippet task are 39 steps, and its students stayed on the first plateau
    (collapsed to one class); BigCloneBench's are thousands. A step or wall-clock budget the
    user set (``max_steps``, ``max_time``) is left as it is. Lightning's ``min_steps`` is set
    too, so early stopping waits for them.
    """
    merged = dict(options)
    epochs = merged.get("max_epochs")
    step_budget = (merged.get("max_steps") or -1) > 0
    if min_steps <= 0 or steps_per_epoch <= 0 or merged.get("max_time") or step_budget or epochs is None \
            or int(epochs) < 0:
        return merged
    accumulate = int(merged.get("accumulate_grad_batches") or 1)
    per_epoch = max(1, steps_per_epoch // accumulate)
    needed = math.ceil(min_steps / per_epoch)
    if needed > int(epochs):
        log.info("%d optimizer steps per epoch: %d epochs instead of %d, for at least %d steps (%s)",
                 per_epoch, needed, int(epochs), min_steps, where)
        merged["max_epochs"] = needed
        merged["min_steps"] = max(int(merged.get("min_steps") or 0), min_steps)
    return merged


def resume_checkpoint(path: Path, options: Mapping[str, Any]) -> Path | None:
    """``path`` if a training can resume from it within the budget in ``options``; else None.

    A damaged or foreign ``last.ckpt`` (a torn write, a file planted in a shared run
    directory) is set aside as ``last.ckpt.unreadable-<n>`` with one warning, and the
    training restarts: one line and a way out instead of the same traceback on every rerun.
    A checkpoint further on than the budget (``trainer.max_steps``/``max_epochs`` lowered
    since) is one line saying which budget resumes it; Lightning would stop with a
    traceback (epochs) or end at once with more steps than asked (steps).
    """
    if not path.is_file():
        return None
    try:
        checkpoint = load_checkpoint(path)
    except UnreadableCheckpoint as error:
        taken = sum(1 for _ in path.parent.glob(f"{path.name}.unreadable-*"))
        aside = path.with_name(f"{path.name}.unreadable-{taken}")
        path.rename(aside)
        log.warning("%s is not a checkpoint Avatar wrote, or damaged (%s); set aside as %s, "
                    "this training starts again", path, error.reason, aside.name)
        return None
    done = {"max_steps": int(checkpoint.get("global_step", 0)), "max_epochs": int(checkpoint.get("epoch", 0))}
    for key, progress in done.items():
        limit = options.get(key)
        if limit is not None and int(limit) >= 0 and progress > int(limit):
            unit = "steps" if key == "max_steps" else "epochs"
            raise AvatarError(f"{path} has trained {progress} {unit}, more than trainer.{key}={limit}: set "
                              f"trainer.{key}>={progress} to resume it, or delete it to train from the start")
    return path


class CheckpointsWhereTheyAre(Callback):
    """On resume, each ``ModelCheckpoint``'s saved state re-rooted onto the folder it saves in now.

    Why: Lightning records absolute paths in a checkpoint (its ``dirpath``, ``best_model_path``,
    ``last_model_path``). After the run directory (or the cache, for a teacher) was moved or
    copied, it would reload the best weights from the original, and, not recognising its own
    ``last.ckpt``, write ``last-v1.ckpt`` beside it. Re-rooted, a moved or copied run resumes
    as itself: its own best checkpoint, its own ``last.ckpt`` rewritten.
    """

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("callbacks") or {}
        for callback in trainer.checkpoint_callbacks:
            state = states.get(callback.state_key) if isinstance(callback, ModelCheckpoint) else None
            if isinstance(state, dict) and callback.dirpath:
                states[callback.state_key] = rerooted_state(state, str(callback.dirpath))


def rerooted_state(state: dict[str, Any], dirpath: str) -> dict[str, Any]:
    """A ``ModelCheckpoint`` state whose paths under its recorded ``dirpath`` now lie under ``dirpath``."""
    old = state.get("dirpath")
    if not old or os.path.abspath(old) == os.path.abspath(dirpath):
        return state

    def move(path: Any) -> Any:
        if not path or not Path(path).is_relative_to(old):
            return path
        return str(Path(dirpath) / Path(path).relative_to(old))

    keys = ("best_model_path", "kth_best_model_path", "last_model_path")
    moved = {key: move(state[key]) for key in keys if key in state}
    best_k = {move(path): score for path, score in (state.get("best_k_models") or {}).items()}
    return {**state, **moved, "best_k_models": best_k, "dirpath": dirpath}


SINGLE_PROCESS = {"devices": 1, "num_nodes": 1, "strategy": "auto"}
"""Machine keys for the work after a fit (evaluation, prediction): one process, on rank 0."""


def leave_unless_rank_zero(trainer: L.Trainer) -> None:
    """After a distributed fit, a process of rank > 0 has done its share, and exits here.

    Why here: everything after training (loading the best weights, evaluation, saving the
    model, predicting the knowledge, writing caches and reports) must happen once. Ending
    the other ranks right after ``fit`` makes that true for every caller, plugins included,
    without a rank check in each; rank 0 continues alone, on one process (``SINGLE_PROCESS``),
    with the process group closed (metrics would otherwise wait for the ranks that left).
    """
    if trainer.world_size <= 1:
        return
    if not trainer.is_global_zero:
        log.info("rank %d: training done; rank 0 evaluates and saves", trainer.global_rank)
        sys.exit(0)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class Throughput(Callback):
    """Examples and seconds of the training steps only (validation and data loading excluded)."""

    def __init__(self) -> None:
        self.examples = 0
        self.seconds = 0.0
        self._started = 0.0

    @staticmethod
    def _sync(module: L.LightningModule) -> None:
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
        self.examples += len(batch["targets"]) * trainer.world_size  # DDP: every rank's batch at once

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


@contextmanager
def quiet_lightning(info: bool = True) -> Iterator[None]:
    """Silence expected Lightning warnings; with ``info=False`` also its info lines (GPU available ...)."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        if not info:
            lightning_log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            lightning_log.setLevel(level)


@contextmanager
def explain_out_of_memory(batch_size: int, doing: str) -> Iterator[None]:
    """Out-of-memory during training becomes one line with the batch size to lower."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if is_out_of_memory(error):
            raise AvatarError(out_of_memory_hint(batch_size, doing)) from None
        raise
