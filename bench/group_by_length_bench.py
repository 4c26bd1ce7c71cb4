"""Benchmark: training examples/s with random batches against batches grouped by length.

Why: a training batch pads to its longest example. On BigCloneBench a pair of functions
averages about 400 tokens, but a random batch of 16-64 pairs almost always holds one that
fills the student's ``max_sequence_length``, so every step pays for full-length sequences.
``distill.group_by_length`` sorts each window of 50 batches of the epoch's shuffled order by
length and shuffles the batches (``avatar.learn.resumable``). This bench times real training
steps of ``bench/fidelity.py``'s reference candidates on real unlabeled pairs, tokenised by
the candidate's own tokenizer, both ways side by side in one process and alternating, and
prints examples/s, the mean padded width and the ratio.

    AVATAR_DATA=../shared/data python bench/group_by_length_bench.py [--candidates context] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fidelity import CANDIDATES, paper_space  # noqa: E402

from avatar.core.memory import keep_freed_memory  # noqa: E402
from avatar.core.registry import TASKS  # noqa: E402
from avatar.distill.student import (  # noqa: E402
    EncodedSplit,
    build_tokenizer,
    default_cache_dir,
    random_weight_model,
)
from avatar.learn.losses import KLDivergence  # noqa: E402
from avatar.learn.resumable import resumable_loader  # noqa: E402
from avatar.plugins.meters.training import distillation_step  # noqa: E402
from avatar.search.space import Candidate  # noqa: E402


def throughput(candidate: Candidate, split: EncodedSplit, grouped: bool, steps: int,
               warmup: int = 5) -> tuple[float, float]:
    """(examples/s, mean padded width) of ``steps`` real training steps after ``warmup`` untimed ones."""
    batch = int(candidate["batch_size"])
    lengths = split.token_lengths() if grouped else None
    loader = resumable_loader(split, batch, seed=42, lengths=lengths, collate_fn=split.collate)
    loss_fn = KLDivergence(temperature=2.0)
    with random_weight_model(candidate, 2, seed=0, threads=torch.get_num_threads()) as model:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(candidate["learning_rate"]))
        batches = iter(loader)
        examples, widths, started = 0, [], 0.0
        for step in range(warmup + steps):
            if step == warmup:
                started, examples, widths = time.perf_counter(), 0, []
            data = next(batches)
            distillation_step(model, optimizer, loss_fn, data["input_ids"], data["attention_mask"],
                              data["targets"])
            examples += len(data["input_ids"])
            widths.append(data["input_ids"].shape[1])
        return examples / (time.perf_counter() - started), float(np.mean(widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", nargs="*", default=["context"], choices=sorted(CANDIDATES))
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per cell")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds of both orders")
    parser.add_argument("--examples", type=int, default=6400, help="unlabeled pairs drawn (seeded)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("AVATAR_DATA"):
        parser.error("set AVATAR_DATA to the real data root (bigclonebench/)")
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as training does
    task = TASKS.create("clone", data_dir=None)
    unlabeled = task.read_split("unlabel_train")
    count = min(args.examples, len(unlabeled))
    chosen = np.random.default_rng(0).choice(len(unlabeled), count, replace=False)
    texts = [unlabeled[i].text for i in chosen]
    teacher = torch.zeros(len(texts), task.num_labels)
    space = paper_space()
    print(f"{len(texts)} unlabeled BigCloneBench pairs, {args.steps} timed steps per cell, "
          f"{args.threads} thread(s)\n")
    print("| candidate | seq | batch | random ex/s | grouped ex/s | grouped / random "
          "| mean width random | grouped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.candidates:
        candidate = space.validate(CANDIDATES[name])
        tokenizer = build_tokenizer(candidate, task, default_cache_dir())  # the students' own, cached
        split = EncodedSplit(texts, teacher, tokenizer, int(candidate["max_sequence_length"]))
        split.encode_all()
        cells: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for grouped in (False, True):
                cells[grouped].append(throughput(candidate, split, grouped, args.steps))
        plain = np.median([c[0] for c in cells[False]])
        grouped_speed = np.median([c[0] for c in cells[True]])
        print(f"| {name} | {candidate['max_sequence_length']} | {candidate['batch_size']} | {plain:.1f} "
              f"| {grouped_speed:.1f} | {grouped_speed / plain:.2f}x | {cells[False][0][1]:.0f} "
              f"| {cells[True][0][1]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
