"""Coverage of a code transform on the real data: how often it makes a copy, finds nothing
to do, or gives up. Prints one table row per data set.

Why: a metamorphic copy is only useful if the transform applies to (nearly) every
function; a transform that silently skips the hard ones would bias any robustness number
measured with it. Target for ``rename``: at most 1% skipped on both data sets.

* BigCloneBench (Java): all 9,133 functions of ``bigclonebench/data.jsonl``; new names
  are mined from the functions of the training pairs (``train_sampled.txt``).
* Devign (C): train + valid + test (27,318 functions); names mined from ``train.jsonl.gz``.

    python bench/transform_coverage.py [--data DIR] [--transform rename] [--seed 0]
        [--limit N] [--pool 5000] [--reasons 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avatar.code.rename import mine_identifiers  # noqa: E402
from avatar.code.transform import TransformStats, create_transform, transform_all  # noqa: E402


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def bigclonebench(data: Path) -> tuple[list[str], list[str], list[object]]:
    """(all functions, training functions, keys): training = functions of the training pairs."""
    records = read_jsonl(data / "bigclonebench" / "data.jsonl")
    train_ids: set[str] = set()
    with open(data / "bigclonebench" / "train_sampled.txt", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            train_ids.update(parts[:2])
    codes = [r["func"] for r in records]
    train = [r["func"] for r in records if str(r["idx"]) in train_ids]
    return codes, train, [r["idx"] for r in records]


def devign(data: Path) -> tuple[list[str], list[str], list[object]]:
    folder = data / "devign"
    train = read_jsonl(folder / "train.jsonl.gz")
    records = train + read_jsonl(folder / "valid.jsonl") + read_jsonl(folder / "test.jsonl")
    return [r["func"] for r in records], [r["func"] for r in train], [r["idx"] for r in records]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("AVATAR_DATA") or str(REPO.parent / "shared" / "data"),
        help="data root holding bigclonebench/ and devign/ (default: $AVATAR_DATA or ../shared/data)",
    )
    parser.add_argument("--transform", default="rename", help="registered transform name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N functions of each set")
    parser.add_argument("--pool", type=int, default=5000, help="how many mined names to draw from")
    parser.add_argument("--reasons", type=int, default=5, help="how many skip reasons to list per set")
    args = parser.parse_args(argv)
    data = Path(args.data)

    rows: list[tuple[str, str, TransformStats]] = []
    for label, language, load in (("BigCloneBench", "java", bigclonebench), ("Devign", "c", devign)):
        codes, train, keys = load(data)
        if args.limit is not None:
            codes, keys = codes[: args.limit], keys[: args.limit]
        started = time.perf_counter()
        names = mine_identifiers(train, language, limit=args.pool)
        print(
            f"{label}: mined {len(names)} names from {len(train)} training functions "
            f"in {time.perf_counter() - started:.1f} s (most frequent: {', '.join(names[:8])})",
            flush=True,
        )
        transform = create_transform(args.transform, language, names)
        _, stats = transform_all(transform, codes, seed=args.seed, keys=keys)
        rows.append((label, language, stats))
        for reason, count in stats.reasons.most_common(args.reasons):
            print(f"  skipped {count:>5}: {reason}")

    header = f"{'data set':<14} {'lang':<5} {'functions':>9} {'changed':>8} {'unchanged':>9} "
    header += f"{'skipped':>7} {'skip %':>6} {'functions/s':>11}"
    print()
    print(f"transform: {args.transform}, seed {args.seed}")
    print(header)
    print("-" * len(header))
    for label, language, stats in rows:
        print(
            f"{label:<14} {language:<5} {stats.total:>9,} {stats.changed:>8,} {stats.unchanged:>9,} "
            f"{stats.skipped:>7,} {100 * stats.skip_rate:>6.2f} {stats.per_second:>11,.0f}"
        )
    return 0 if all(stats.skip_rate <= 0.01 for _, _, stats in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
