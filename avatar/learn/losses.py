"""Training objectives: how a model learns from its targets (a ``losses`` registry).

Why a registry: distillation losses are where the method moves fastest (MORPH adds a
cosine term to the KL divergence; others match hidden states). A loss is one class that
says what it needs from the teacher (``needs_logits``: soft outputs, or hard labels will
do) and checks its own options; the data module, the LightningModule and the settings
only ask it. ``distill.loss=<name>`` picks one (``auto``: ``kl`` when the teacher gave
logits, else ``hard``), ``distill.temperature`` and ``distill.loss_options`` configure it.

The built-ins are here because the teacher's fine-tuning needs ``hard`` too; a new loss
is one file under ``avatar/plugins/losses/`` (or in a plugin package), like
``kl_cosine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from avatar.core.errors import AvatarError
from avatar.core.registry import LOSSES

AUTO = "auto"


class Loss(ABC):
    """A training objective over a batch: the model's logits against its targets.

    ``targets`` are the teacher's logits (N x labels) when ``needs_logits``, else class
    indices (N). ``temperature`` is the distillation temperature; losses that do not
    soften ignore it.
    """

    name: ClassVar[str] = ""  # set by ``@LOSSES.register``
    needs_logits: ClassVar[bool] = True

    def __init__(self, temperature: float = 1.0) -> None:
        try:
            self.temperature = float(temperature)
        except (TypeError, ValueError):
            raise AvatarError(f"distill.temperature must be a number, got {temperature!r}") from None
        if not self.temperature > 0:
            raise AvatarError(f"distill.temperature must be positive, got {temperature}")

    @abstractmethod
    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor: ...

    def check_teacher(self, has_logits: bool) -> None:
        """One line, before any work, when the teacher cannot give what this loss needs."""
        if self.needs_logits and not has_logits:
            raise AvatarError(
                f"distill.loss={self.name} needs teacher logits; this teacher gave hard labels only"
            )

    def describe(self) -> dict[str, Any]:
        """What a finished student's result depends on (its cache signature)."""
        return {"name": self.name, "temperature": self.temperature}


@LOSSES.register("kl")
class KLDivergence(Loss):
    """``KL(teacher/T || student/T) * T^2``, averaged over the batch (Hinton et al.)."""

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        t = self.temperature
        student = F.log_softmax(logits.float() / t, dim=-1)
        teacher = F.log_softmax(targets.float() / t, dim=-1)
        return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * (t * t)


@LOSSES.register("hard")
class HardLabels(Loss):
    """Cross-entropy on class indices: gold labels, or the teacher's argmax."""

    needs_logits = False

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), targets)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def build_loss(
    name: str, has_logits: bool, temperature: float, options: dict[str, Any] | None = None
) -> Loss:
    """The loss ``name`` (``auto``: ``kl`` with logits, else ``hard``), checked against the teacher."""
    if name == AUTO:
        name = "kl" if has_logits else "hard"
    spec = {"name": name, "temperature": temperature, **(options or {})}
    loss = LOSSES.build(spec, where="distill.loss_options")
    loss.check_teacher(has_logits)
    return loss
