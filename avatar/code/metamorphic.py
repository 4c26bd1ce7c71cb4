"""Metamorphic copies of a task's splits: every function rewritten by a transform, cached.

Why: robustness is measured on the *same* copy for every model (a student's flips and its
teacher's are comparable only then), and augmentation trains on copies of the unlabeled
split. A copy is a pure function of (the split's content, the transform, the seed, the
name pool), so it is computed once and cached under ``<cache>/metamorphic``.

* Pairs: both functions of a pair are transformed; a function that appears in several
  pairs gets the same copy in each (each function's generator is seeded from its code).
* A function the transform cannot vouch for is *skipped*: its example is left out of the
  copy (``None``) and counted, never silently changed.
* New names come from identifiers mined from the task's own training code (the
  ``unlabel_train`` split, deduplicated), so they look like the task's names.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from random import Random

from avatar.code.parsing import SUPPORTED_LANGUAGES
from avatar.code.rename import mine_identifiers
from avatar.code.transform import create_transform, transform_all
from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_bytes, cache_lock, discard_corrupt
from avatar.task.base import Code, Split, Task, snippets

log = logging.getLogger("avatar")

FORMAT = 2  # bump when the transforms or the file layout change: old copies are recomputed
POOL_SIZE = 5000


@dataclass(frozen=True)
class MetamorphicCopy:
    """One split's copy, example by example (``None``: skipped), and the transform's counts."""

    transform: str
    seed: int
    codes: list[Code | None]
    changed: int
    unchanged: int
    skipped: int

    @property
    def kept(self) -> list[int]:
        """Indices of the examples that have a copy (changed or unchanged)."""
        return [i for i, code in enumerate(self.codes) if code is not None]

    def describe(self) -> str:
        functions = self.changed + self.unchanged + self.skipped
        share = self.skipped / max(1, functions)
        return (f"{self.transform} (seed {self.seed}): {len(self.kept):,} of {len(self.codes):,} examples; "
                f"functions: {self.changed:,} changed, {self.unchanged:,} unchanged, "
                f"{self.skipped:,} skipped ({share:.2%})")


def supports(task: Task) -> bool:
    """Whether the built-in transforms parse the task's language."""
    return task.language in SUPPORTED_LANGUAGES


def _functions(codes: list[Code]) -> list[str]:
    """The distinct functions of a split, in first-seen order (a pair holds two)."""
    seen: dict[str, None] = {}
    for code in codes:
        for function in snippets(code):
            seen.setdefault(function, None)
    return list(seen)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError, EOFError) as error:
        discard_corrupt(path, error)
        return None


def _write(path: Path, data: object) -> None:
    atomic_write_bytes(path, gzip.compress(json.dumps(data).encode("utf-8"), compresslevel=5))


def name_pool(task: Task, cache_dir: Path) -> list[str]:
    """Identifiers mined from the task's unlabeled (training) code, most frequent first; cached."""
    functions = _functions([e.code for e in task.read_split("unlabel_train")])
    path = Path(cache_dir) / "metamorphic" / (
        f"{task.name}-names-{_key(task.fingerprint('unlabel_train'), task.language, FORMAT)}.json.gz")
    with cache_lock(path):
        cached = _read(path)
        if cached is not None:
            return list(cached)
        log.info("mining identifiers from %d functions of task %s", len(functions), task.name)
        names = mine_identifiers(functions, task.language, limit=POOL_SIZE)
        _write(path, names)
        return names


def metamorphic_copy(
    task: Task, split: Split, cache_dir: Path, transform: str = "rename", seed: int = 0
) -> MetamorphicCopy:
    """The split's metamorphic copy under ``transform`` and ``seed`` (computed once, then cached)."""
    if not supports(task):
        raise AvatarError(f"task {task.name!r}: no metamorphic copies for language {task.language!r} "
                          f"(supported: {', '.join(SUPPORTED_LANGUAGES)})")
    codes: list[Code] = [e.code for e in task.read_split(split)]
    identity = _key(task.fingerprint(split), task.language, transform, seed, FORMAT)
    path = Path(cache_dir) / "metamorphic" / f"{task.name}-{split}-{transform}-{identity}.json.gz"
    with cache_lock(path):
        cached = _read(path)
        if cached is None:
            names = name_pool(task, cache_dir)
            functions = _functions(codes)
            log.info("metamorphic copy of %s/%s: %s over %d functions", task.name, split, transform,
                     len(functions))
            copies, stats = transform_all(create_transform(transform, task.language, names), functions, seed)
            by_function = dict(zip(functions, copies))
            rebuilt: list[Code | None] = []
            for code in codes:
                if isinstance(code, str):
                    rebuilt.append(by_function[code])
                else:
                    first, second = by_function[code[0]], by_function[code[1]]
                    rebuilt.append(None if first is None or second is None else [first, second])
            cached = {"codes": rebuilt, "changed": stats.changed, "unchanged": stats.unchanged,
                      "skipped": stats.skipped}
            _write(path, cached)
    restored = [tuple(c) if isinstance(c, list) else c for c in cached["codes"]]
    if len(restored) != len(codes):
        raise AvatarError(f"{path}: {len(restored)} examples for a split of {len(codes)}; delete it")
    counts = (cached[k] for k in ("changed", "unchanged", "skipped"))
    copy = MetamorphicCopy(transform, seed, restored, *counts)
    log.info("metamorphic copy of %s/%s: %s", task.name, split, copy.describe())
    return copy


def canonical_codes(codes: list[Code | None], language: str) -> list[Code | None]:
    """Each code (both sides of a pair) in canonical form (``transform=canonical``); a function
    the transform cannot vouch for stays as it is, and None stays None. For inputs that are not
    a task's split (a metamorphic copy, a user's snippets); a split's form is cached by
    ``canonical_split``."""
    transform = create_transform("canonical", language)
    memo: dict[str, str] = {}

    def one(function: str) -> str:
        if function not in memo:
            memo[function] = transform.apply(function, Random(0)) or function
        return memo[function]

    return [None if code is None else one(code) if isinstance(code, str) else (one(code[0]), one(code[1]))
            for code in codes]


def canonical_split(task: Task, split: Split, cache_dir: Path) -> list[Code]:
    """The split's examples in canonical form, computed once and cached like a metamorphic copy;
    an example the transform skipped keeps its original code."""
    copy = metamorphic_copy(task, split, cache_dir, "canonical", seed=0)
    originals = [e.text for e in task.read_split(split)]
    return [original if code is None else code for code, original in zip(copy.codes, originals)]
