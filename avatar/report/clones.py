"""Likely clone pairs of a code base: a cheap candidate step, then a pair student's verdict.

Why two steps: a pair student scores one pair at a time (about 50 pairs/s on one CPU core
for a 2-layer student reading 512 tokens), so the n(n-1)/2 pairs of even a small code base
(9,133 functions: 41.7 million pairs, ten days) are out of reach. MinHash over token
shingles estimates every function's Jaccard similarity to every other, and an LSH forest
returns each function's nearest neighbours by that estimate without comparing all pairs;
only those ``neighbours`` per function (at most n * neighbours pairs) reach the student.

Identifiers and literals are kept in the shingles (``abstract_names`` False): replacing them
with ``ID``/``LIT`` found fewer of the student's clones in ``bench/clones_bench.py``, and a
renamed copy still shares its keywords, operators, literals and library calls, enough to be
its original's nearest neighbour (tests/test_clones.py).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from avatar.code.functions import Function
from avatar.core.errors import AvatarError
from avatar.report.predict import BATCHES_PER_CHUNK, Predictor

FORMATS = ("jsonl", "csv")
SHINGLE = 3
"""Tokens per shingle: 3-grams keep local order (``a = b`` differs from ``b = a``) yet survive
small edits; on BigCloneBench 1- and 2-grams did no better and 5-grams worse (bench table)."""
NUM_PERM = 128
"""MinHash permutations: a Jaccard estimate within about 0.09 (1/sqrt(128)); 64 and 256 did no
better in the bench, and hashing time grows with it."""
NEIGHBOURS = 3
"""Candidates per function. On BigCloneBench the share of functions with a student-called clone
that get one of them proposed goes 76% (2), 80% (3), 81% (5), 82% (10), 84% (20) while the
pairs to score grow linearly: 3 is the knee, and keeps 9,133 functions to ~24k pairs."""
SEED = 1
_TOKEN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*|\d[\w.]*|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\S")
_KEYWORDS = frozenset("""
abstract assert boolean break byte case catch char class const continue default do double else enum
extends final finally float for goto if implements import instanceof int interface long native new
package private protected public return short static strictfp super switch synchronized this throw
throws transient try void volatile while var record yield true false null
auto extern register signed sizeof struct typedef union unsigned inline restrict NULL
""".split())
Progress = Callable[[int], None]


def tokens(code: str, abstract_names: bool = False) -> list[str]:
    """The code's lexical tokens (words, numbers, string and char literals, single symbols).

    ``abstract_names``: identifiers become ``ID`` and literals ``LIT`` (keywords stay), so a
    copy with every name changed shingles exactly like its original.
    """
    found = _TOKEN.findall(code)
    if not abstract_names:
        return found
    return [t if t in _KEYWORDS or not (t[0].isalnum() or t[0] in "_$\"'")
            else "LIT" if t[0].isdigit() or t[0] in "\"'" else "ID" for t in found]


def shingles(code: str, size: int = SHINGLE, abstract_names: bool = False) -> set[bytes]:
    """The set of ``size``-token windows of ``code`` (the whole token list when shorter)."""
    words = tokens(code, abstract_names)
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)}


def candidate_pairs(codes: Sequence[str], neighbours: int = NEIGHBOURS, shingle: int = SHINGLE,
                    num_perm: int = NUM_PERM, abstract_names: bool = False,
                    progress: Progress | None = None) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, sorted, where one is among the other's ``neighbours``
    most similar functions by MinHash-estimated Jaccard similarity of shingles.

    The forest is asked for twice as many as wanted and the answers re-ranked by the MinHash
    estimate, because its prefix-tree answers are only roughly ordered. Functions sharing no
    shingle with any other get no candidate. ``progress(done)`` is called as functions are
    queried.
    """
    from datasketch import MinHash, MinHashLSHForest

    if neighbours < 1:
        raise AvatarError(f"--neighbours must be at least 1, got {neighbours}")
    sets = [shingles(code, shingle, abstract_names) for code in codes]
    hashes = MinHash.bulk([list(s) for s in sets], num_perm=num_perm, seed=SEED)
    forest = MinHashLSHForest(num_perm=num_perm)
    for key, (minhash, found) in enumerate(zip(hashes, sets)):
        if found:
            forest.add(key, minhash)
    forest.index()
    signatures = np.stack([m.hashvalues for m in hashes]) if hashes else np.zeros((0, num_perm))
    pairs: set[tuple[int, int]] = set()
    for key, (minhash, found) in enumerate(zip(hashes, sets)):
        if found:
            others = [o for o in forest.query(minhash, 2 * neighbours + 1) if o != key]
            if others:
                similarity = (signatures[others] == signatures[key]).mean(axis=1)
                for rank in np.argsort(-similarity, kind="stable")[:neighbours]:
                    other = others[rank]
                    pairs.add((min(key, other), max(key, other)))
        if progress is not None:
            progress(key + 1)
    return sorted(pairs)


@dataclass(frozen=True)
class ClonePair:
    """Two functions and the student's probability that they are clones."""

    first: Function
    second: Function
    probability: float

    def record(self, column: str) -> dict[str, Any]:
        a, b = self.first, self.second
        return {"file1": a.path, "line1": a.start_line, "function1": a.name,
                "file2": b.path, "line2": b.start_line, "function2": b.name, column: self.probability}


def clone_column(labels: Sequence[str]) -> str:
    """The probability column: ``p_<clone label>`` for a two-label student (like ``avatar scan``'s
    csv columns), else ``p_not_<first label>``: the score is 1 - P(first label) either way."""
    return f"p_{labels[1]}" if len(labels) == 2 else f"p_not_{labels[0]}"


def score_pairs(predictor: Predictor, functions: Sequence[Function], pairs: Sequence[tuple[int, int]],
                batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
    """P(clone) = 1 - P(first label) of each pair, in the order of ``pairs``.

    Pairs are scored shortest first, across chunks, so a batch pads to a length its
    neighbours share; ``progress(done)`` after every chunk.
    """
    if batch_size < 1:
        raise AvatarError(f"--batch-size must be at least 1, got {batch_size}")
    lengths = [len(functions[i].code) + len(functions[j].code) for i, j in pairs]
    order = np.argsort(lengths, kind="stable")
    out = np.empty(len(pairs), dtype=np.float64)
    chunk = batch_size * BATCHES_PER_CHUNK
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        codes = [(functions[pairs[k][0]].code, functions[pairs[k][1]].code) for k in part]
        results = predictor.predict(codes, batch_size=batch_size)
        out[part] = [1.0 - r.probabilities[0] for r in results]
        if progress is not None:
            progress(min(start + chunk, len(order)))
    return out


def select(functions: Sequence[Function], pairs: Sequence[tuple[int, int]], probabilities: np.ndarray,
           threshold: float = 0.5, top: int | None = None) -> list[ClonePair]:
    """The pairs at or above ``threshold``, most probable first (ties in file order), at most ``top``."""
    check_options(threshold, top)
    keep = [k for k in range(len(pairs)) if probabilities[k] >= threshold]
    keep.sort(key=lambda k: (-probabilities[k], pairs[k]))
    if top is not None:
        keep = keep[:top]
    return [ClonePair(functions[pairs[k][0]], functions[pairs[k][1]], round(float(probabilities[k]), 6))
            for k in keep]


def check_options(threshold: float, top: int | None) -> None:
    """One line for a threshold or ``--top`` that cannot work, before any file is read."""
    if not 0.0 <= threshold <= 1.0:
        raise AvatarError(f"--threshold must be a probability between 0 and 1, got {threshold}")
    if top is not None and top < 1:
        raise AvatarError(f"--top must be at least 1, got {top}")


def write_pairs(rows: Iterable[ClonePair], fmt: str, output: str | os.PathLike[str] | None,
                column: str) -> int:
    """``rows`` as jsonl or csv to ``output`` (stdout for None); the number written."""
    if fmt not in FORMATS:
        raise AvatarError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    count = 0
    try:
        writer = csv.writer(handle, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(["file1", "line1", "function1", "file2", "line2", "function2", column])
        for row in rows:
            record = row.record(column)
            if writer is not None:
                writer.writerow(record.values())
            else:
                handle.write(json.dumps(record) + "\n")
            count += 1
        handle.flush()
    finally:
        if handle is not sys.stdout:
            handle.close()
    return count
