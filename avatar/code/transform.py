"""The transform interface, and reproducible application of a transform to a data set.

A transform plugin is one class in one file (see ``avatar/plugins/transforms/rename.py``)::

    @TRANSFORMS.register("dead_code")
    class DeadCode(Transform):
        def apply(self, code: str, rng: random.Random) -> str | None:
            ...  # the copy; ``code`` itself when there is nothing to do; None to skip

Why so small: ``apply`` is all a data pipeline needs. The three outcomes are kept apart
because they mean different things in a coverage report -- a copy was made (*changed*),
the function is its own copy (*unchanged*), or the transform could not vouch for a copy
(*skipped*, never a silently wrong function). A transform that knows *why* it skipped
overrides ``outcome`` too.

``transform_all`` seeds one ``random.Random`` per function from (seed, the function's
key), so a function's copy does not depend on which other functions are transformed or
in what order: rerunning on a subset, a shuffled set or in parallel gives the same copies.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

from avatar.code.rename import Status
from avatar.core.registry import TRANSFORMS


@dataclass(frozen=True)
class Outcome:
    """One function's result: ``code`` is None exactly when ``status == "skipped"``."""

    status: Status
    code: str | None
    reason: str = ""


class Transform(ABC):
    """A semantics-preserving rewrite of one function.

    Built with the task's ``language`` (``"c"`` or ``"java"``) and ``names``, a pool of
    identifiers mined from the task's training code (``avatar.code.rename.mine_identifiers``)
    that transforms which invent names draw from; others may ignore it.
    """

    name: str = "transform"

    def __init__(self, language: str, names: Sequence[str] = ()) -> None:
        self.language = language
        self.names = list(names)

    @abstractmethod
    def apply(self, code: str, rng: Random) -> str | None:
        """The transformed copy of ``code``; ``code`` itself if nothing applies; None to skip.

        All randomness must come from ``rng``: that is what makes copies reproducible.
        """

    def outcome(self, code: str, rng: Random) -> Outcome:
        """``apply`` with the outcome named; override to give reasons for skips."""
        copy = self.apply(code, rng)
        if copy is None:
            return Outcome("skipped", None, "skipped")
        return Outcome("changed" if copy != code else "unchanged", copy)


def create_transform(name: str, language: str, names: Sequence[str] = (), **options: Any) -> Transform:
    """The registered transform ``name``; an unknown name is one line listing the known ones."""
    return TRANSFORMS.create(name, language=language, names=names, **options)


def function_rng(seed: int | str, code: str, key: object | None = None) -> Random:
    """The generator for one function: from (seed, key), or (seed, the code's SHA-256) without a key.

    A string seed is hashed with SHA-512 by ``random.Random``, so this is the same in every
    process and Python run (unlike ``hash()``, which is salted per process).
    """
    if key is None:
        key = hashlib.sha256(code.encode("utf-8", errors="surrogatepass")).hexdigest()
    return Random(f"{seed}:{key}")


@dataclass
class TransformStats:
    """Counts for a coverage report; ``reasons`` counts the skip reasons."""

    total: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def skip_rate(self) -> float:
        return self.skipped / self.total if self.total else 0.0

    @property
    def per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("inf")

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        if outcome.status == "changed":
            self.changed += 1
        elif outcome.status == "unchanged":
            self.unchanged += 1
        else:
            self.skipped += 1
            self.reasons[outcome.reason] += 1


def transform_all(
    transform: Transform,
    codes: Sequence[str],
    seed: int | str = 0,
    keys: Sequence[object] | None = None,
) -> tuple[list[str | None], TransformStats]:
    """Apply ``transform`` to every function: (copies, None where skipped; the counts).

    Each function's generator comes from ``function_rng(seed, code, key)``; ``keys`` (e.g.
    the data set's ``idx`` field) default to the code's hash, so identical functions get
    identical copies and a copy never depends on its position in ``codes``.
    """
    if keys is not None and len(keys) != len(codes):
        raise ValueError(f"{len(keys)} keys for {len(codes)} functions")
    stats = TransformStats()
    copies: list[str | None] = []
    start = time.perf_counter()
    for index, code in enumerate(codes):
        key = keys[index] if keys is not None else None
        outcome = transform.outcome(code, function_rng(seed, code, key))
        stats.add(outcome)
        copies.append(outcome.code)
    stats.seconds = time.perf_counter() - start
    return copies, stats
