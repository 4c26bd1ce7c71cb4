"""``distill.loss=kl_cosine``: MORPH's objective, the KL divergence plus a cosine term.

Why: the KL term matches the teacher's softened class probabilities; the cosine term also
asks the student's logit vector to point where the teacher's does, a scale-free signal
that MORPH (2025) found to help small students keep their teacher's decisions.
``distill.loss_options.cosine_weight`` weighs it (default 1.0).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from avatar.core.errors import AvatarError
from avatar.core.registry import LOSSES
from avatar.learn.losses import KLDivergence


@LOSSES.register("kl_cosine")
class KLCosine(KLDivergence):
    def __init__(self, temperature: float = 1.0, cosine_weight: float = 1.0) -> None:
        super().__init__(temperature)
        if not float(cosine_weight) >= 0:
            raise AvatarError(f"distill.loss_options.cosine_weight must be >= 0, got {cosine_weight}")
        self.cosine_weight = float(cosine_weight)

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        cosine = F.cosine_similarity(logits.float(), targets.float(), dim=-1)
        return super().__call__(logits, targets) + self.cosine_weight * (1 - cosine).mean()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "cosine_weight": self.cosine_weight}
