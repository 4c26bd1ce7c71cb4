"""How much of each training example a candidate reads: its tokenizer and length against the task's code.

Why: within one budget, the examples a student sees ranked the indicator ground truth's
students until one read too little of each: a Unigram tokenizer of 1,000 pieces cuts a
function into the most tokens, and 256 of them hold about a quarter of a BigCloneBench pair,
so that student saw the second most pairs and reached the lowest accuracy (docs/benchmarks.md,
"The second ground truth"). A pair of snippets is truncated longest-first to the student's
``max_sequence_length``; the share of its tokens the student keeps is ``min(1, L / n)``, with
``n`` the pair's length under the student's own tokenizer.

Training a tokenizer for every (kind, vocabulary) a search visits costs seconds each, so
``CoverageModel`` holds each kind's per-example lengths at a few vocabulary sizes and
interpolates every other size in log-log, per example (a vocabulary k times larger shortens
code by a roughly constant factor over the space's range); the lengths come from real
tokenizers trained on the task's unlabeled code (``avatar.plugins.indicators.throughput``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avatar.core.errors import AvatarError
from avatar.task.base import Code


def token_lengths(tokenizer: object, codes: Sequence[Code]) -> np.ndarray:
    """Each code's length in tokens under ``tokenizer`` untruncated, its template (``<s>``,
    ``</s>``) included: a pair counts both snippets, as the student reads them in one sequence."""
    if not codes:
        raise AvatarError("coverage needs at least one example to measure")
    if isinstance(codes[0], str):
        encoded = tokenizer(list(codes), truncation=False, verbose=False)  # type: ignore[operator]
    else:  # verbose=False: lengths over the model's maximum are what is measured, not a mistake
        encoded = tokenizer([c[0] for c in codes], [c[1] for c in codes], truncation=False,  # type: ignore[operator]
                            verbose=False)
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=float)


def calibration_vocabularies(choices: Sequence[int], points: int) -> list[int]:
    """``points`` vocabulary sizes of ``choices``, evenly spaced in log from the smallest to the
    largest (each the nearest choice): where a kind's lengths are measured."""
    values = sorted(int(c) for c in choices)
    if points < 2 or len(values) <= points:
        return values if points >= 2 else [values[0]]
    low, high = math.log(values[0]), math.log(values[-1])
    targets = [math.exp(low + (high - low) * i / (points - 1)) for i in range(points)]
    return sorted({min(values, key=lambda v: abs(math.log(v) - math.log(t))) for t in targets})


def between(sizes: Sequence[int], vocab_size: int) -> tuple[int, int, float]:
    """Where ``vocab_size`` falls among the measured ``sizes`` (sorted): the nearest measured
    sizes below and above it and its position between them in log vocabulary (0 at the lower);
    a measured size, or one outside them, is ``(size, size, 0.0)`` (held at the ends)."""
    if vocab_size in sizes or vocab_size <= sizes[0] or vocab_size >= sizes[-1]:
        held = min(max(vocab_size, sizes[0]), sizes[-1])
        return held, held, 0.0
    upper = next(s for s in sizes if s > vocab_size)
    lower = max(s for s in sizes if s < vocab_size)
    return lower, upper, (math.log(vocab_size) - math.log(lower)) / (math.log(upper) - math.log(lower))


@dataclass(frozen=True)
class CoverageModel:
    """Per-example token lengths of the same examples under each (kind, vocabulary) measured."""

    lengths: dict[str, dict[int, np.ndarray]]

    def has(self, kind: str, vocab_size: int) -> bool:
        return vocab_size in self.lengths.get(kind, {})

    def add(self, kind: str, vocab_size: int, lengths: np.ndarray) -> None:
        """Record the lengths under one more tokenizer (a candidate's own, measured when it asks)."""
        self.lengths.setdefault(kind, {})[vocab_size] = lengths

    def lengths_for(self, kind: str, vocab_size: int) -> np.ndarray:
        """Each example's length under ``kind`` at ``vocab_size``: measured, or interpolated in
        log-log between the nearest measured sizes (held at the ends outside them)."""
        measured = self.lengths.get(kind)
        if not measured:
            raise AvatarError(f"coverage has no measured tokenizer of kind {kind!r}; "
                              f"measured: {sorted(self.lengths)}")
        lower, upper, weight = between(sorted(measured), vocab_size)
        if weight == 0.0:
            return measured[lower]
        return np.exp((1 - weight) * np.log(measured[lower]) + weight * np.log(measured[upper]))

    def coverage(self, kind: str, vocab_size: int, max_length: int) -> float:
        """The mean share of an example's tokens the student keeps at ``max_length``."""
        return float(np.mean(np.minimum(1.0, max_length / self.lengths_for(kind, vocab_size))))

    def tokens_read(self, kind: str, vocab_size: int, max_length: int) -> float:
        """The mean tokens the student reads of an example (truncated at ``max_length``)."""
        return float(np.mean(np.minimum(max_length, self.lengths_for(kind, vocab_size))))
