"""Benchmark: distil one fixed 3 MB student on real data within a CPU budget, print a table.

BigCloneBench uses the paper's own fine-tuned teachers (CodeBERT and GraphCodeBERT logits
on the unlabeled half, ``$AVATAR_DATA/bigclonebench/teacher_logits``) as soft labels.
Devign has no such file, so its stand-in teacher is the gold labels of the unlabeled half
used as hard labels (an oracle teacher: an upper bound on what teacher labels give).

The budget is set by flags: the first ``--train-examples`` unlabeled examples (row-aligned
with the logits), ``--max-steps`` optimiser steps, and a seeded sample of
``--eval-examples`` from each of valid and test. With the defaults each run takes a few
minutes on 2 idle cores (about 30 training examples/s; several times slower when the
cores are shared): far from the paper's full training, so read the numbers as a smoke
measure of the pipeline on real data, not as a reproduction of the paper's F1.

    AVATAR_DATA=/path/to/data python bench/distill_bench.py [--train-examples 4096] [--max-steps 256]
        [--eval-examples 400] [--teachers codebert graphcodebert] [--no-devign]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from avatar.cost import MB, size_bytes  # noqa: E402
from avatar.distill import DistillSettings, distill_candidate  # noqa: E402
from avatar.registry import TASKS  # noqa: E402
from avatar.smt import candidate_vars  # noqa: E402
from avatar.space import Candidate, Space  # noqa: E402
from avatar.task import Example, Split, Task  # noqa: E402
from avatar.teacher import Knowledge  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# A feasible 3 MB point of the paper's space (configs/space/avatar.yaml): 2.91 MiB of fp32.
CANDIDATE = {
    "tokenizer": "BPE",
    "vocab_size": 1000,
    "num_hidden_layers": 4,
    "hidden_size": 112,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.2,
    "intermediate_size": 448,
    "num_attention_heads": 4,
    "attention_probs_dropout_prob": 0.2,
    "max_sequence_length": 256,
    "position_embedding_type": "absolute",
    "learning_rate": 1e-3,
    "batch_size": 16,
}


class BudgetTask(Task):
    """A task with per-split budgets: the first ``train`` unlabeled examples (so teacher
    logits stay row-aligned) and a seeded sample of ``evaluate`` valid and test examples."""

    def __init__(self, base: Task, train: int, evaluate: int, seed: int = 0) -> None:
        super().__init__(data_dir=base.data_dir, limit=None, seed=seed)
        self.base = base
        self.name = base.name
        self.num_labels = base.num_labels
        self.is_pair = base.is_pair
        self.language = base.language
        self.headline_metric = base.headline_metric
        self.train = train
        self.evaluate = evaluate
        self._cache: dict[str, list[Example]] = {}

    def read_split(self, split: Split) -> list[Example]:
        if split not in self._cache:
            examples = self.base.read_split(split)
            if split == "unlabel_train":
                examples = examples[: self.train]
            elif split in ("valid", "test") and self.evaluate < len(examples):
                rng = random.Random(f"{self.seed}:{split}")
                keep = sorted(rng.sample(range(len(examples)), self.evaluate))
                examples = [examples[i] for i in keep]
            self._cache[split] = examples
        return list(self._cache[split])


def candidate() -> Candidate:
    space = Space.from_config(yaml.safe_load((REPO / "configs/space/avatar.yaml").read_text())["dimensions"])
    return space.validate(CANDIDATE)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(task: Task, knowledge: Knowledge, args: argparse.Namespace, out: Path, label: str) -> dict:
    settings = DistillSettings(
        max_steps=args.max_steps,
        max_epochs=-1,
        accelerator="cpu",
        temperature=args.temperature,
        patience=args.patience,
        progress_bar=False,
        limit_val_batches=None,
        seed=args.seed,
        trainer_extra={"enable_model_summary": False},
    )
    started = time.perf_counter()
    result = distill_candidate(candidate(), task, knowledge, settings, out / label, cache_dir=out / "cache")
    m = result.metrics
    return {
        "teacher": label,
        "task": task.name,
        "loss": "KL soft" if result.soft else "CE hard",
        "f1": m["test/f1"],
        "precision": m["test/precision"],
        "recall": m["test/recall"],
        "accuracy": m["test/accuracy"],
        "val_headline": result.headline,
        "steps": result.global_step,
        "ex_per_s": result.train_examples_per_second,
        "wall_s": time.perf_counter() - started,
        "peak_mb": peak_rss_mb(),
    }


def clone_runs(args: argparse.Namespace, out: Path) -> list[dict]:
    logits_dir = Path(os.environ.get("AVATAR_DATA", "")) / "bigclonebench" / "teacher_logits"
    rows = []
    for teacher in args.teachers:
        path = logits_dir / f"{teacher}_unlabel_train.npy"
        if not path.is_file():
            print(f"skip {teacher}: {path} not found", file=sys.stderr)
            continue
        base = TASKS.create("clone", data_dir=None)
        task = BudgetTask(base, args.train_examples, args.eval_examples, args.seed)
        logits = np.load(path)[: args.train_examples]
        knowledge = Knowledge("clone", teacher, task.fingerprint("unlabel_train"), logits=logits)
        rows.append(run(task, knowledge, args, out, f"bcb-{teacher}"))
        print(rows[-1], file=sys.stderr)
    return rows


def devign_run(args: argparse.Namespace, out: Path) -> list[dict]:
    task = BudgetTask(TASKS.create("vuln", data_dir=None), args.train_examples, args.eval_examples, args.seed)
    gold = np.array([e.label for e in task.read_split("unlabel_train")], dtype=np.int64)
    fingerprint = task.fingerprint("unlabel_train")
    knowledge = Knowledge("vuln", "gold (stand-in)", fingerprint, hard_labels=gold, gold=gold)
    row = run(task, knowledge, args, out, "devign-gold-stand-in")
    print(row, file=sys.stderr)
    return [row]


def table(rows: list[dict], args: argparse.Namespace) -> str:
    c = candidate()
    size = int(size_bytes(candidate_vars(c, 2))) / MB
    lines = [
        f"student: {size:.2f} MiB ({c}); train {args.train_examples} examples, max {args.max_steps} steps, "
        f"eval {args.eval_examples} valid + {args.eval_examples} test, {torch.get_num_threads()} threads",
        "",
        "| task | teacher | loss | test F1 | precision | recall | accuracy | val headline | steps "
        "| train ex/s | wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['teacher']} | {r['loss']} | {r['f1']:.4f} | {r['precision']:.4f} | "
            f"{r['recall']:.4f} | {r['accuracy']:.4f} | {r['val_headline']:.4f} | {r['steps']} | "
            f"{r['ex_per_s']:.1f} | {r['wall_s']:.0f} | {r['peak_mb']:.0f} |"
        )
    lines.append("")
    lines.append(
        "devign's teacher is the gold labels of the unlabeled half (no Devign teacher logits exist); "
        "peak RSS is the process's running maximum."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-examples", type=int, default=4096, help="first N unlabeled examples")
    parser.add_argument("--max-steps", type=int, default=256, help="default: one epoch of 4096 at batch 16")
    parser.add_argument("--eval-examples", type=int, default=400, help="sampled from valid and from test")
    parser.add_argument("--teachers", nargs="*", default=["codebert", "graphcodebert"])
    parser.add_argument("--no-devign", action="store_true", help="skip the Devign run")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="keep students here (default: a temp dir)")
    args = parser.parse_args(argv)
    if not os.environ.get("AVATAR_DATA"):
        parser.error("set AVATAR_DATA to the real data root (devign/, bigclonebench/)")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="distill_bench_") as tmp:
        out = args.out or Path(tmp)
        rows = clone_runs(args, out)
        if not args.no_devign:
            rows += devign_run(args, out)
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
