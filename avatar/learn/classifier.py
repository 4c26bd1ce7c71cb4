"""The one LightningModule Avatar trains: a sequence classifier and its loss.

The teacher's fine-tuning and the students' distillation are the same loop (forward,
loss, AdamW with a schedule, the task's metrics on validation and test); only the targets
differ. A batch holds the model inputs and ``targets``:

* int64 labels for a loss that takes labels (``hard``: cross-entropy; the teacher's
  fine-tuning and a student distilled from hard teacher labels);
* float teacher logits for a loss that needs them (``kl``: ``KL(teacher/T || student/T) *
  T^2``, Hinton et al.; ``kl_cosine``; any loss of the ``losses`` registry,
  ``avatar.learn.losses``).

Validation and test batches always carry gold labels. Logged names: ``train/loss``,
``train/lr``, ``val/loss`` (cross-entropy against gold), ``val/<metric>`` and
``test/<metric>`` for each of ``task.metrics()``, and ``val/majority_fraction``: the share
of validation examples given the most predicted class. At 1.0 the model has collapsed to
one class (chance accuracy; F1 0 or the positive rate's): ``collapsed`` turns true and a
warning is logged, so no collapsed student passes silently.

Checkpointing and early stopping watch ``val/selection`` (``SELECTION``): the headline metric,
pushed below every non-collapsed score when the validation collapsed. On an imbalanced
task a collapsed epoch can score the best accuracy (the majority class's share); kept as
"best", it would hand on a model that knows one class (it happened to a Devign teacher).

The learning rate warms up linearly over ``warmup_ratio`` of the training budget and then
decays linearly to zero (``schedule="linear"``, the paper's recipe), or stays constant. The
budget is whichever ends first: the Trainer's steps/epochs or its ``max_time``, so a
wall-clock budget gets a whole schedule too.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from torch import Tensor

from avatar.core.errors import AvatarError
from avatar.learn.losses import HardLabels, Loss
from avatar.learn.resumable import load_random_state, save_random_state, took_batch
from avatar.task.base import Task

log = logging.getLogger("avatar")

SELECTION = "val/selection"  # what checkpoints and early stopping watch (higher is better)
COLLAPSE_PENALTY = 10.0  # headline metrics are scores in [-1, 1]: this puts collapse below them all


def selection_score(headline: float, collapsed: bool) -> float:
    """The checkpoint score: the headline metric, minus ``COLLAPSE_PENALTY`` when collapsed."""
    return headline - COLLAPSE_PENALTY if collapsed else headline


def headline_of(selection: float) -> tuple[float, bool]:
    """``(headline, collapsed)`` back from a ``selection_score``."""
    collapsed = selection < -COLLAPSE_PENALTY / 2
    return (selection + COLLAPSE_PENALTY if collapsed else selection), collapsed

Batch = dict[str, Tensor]
SCHEDULES = ("linear", "constant")


def check_schedule(schedule: str, warmup_ratio: float, owner: str) -> None:
    """One line for a schedule the module cannot run (``owner`` names the config key)."""
    if schedule not in SCHEDULES:
        raise AvatarError(f"{owner}.schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if not 0 <= warmup_ratio < 1:
        raise AvatarError(f"{owner}.warmup_ratio must be in [0, 1), got {warmup_ratio}")


class ClassifierModule(L.LightningModule):
    """A ``*ForSequenceClassification`` model, its objective and its optimiser (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        task: Task,
        learning_rate: float,
        loss: Loss | None = None,
        weight_decay: float = 0.0,
        schedule: str = "linear",
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__()
        check_schedule(schedule, warmup_ratio, "training")
        # the recipe in every checkpoint and logger (hparams.yaml, wandb): plain values only, so a
        # checkpoint still loads with torch's restricted unpickler
        self.save_hyperparameters(ignore=["model", "task", "loss"])
        self.hparams["loss"] = (loss if loss is not None else HardLabels()).describe()
        self.hparams["task"] = task.name
        self.model = model
        self.learning_rate = float(learning_rate)
        self.loss = loss if loss is not None else HardLabels()  # the fine-tuning's, on gold labels
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

    @property
    def soft(self) -> bool:
        """Whether the targets are the teacher's logits (else class indices)."""
        return self.loss.needs_logits

    # -- forward and losses
    def forward(self, batch: Batch) -> Tensor:
        """Logits for a batch of plain inputs or of GraphCodeBERT's data-flow inputs."""
        if "position_idx" in batch:
            from avatar.code.graphcodebert import graph_guided_forward

            return graph_guided_forward(
                self.model, batch["input_ids"], batch["position_idx"], batch["attn_mask"]
            ).logits
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        took_batch(self.trainer.train_dataloader)  # the resume point of a resumable loader

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_random_state(checkpoint)  # dropout continues with the numbers it would have drawn

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_random_state(checkpoint)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        logits = self(batch)
        targets = batch["targets"]
        loss = self.loss(logits, targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(targets))
        return loss

    def _evaluate(self, batch: Batch, metrics: Any, prefix: str) -> Tensor:
        logits = self(batch)
        labels = batch["targets"]
        self.log(f"{prefix}/loss", F.cross_entropy(logits.float(), labels), batch_size=len(labels),
                 sync_dist=True)
        predicted = logits.argmax(dim=-1)
        metrics.update(predicted, labels)
        return predicted

    # -- validation (with collapse detection) and test
    def on_validation_epoch_start(self) -> None:
        self._predicted = torch.zeros(self.num_labels, dtype=torch.long)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        predicted = self._evaluate(batch, self.val_metrics, "val")
        self._predicted += torch.bincount(predicted.cpu(), minlength=self.num_labels)

    def on_validation_epoch_end(self) -> None:
        computed = self.val_metrics.compute()
        self.log_dict(computed, prog_bar=True)
        self.val_metrics.reset()
        # every rank's predictions (DDP); the identity in one process
        counts = self.trainer.strategy.reduce(self._predicted.to(self.device), reduce_op="sum").cpu()
        total = int(counts.sum())
        majority = float(counts.max()) / total if total else 0.0
        self.collapsed = majority >= 1.0
        headline = float(computed[f"val/{self.headline}"])
        self.log(SELECTION, selection_score(headline, self.collapsed), sync_dist=True)  # always: monitored
        if total == 0:
            return
        self.log("val/majority_fraction", majority, sync_dist=True)  # the same on every rank
        if self.collapsed and not self.trainer.sanity_checking and self.trainer.is_global_zero:
            log.warning(
                "collapsed: the model predicts class %d for all %d validation examples (%s)",
                int(counts.argmax()),
                total,
                # inside fit the validation loop is not "training": ask which entry point runs
                f"step {self.global_step}" if self.trainer.state.fn == "fit" else "final weights",
            )

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self(batch).float().cpu()

    # -- optimiser and schedule
    def configure_optimizers(self) -> Any:
        # No weight decay on biases and LayerNorm weights, as BERT-style training does.
        decay, no_decay = [], []
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                (no_decay if parameter.ndim < 2 else decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.learning_rate,
        )
        if self.schedule == "constant" and self.warmup_ratio == 0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_progress(self, step: int) -> float:
        """How much of the budget ``step`` steps used: steps or wall time, whichever is further."""
        trainer = self.trainer
        if self._total_steps is None:
            total = float(trainer.estimated_stepping_batches)
            self._total_steps = total if math.isfinite(total) and total > 0 else math.inf
        fractions = [step / self._total_steps]
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        duration = getattr(timer, "_duration", None) if timer is not None else None
        if timer is not None and duration:
            fractions.append((timer.time_elapsed("train") or 0.0) / duration)
        progress = max(fractions)
        return min(max(progress, 0.0), 1.0) if math.isfinite(progress) else 0.0

    def _lr_factor(self, step: int) -> float:
        """Linear warm-up over ``warmup_ratio`` of the budget, then linear decay to zero (or flat)."""
        progress = self.training_progress(step)
        if self.warmup_ratio > 0 and progress < self.warmup_ratio:
            return max(progress / self.warmup_ratio, 1e-3)
        if self.schedule == "constant":
            return 1.0
        return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - self.warmup_ratio))
