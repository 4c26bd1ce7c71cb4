"""A learning curve of a short training, and its extrapolation to a longer budget.

Why: a brief run says where a student is after a few thousand examples; the students train
for ``trainer.max_time``, and a fast candidate sees ten times the examples of a slow one in
that time. The surrogate's ``curve_points`` variant records the validation loss at a few
points of each brief run (``ValidationCurve``), fits loss against the logarithm of the
examples seen (the usual straight line of a power law's early part) and reads it at the
examples the candidate would see in the students' budget at the brief run's own measured
throughput (``extrapolate``). A brief run on a wall-clock budget (``budget_seconds``) has no
step count to split, so its points are spread over its seconds instead, the last one on
its final weights.
"""

from __future__ import annotations

import math
import time
from itertools import islice
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback


class ValidationCurve(Callback):
    """Validation loss and accuracy at ``points`` evenly spaced steps of the training (or, with
    ``seconds``, the training's wall-clock budget: evenly spaced in time, the last point at its
    end), on the first ``batches`` validation batches (the same ones each time)."""

    def __init__(self, points: int, batches: int | None, seconds: float | None = None) -> None:
        self.points = int(points)
        self.batches = batches
        self.seconds = None if seconds is None else float(seconds)
        self.at: set[int] = set()
        self.started = 0.0
        self.curve: list[dict[str, float]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()
        if self.seconds is None:
            total = int(trainer.estimated_stepping_batches)
            self.at = {max(1, round(total * k / self.points)) for k in range(1, self.points + 1)}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = int(trainer.global_step)
        if self.seconds is not None:  # the first points - 1 at their times, the last at the end
            due = self.seconds * (len(self.curve) + 1) / self.points
            if len(self.curve) < self.points - 1 and time.monotonic() - self.started >= due:
                self._validate(trainer, pl_module, step)
            return
        if step not in self.at or any(point["step"] == step for point in self.curve):
            return
        self._validate(trainer, pl_module, step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = int(trainer.global_step)
        if self.seconds is not None and step > 0 and not any(point["step"] == step for point in self.curve):
            self._validate(trainer, pl_module, step)

    def _validate(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> None:
        loader = trainer.datamodule.val_dataloader()  # type: ignore[attr-defined]
        losses, correct, count = [], 0, 0
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            for val_batch in islice(loader, self.batches):
                val_batch = {k: v.to(pl_module.device) for k, v in val_batch.items()}
                logits = pl_module(val_batch).float()
                labels = val_batch["targets"]
                losses.append(float(F.cross_entropy(logits, labels, reduction="sum")))
                correct += int((logits.argmax(dim=-1) == labels).sum())
                count += len(labels)
        pl_module.train(was_training)
        examples = step * int(trainer.datamodule.batch_size)  # type: ignore[attr-defined]
        self.curve.append({"step": step, "examples": examples, "val_loss": sum(losses) / max(count, 1),
                           "val_accuracy": correct / max(count, 1)})


def extrapolate(curve: list[dict[str, float]], examples: float, key: str = "val_loss") -> float:
    """``key`` at ``examples`` from a least-squares line over ln(examples seen); with one point,
    that point (nothing to extrapolate from)."""
    points = [(math.log(max(p["examples"], 1.0)), float(p[key])) for p in curve if p.get(key) is not None]
    if not points:
        raise ValueError("an empty learning curve")
    if len({x for x, _ in points}) < 2:
        return points[-1][1]
    xs, ys = np.array([x for x, _ in points]), np.array([y for _, y in points])
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(intercept + slope * math.log(max(examples, 1.0)))
