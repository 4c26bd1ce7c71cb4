"""Benchmark: how close a ~3 MB student gets to the paper's teachers on real BigCloneBench.

Distils fixed reference candidates on the real unlabeled half with the paper's own
fine-tuned teachers (``--teachers codebert graphcodebert``: their logits in
``$AVATAR_DATA/bigclonebench/teacher_logits``) under a budget: a wall-clock one
(``--minutes``, Lightning's ``max_time``; the learning-rate schedule spans it), epochs
(``--epochs``, the paper's 10 on a GPU) or steps (``--max-steps``, for ablations at equal
examples). Prints one table row per run: test accuracy and F1 on the whole test file
(4,000 pairs), agreement with the teacher on held-out unlabeled pairs the student never
trained on (``distill.holdout``), training examples/s, wall time and peak memory; writes
a learning curve (validation accuracy against examples seen) to
``<out>/learning_curve.png`` and every run's numbers to ``<out>/fidelity.jsonl``.

Reference candidates (``--candidate``), points of the paper's space of at most 3 MB:

* ``context`` (default): BPE 5000, 2 layers, hidden 64, FFN 256, 1 head, sequence 512,
  batch 32, lr 1e-3 (1.74 MiB). Each function of a pair keeps 256 tokens instead of 128
  (at BPE 1000 only 17% of BigCloneBench's functions fit in 128, 45% in 256; BPE 5000's
  tokens cover more code per token), and one head keeps attention at sequence 512 cheap
  on a CPU (3x the training throughput of 4 heads). In 20 minutes on one core it reached
  0.8385 test accuracy where ``compact`` reached 0.7875 (README, "Distillation recipe").
* ``compact``: BPE 1000, 4 layers, hidden 112, FFN 448, 4 heads, sequence 256,
  batch 32, lr 1e-3 (2.91 MiB). It spends its 3 MB on width and depth rather than a
  2048-wide FFN, sequence 256 trains about 3x faster than 512 on a CPU (so it sees more
  pairs in a fixed time), and batch 32 at lr 1e-3 under the warm-up + decay schedule was
  the best arm of the equal-budget ablation (README, "Distillation recipe").
* ``paper``: BPE 2000, 3 layers, hidden 48, FFN 2048, 4 heads, sequence 384, batch 16,
  lr 1e-4: the shape of the paper's published 3 MB BigCloneBench students (what a user
  first tries).

``--set key=value`` changes one dimension of the candidate (checked against the space);
``--temperature``, ``--schedule``, ``--warmup-ratio``, ``--precision`` change the recipe.

    AVATAR_DATA=/path/to/data python bench/fidelity.py --minutes 60 --threads 2
    python bench/fidelity.py --epochs 10 --accelerator gpu      # the paper's budget on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from avatar.core.registry import TASKS  # noqa: E402
from avatar.distill.folder import HOLDOUT_AGREEMENT  # noqa: E402
from avatar.distill.settings import DistillSettings  # noqa: E402
from avatar.distill.train import distill_candidate  # noqa: E402
from avatar.search.space import Candidate, Space  # noqa: E402
from avatar.task.base import Example, Split, Task  # noqa: E402
from avatar.teach.teacher import Knowledge  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CANDIDATES: dict[str, dict[str, object]] = {
    "context": {
        "tokenizer": "BPE",
        "vocab_size": 5000,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.2,
        "intermediate_size": 256,
        "num_attention_heads": 1,
        "attention_probs_dropout_prob": 0.2,
        "max_sequence_length": 512,
        "position_embedding_type": "absolute",
        "learning_rate": 1e-3,
        "batch_size": 32,
    },
    "compact": {
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
        "batch_size": 32,
    },
    "paper": {
        "tokenizer": "BPE",
        "vocab_size": 2000,
        "num_hidden_layers": 3,
        "hidden_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.2,
        "intermediate_size": 2048,
        "num_attention_heads": 4,
        "attention_probs_dropout_prob": 0.2,
        "max_sequence_length": 384,
        "position_embedding_type": "absolute",
        "learning_rate": 1e-4,
        "batch_size": 16,
    },
}


class SampledValidTask(Task):
    """The clone task with a seeded sample of ``valid_examples`` validation pairs (the
    learning curve's points); the other splits stay whole."""

    def __init__(self, base: Task, valid_examples: int | None, seed: int) -> None:
        super().__init__(data_dir=base.data_dir, limit=None, seed=seed)
        self.base = base
        for name in ("name", "num_labels", "is_pair", "language", "headline_metric", "temperature"):
            setattr(self, name, getattr(base, name))
        self.valid_examples = valid_examples
        self._cache: dict[str, list[Example]] = {}

    def read_split(self, split: Split) -> list[Example]:
        if split not in self._cache:
            examples = self.base.read_split(split)
            if split == "valid" and self.valid_examples and self.valid_examples < len(examples):
                order = np.random.default_rng(self.seed).permutation(len(examples))
                keep = np.sort(order[: self.valid_examples])
                examples = [examples[i] for i in keep]
            self._cache[split] = examples
        return list(self._cache[split])


def _number(text: str) -> int | float | str:
    """``--set`` values: ints, floats (``1e-4``, which YAML 1.1 reads as a string) or names."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def paper_space() -> Space:
    """The paper's 13-dimension space (``configs/space/avatar.yaml``): the candidates' home."""
    return Space.from_config(yaml.safe_load((REPO / "configs/space/avatar.yaml").read_text())["dimensions"])


def candidate(args: argparse.Namespace) -> Candidate:
    space = paper_space()
    config = dict(CANDIDATES[args.candidate])
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = _number(value)
    return space.validate(config)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def learning_curve(out: Path, batch_size: int) -> list[tuple[int, float]]:
    """(examples seen, validation accuracy) from the run's CSV log."""
    points: list[tuple[int, float]] = []
    for path in sorted(out.glob("logs/version_*/metrics.csv")):
        import csv

        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/accuracy"):
                    points.append((int(row["step"]) * batch_size, float(row["val/accuracy"])))
    return sorted(set(points))


def run(teacher: str, args: argparse.Namespace, out: Path) -> dict:
    logits_dir = Path(os.environ["AVATAR_DATA"]) / "bigclonebench" / "teacher_logits"
    path = logits_dir / f"{teacher}_unlabel_train.npy"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set AVATAR_DATA to the real data root")
    base = TASKS.create("clone", data_dir=None)
    task = SampledValidTask(base, args.valid_examples, args.seed)
    knowledge = Knowledge("clone", teacher, task.fingerprint("unlabel_train"), logits=np.load(path))
    cand = candidate(args)
    trainer: dict[str, object] = {
        "max_epochs": args.epochs or -1,
        "max_steps": args.max_steps or -1,
        "max_time": {"minutes": args.minutes} if args.minutes else None,
        "accelerator": args.accelerator,
        "precision": args.precision,
        "val_check_interval": args.val_every,
        "check_val_every_n_epoch": None,
    }
    settings = DistillSettings(
        temperature=args.temperature,
        schedule=args.schedule,
        warmup_ratio=args.warmup_ratio,
        patience=args.patience,
        progress_bar=False,
        seed=args.seed,
        holdout=args.agreement_examples,  # never trained on: the agreement with the teacher
        loss=args.loss,
        augment=args.augment,
        augment_copies=args.augment_copies,
        flips="rename",  # robustness: flips on the metamorphic (renamed) copy of the test split
        **({} if args.group_by_length is None else {"group_by_length": args.group_by_length}),
        canonical_names=args.canonical_names,
    )
    label = f"{teacher}-{args.name or args.candidate}"
    started = time.perf_counter()
    result = distill_candidate(
        cand, task, knowledge, settings, out / label, trainer=trainer, cache_dir=args.cache
    )
    wall = time.perf_counter() - started
    m = result.metrics
    row = {
        "run": label,
        "teacher": teacher,
        "candidate": cand.as_dict(),
        "size_mb": result.size_mb,
        "accuracy": m["test/accuracy"],
        "f1": m["test/f1"],
        "agreement": m[HOLDOUT_AGREEMENT],
        "flips": m.get("test/flips"),
        "flip_examples": m.get("test/flip_examples"),
        "val_accuracy": m.get("val/accuracy"),
        "collapsed": result.collapsed,
        "steps": result.global_step,
        "examples": result.global_step * int(cand["batch_size"]),
        "ex_per_s": result.train_examples_per_second,
        "wall_s": wall,
        "train_energy_kwh": result.train_energy_kwh,
        "peak_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "recipe": {
            "temperature": args.temperature,
            "schedule": args.schedule,
            "warmup_ratio": args.warmup_ratio,
            "precision": args.precision,
            "minutes": args.minutes,
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "loss": args.loss,
            "augment": args.augment,
            "augment_copies": args.augment_copies,
            "group_by_length": settings.group_by_length,
            "canonical_names": settings.canonical_names,
        },
        "curve": learning_curve(out / label, int(cand["batch_size"])),
    }
    with open(out / "fidelity.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), file=sys.stderr, flush=True)
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if row["curve"]:
            x, y = zip(*row["curve"])
            ax.plot(x, y, marker=".", label=f"{row['run']} (test {row['accuracy']:.3f})")
    ax.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("training examples seen")
    ax.set_ylabel("validation accuracy")
    ax.set_title("3 MB students on BigCloneBench")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    lines = [
        "| run | size MiB | test acc | test F1 | teacher agreement | flips | collapsed | steps | examples "
        "| train ex/s | wall min | peak RSS MB | threads |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        flips = r.get("flips") if r.get("flips") is not None else "n/a"
        lines.append(
            f"| {r['run']} | {r['size_mb']:.2f} | {r['accuracy']:.4f} | {r['f1']:.4f} | {r['agreement']:.4f} "
            f"| {flips} | {'yes' if r['collapsed'] else 'no'} "
            f"| {r['steps']} | {r['examples']} | {r['ex_per_s']:.1f} "
            f"| {r['wall_s'] / 60:.1f} | {r['peak_mb']:.0f} | {r['threads']} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line (``bench/robustness.py`` builds its arms' runs with it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", nargs="*", default=["codebert", "graphcodebert"])
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), default="context")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a dimension")
    parser.add_argument("--name", default=None, help="run label (default: the candidate's name)")
    budget = parser.add_argument_group("budget (combine freely: the first reached ends training)")
    budget.add_argument("--minutes", type=float, default=None, help="wall-clock budget (Lightning max_time)")
    budget.add_argument("--epochs", type=int, default=None)
    budget.add_argument("--max-steps", type=int, default=None)
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--temperature", type=float, default=None, help="default: the task's (clone: 2.0)")
    recipe.add_argument("--schedule", choices=["linear", "constant"], default="linear")
    recipe.add_argument("--warmup-ratio", type=float, default=0.1)
    recipe.add_argument("--precision", default="32-true", help="e.g. bf16-mixed on CPUs with avx512_bf16")
    recipe.add_argument("--loss", default="auto", help="a losses registry name: kl, kl_cosine, hard")
    recipe.add_argument("--augment", default=None, help="a transform (rename): also train on its copies")
    recipe.add_argument("--augment-copies", type=int, default=1, help="copies of the unlabeled split")
    recipe.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=None,
                        help="training batches of similar lengths (default: distill.group_by_length's)")
    recipe.add_argument("--canonical-names", action="store_true",
                        help="the student reads every function with canonical names (fa, va, vb ...)")
    recipe.add_argument("--patience", type=int, default=1000, help="validation rounds without gain")
    parser.add_argument("--val-every", type=int, default=400, help="validate every N steps")
    parser.add_argument("--valid-examples", type=int, default=1000, help="validation sample per check")
    parser.add_argument("--agreement-examples", type=int, default=1000, help="unlabeled pairs held out")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("outputs/fidelity"))
    parser.add_argument("--cache", type=Path, default=None, help="Avatar cache (default: AVATAR_CACHE)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.environ.get("AVATAR_DATA"):
        parser.error("set AVATAR_DATA to the real data root (bigclonebench/)")
    if not (args.minutes or args.epochs or args.max_steps):
        parser.error("give a budget: --minutes, --epochs or --max-steps")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [run(teacher, args, args.out) for teacher in args.teachers]
    # every run recorded in this folder (other processes' too: teachers may run side by side)
    recorded = [json.loads(line) for line in (args.out / "fidelity.jsonl").read_text().splitlines() if line]
    plot(recorded, args.out / "learning_curve.png")
    print(table(rows))
    print(f"\nlearning curve: {args.out / 'learning_curve.png'}; rows: {args.out / 'fidelity.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
