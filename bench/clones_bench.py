"""``avatar clones`` on BigCloneBench: how long the whole code base takes, and what the candidate
step misses against scoring every pair.

Why both: the candidate step exists so that a code base's n(n-1)/2 pairs need not all reach
the student, and it is only worth that if the pairs it leaves out are seldom ones the student
would have called clones.

1. ``--sample`` functions (default 300, seeded) of ``$AVATAR_DATA/bigclonebench/data.jsonl``:
   every one of their n(n-1)/2 pairs is scored by the student (the exhaustive reference; cached
   in ``--scores`` so a re-run only re-tunes), then the candidate step runs under each setting
   of the grid. Per setting: candidates (and their share of all pairs), recall of the pairs
   the student calls clones (p >= 0.5, and p >= 0.9; a random choice of as many pairs would
   recall its share of all pairs), and the share of functions with a student clone that get
   at least one of their clones proposed.
2. All 9,133 functions, one Java file each (``class F<idx> { ... }``) in a temporary folder,
   through the real command (``python -m avatar clones``, a subprocess, default options):
   wall time, functions, candidate pairs, scored pairs/s, as the command's summary line says.

    AVATAR_DATA=/path/to/data taskset -c 0 python bench/clones_bench.py --sample 300 \\
        [--student DIR] [--scores /tmp/clones_scores.npy] [--no-full]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avatar.code.functions import Function  # noqa: E402
from avatar.core.text import normalize_code  # noqa: E402
from avatar.report.clones import (  # noqa: E402
    NEIGHBOURS,
    NUM_PERM,
    SHINGLE,
    candidate_pairs,
    score_pairs,
)
from avatar.report.predict import Predictor  # noqa: E402

STUDENT = Path.home() / ".cache/avatar/bench/robustness/codebert-context-baseline/student"
GRID = [  # (neighbours, shingle, num_perm, abstract_names)
    *[(k, SHINGLE, NUM_PERM, False) for k in (2, 3, 5, 10, 20)],
    *[(NEIGHBOURS, s, NUM_PERM, False) for s in (1, 2, 5)],
    (NEIGHBOURS, SHINGLE, NUM_PERM, True),
    *[(NEIGHBOURS, SHINGLE, p, False) for p in (64, 256)],
]


def load(data: Path) -> list[dict[str, str]]:
    path = data / "bigclonebench" / "data.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set AVATAR_DATA (or --data) to the folder of bigclonebench/")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def all_pairs(n: int) -> list[tuple[int, int]]:
    """Every pair (i < j), by j then i: once column j is scored, the first j + 1 functions are a
    complete smaller sample (what a partial ``--scores`` cache can already be tuned on)."""
    return [(i, j) for j in range(n) for i in range(j)]


def exhaustive(predictor: Predictor, codes: list[str], cache: Path | None,
               minutes: float | None = None) -> tuple[np.ndarray, float]:
    """P(clone) of every pair of ``all_pairs`` and the pairs/s of the scoring (nan when all cached).

    The cache holds nan for pairs not scored yet and is saved after every column: an
    interrupted run resumes where it stopped.
    """
    pairs = all_pairs(len(codes))
    scores = np.full(len(pairs), np.nan)
    if cache is not None and cache.is_file():
        cached = np.load(cache)
        if len(cached) == len(pairs):
            scores = cached
    functions = [Function("", 1, 1, "", code) for code in codes]
    started, scored = time.perf_counter(), 0
    for j in range(1, len(codes)):
        if minutes is not None and time.perf_counter() - started > 60 * minutes:
            break
        column = slice(j * (j - 1) // 2, j * (j + 1) // 2)
        if np.isnan(scores[column]).any():
            scores[column] = score_pairs(predictor, functions, pairs[column], batch_size=32)
            scored += j
            if cache is not None:
                np.save(cache, scores)
    rate = scored / (time.perf_counter() - started) if scored else float("nan")
    return scores, rate


def embed_functions(student_dir: Path, codes: list[str], batch_size: int = 32) -> np.ndarray:
    """Each function alone through the student's encoder: the mean of its last hidden states over
    the tokens, scaled to unit length (rows in ``codes`` order).

    The alternative candidate step this bench measures beside MinHash: a pair student never saw
    one function alone, but its encoder has learnt what makes two functions alike. Measured on
    the 300-function sample: no better than MinHash (76% of the functions with a clone covered
    at K = 3 against 77.6%), so ``avatar clones`` keeps MinHash, which needs no model.
    """
    import torch

    from avatar.distill.folder import load_classifier, read_student_meta
    from avatar.report.predict import _load_tokenizer

    folder = Path(student_dir)
    meta = read_student_meta(folder)
    tokenizer = _load_tokenizer(folder, meta)
    model = load_classifier(folder, attn_implementation="eager").eval()
    encoder = model.base_model
    order = np.argsort([len(code) for code in codes], kind="stable")
    out = np.zeros((len(codes), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            encodings = tokenizer.encode_batch([normalize_code(codes[i]) for i in rows])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def embedding_pairs(vectors: np.ndarray, neighbours: int = NEIGHBOURS,
                    chunk: int = 1024) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, sorted, where one is among the other's ``neighbours``
    nearest functions by cosine similarity of ``embed_functions`` vectors (exact: a matrix
    product in row chunks, 9,133 functions in seconds)."""
    if neighbours < 1:
        raise ValueError(f"neighbours must be at least 1, got {neighbours}")
    n = len(vectors)
    k = min(neighbours, n - 1)
    pairs: set[tuple[int, int]] = set()
    if k < 1:
        return []
    for start in range(0, n, chunk):
        similarity = vectors[start:start + chunk] @ vectors.T
        rows = np.arange(start, min(start + chunk, n))
        similarity[rows - start, rows] = -np.inf  # not its own neighbour
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        for row, others in zip(rows, nearest):
            pairs.update((min(row, int(o)), max(row, int(o))) for o in others)
    return sorted(pairs)


def complete_prefix(scores: np.ndarray, n: int) -> int:
    """How many of the first functions have all their pairs scored (all n without a gap)."""
    m = 1
    while m < n and not np.isnan(scores[m * (m - 1) // 2:m * (m + 1) // 2]).any():
        m += 1
    return m


def recall_rows(codes: list[str], scores: np.ndarray, student: Path) -> list[str]:
    n = complete_prefix(scores, len(codes))
    codes, scores = codes[:n], scores[:n * (n - 1) // 2]
    total = n * (n - 1) // 2
    index = {pair: k for k, pair in enumerate(all_pairs(n))}
    positive = scores >= 0.5
    sure = scores >= 0.9
    with_clone = {i for k, (i, j) in enumerate(index) if positive[k] for i in (i, j)}
    rows = [f"Student on all {total:,} pairs of {n} functions: {int(positive.sum()):,} clones at p >= 0.5, "
            f"{int(sure.sum()):,} at p >= 0.9; {len(with_clone)} of {n} functions have a clone.", "",
            "| candidates by | neighbours | shingle | num_perm | names | candidates | of all pairs "
            "| recall p>=0.5 | recall p>=0.9 | functions covered | seconds |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def row(method: str, settings: str, found: list[tuple[int, int]], seconds: float) -> str:
        chosen = np.zeros(total, dtype=bool)
        chosen[[index[p] for p in found]] = True
        covered = {i for k, (i, j) in enumerate(index) if chosen[k] and positive[k] for i in (i, j)}
        return (f"| {method} | {settings} | {len(found):,} | {len(found) / total:.1%} "
                f"| {(chosen & positive).sum() / max(positive.sum(), 1):.1%} "
                f"| {(chosen & sure).sum() / max(sure.sum(), 1):.1%} "
                f"| {len(covered) / max(len(with_clone), 1):.1%} | {seconds:.2f} |")

    for neighbours, shingle, num_perm, abstract in GRID:
        started = time.perf_counter()
        found = candidate_pairs(codes, neighbours, shingle, num_perm, abstract)
        default = (neighbours, shingle, num_perm, abstract) == (NEIGHBOURS, SHINGLE, NUM_PERM, False)
        settings = (f"{neighbours}{' (default)' if default else ''} | {shingle} | {num_perm} "
                    f"| {'ID/LIT' if abstract else 'kept'}")
        rows.append(row("MinHash", settings, found, time.perf_counter() - started))
    started = time.perf_counter()
    vectors = embed_functions(student, codes)
    embedding_seconds = time.perf_counter() - started
    for neighbours in (2, 3, 5, 10, 20):
        started = time.perf_counter()
        found = embedding_pairs(vectors, neighbours)
        rows.append(row("student embedding", f"{neighbours} | - | - | -", found,
                        embedding_seconds + time.perf_counter() - started))
    return rows


def full_run(records: list[dict[str, str]], student: Path) -> list[str]:
    """The real command on every function, each in its own Java file; its summary line parsed."""
    with tempfile.TemporaryDirectory(prefix="bcb-clones-") as folder:
        root = Path(folder) / "code"
        root.mkdir()
        for record in records:
            (root / f"F{record['idx']}.java").write_text(f"class F{record['idx']} {{\n{record['func']}\n}}\n",
                                                         encoding="utf-8")
        output = Path(folder) / "clones.jsonl"
        command = [sys.executable, "-m", "avatar", "clones", str(student), str(root), "-o", str(output)]
        started = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime  # a shared core: wall > CPU
        if done.returncode != 0:
            raise SystemExit(f"avatar clones failed ({done.returncode}): {done.stderr[-2000:]}")
        summary = [line for line in done.stderr.splitlines() if line.startswith("scored ")][-1]
        rows = sum(1 for _ in output.open(encoding="utf-8"))
    return ["", f"`avatar clones STUDENT bcb/` (default options) on {len(records):,} BigCloneBench "
                f"functions, one core:", "",
            "| wall s (incl. loading) | CPU s | summary line | rows (p >= 0.5) |",
            "| ---: | ---: | --- | ---: |",
            f"| {wall:.0f} | {cpu_s:.0f} | {summary} | {rows:,} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("AVATAR_DATA"), help="data root ($AVATAR_DATA)")
    parser.add_argument("--student", default=str(STUDENT), help="a BigCloneBench pair student")
    parser.add_argument("--sample", type=int, default=300, help="functions scored exhaustively")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scores", default=None, help="cache of the exhaustive scores (.npy)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop the exhaustive scoring after this long and measure on the functions whose "
                             "pairs are all scored (the cache resumes it)")
    parser.add_argument("--no-full", action="store_true", help="skip the whole-code-base run")
    args = parser.parse_args()
    if not args.data:
        parser.error("set AVATAR_DATA or --data to the folder holding bigclonebench/")
    import torch

    torch.set_num_threads(1)
    records = load(Path(args.data))
    sample = [records[i]["func"] for i in random.Random(args.seed).sample(range(len(records)), args.sample)]
    cache = Path(args.scores) if args.scores else None
    scores, rate = exhaustive(Predictor.load(args.student), sample, cache, args.minutes)
    print(f"## Candidate step against exhaustive scoring ({complete_prefix(scores, len(sample))} of "
          f"{args.sample} sampled functions, seed {args.seed}; "
          f"exhaustive scoring {rate:.0f} pairs/s)\n")
    print("\n".join(recall_rows(sample, scores, Path(args.student))))
    if not args.no_full:
        print("\n".join(full_run(records, Path(args.student))))


if __name__ == "__main__":
    main()
