"""A calibrated model of a student's training speed on this machine, from a few measured ones.

Why: ``meters=trainable`` times real training steps of each candidate, about 17 s a
candidate on one core (model build, warmup, up to its ``max_seconds`` of steps), and a search
visits a few hundred candidates: an hour of measuring before the students train. FLOPs do
not predict the time: on a CPU a small student's step is bound by memory traffic (attention's
batch x heads x seq^2 tensors, the activations, AdamW's passes over the parameters), and
over the indicator ground truth's 12 Latin-hypercube candidates their forward FLOPs rank the
measured seconds per example at Spearman -0.01. The estimated bytes of one training step per
example (``avatar.search.cost.training_memory_bytes`` over the batch size) rank them at 0.87
(0.93 over the second ground truth's first 7), and ``seconds per example = a + b x bytes per
example`` with a, b >= 0 (non-negative least squares: with a dozen points a free fit can turn a
slope negative) predicts each left-out candidate's speed within 25% (median; 17% on the
second's 7; docs/benchmarks.md, "A speed model and a cap"). Two coefficients, refitted on
every machine and thread count from its own measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avatar.core.errors import AvatarError
from avatar.search.cost import MB, training_memory_bytes
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars


def features(candidate: Candidate, num_labels: int) -> list[float]:
    """``[1, MiB per example]``: what the per-example time is linear in."""
    step = float(training_memory_bytes(candidate_vars(candidate, num_labels)))
    return [1.0, step / int(candidate["batch_size"]) / MB]


@dataclass(frozen=True)
class SpeedModel:
    """``seconds per example = overhead + per_mb x (training-step MiB per example)``."""

    overhead: float
    per_mb: float
    num_labels: int

    @classmethod
    def fit(cls, candidates: Sequence[Candidate], examples_per_s: Sequence[float],
            num_labels: int) -> SpeedModel:
        """Non-negative least squares over measured candidates (at least 2 distinct ones)."""
        from scipy.optimize import nnls

        if len(candidates) != len(examples_per_s) or len(candidates) < 2:
            raise AvatarError(f"a speed model needs at least 2 measured candidates, got {len(candidates)}")
        if any(not rate > 0 for rate in examples_per_s):
            raise AvatarError(f"measured training speeds must be positive, got {list(examples_per_s)}")
        design = np.array([features(c, num_labels) for c in candidates])
        seconds = 1.0 / np.asarray(examples_per_s, dtype=float)
        (overhead, per_mb), _ = nnls(design, seconds)
        if overhead <= 0 and per_mb <= 0:
            raise AvatarError("the measured training speeds fit no speed model (all coefficients zero)")
        return cls(float(overhead), float(per_mb), num_labels)

    def examples_per_second(self, candidate: Candidate) -> float:
        _, mb = features(candidate, self.num_labels)
        return 1.0 / (self.overhead + self.per_mb * mb)


def leave_one_out_errors(candidates: Sequence[Candidate], examples_per_s: Sequence[float],
                         num_labels: int) -> list[float]:
    """Each measured candidate's relative error when the model is fitted on the others: what
    the log line reports, so a user sees how far to trust the predicted speeds."""
    errors = []
    for left_out in range(len(candidates)):
        rest = [i for i in range(len(candidates)) if i != left_out]
        if len(rest) < 2:
            return []
        model = SpeedModel.fit([candidates[i] for i in rest], [examples_per_s[i] for i in rest], num_labels)
        predicted = model.examples_per_second(candidates[left_out])
        errors.append(predicted / examples_per_s[left_out] - 1.0)
    return errors
