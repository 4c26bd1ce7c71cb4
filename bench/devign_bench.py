"""Benchmark: a ~3 MB student against a teacher trained here, on real Devign. Prints a table.

The paper's teachers for vulnerability prediction are CodeBERT/GraphCodeBERT fine-tuned on
Devign; no such checkpoint can be downloaded here, and fine-tuning one takes days on a
CPU. So the teacher is trained here (``teacher=scratch`` by default, or any local Hugging
Face folder through ``teacher=huggingface teacher.model=<dir>``), and the question is the
one users ask of the recipe: how much of *its* teacher's accuracy does a 3 MB student keep?

It runs the three ``train.py`` stages a user would, each in its own process, in one run
directory (``--out``):

1. ``stage=teacher task=vuln``: fine-tune the teacher on the labeled half and write its
   knowledge (logits) over the unlabeled half (cached under ``AVATAR_CACHE``);
2. ``stage=distill``: distil the ``compact`` reference candidate of ``bench/fidelity.py``
   (2.91 MiB; ``--set key=value`` changes a dimension) on those logits for ``--minutes``
   of wall clock (Lightning ``max_time``; the learning-rate schedule spans it), with the
   task's temperature (vuln: 10);
3. ``stage=report``: the teacher and the student on the whole test split (2,732
   functions), side by side.

Then prints test accuracy, F1, flips on the renamed test copy, size and latency of both, and
the student's gap.

    AVATAR_DATA=/path/to/data python bench/devign_bench.py --minutes 30 [--teacher-epochs 4] \\
        [--out outputs/devign] [any train.py override, e.g. teacher.hidden_size=128]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fidelity import CANDIDATES, candidate  # noqa: E402


def train(stage: str, out: Path, overrides: list[str]) -> float:
    """One ``train.py`` stage in ``out``; its wall seconds (a failed stage ends the benchmark)."""
    command = [sys.executable, str(REPO / "train.py"), f"stage={stage}", f"hydra.run.dir={out}", *overrides]
    print("$", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="the student's wall-clock budget")
    parser.add_argument("--teacher", default="scratch", help="teacher plugin (scratch or huggingface)")
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), default="compact")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a dimension")
    parser.add_argument("--val-every", type=int, default=200, help="validate every N steps")
    parser.add_argument("--out", type=Path, default=Path("outputs/devign"))
    args, extra = parser.parse_known_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    out = args.out.resolve()
    common = ["task=vuln", f"teacher={args.teacher}", f"teacher.trainer.max_epochs={args.teacher_epochs}",
              "logger=none", *extra]
    minutes = int(args.minutes)
    budget = f"00:{minutes // 60:02d}:{minutes % 60:02d}:{round((args.minutes - minutes) * 60):02d}"
    student = json.dumps(candidate(args).as_dict()).replace('"', "")
    seconds = {"teacher": train("teacher", out, common)}
    seconds["distill"] = train("distill", out, [
        *common, f"candidate={student}", "trainer.max_epochs=-1", f"trainer.max_time={budget}",
        f"trainer.val_check_interval={args.val_every}", "trainer.check_val_every_n_epoch=null",
        "distill.patience=1000",
    ])
    teacher_dir = json.loads((out / "teacher.json").read_text()).get("model_dir")
    if not teacher_dir:
        raise SystemExit(f"{out / 'teacher.json'} names no teacher folder to report on")
    seconds["report"] = train("report", out, [
        *common, f"report.teacher={teacher_dir}", "report.examples=100000", "report.export=false",
    ])
    with open(out / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    teacher = next(r for r in rows if r["kind"] == "teacher")
    print(f"\nDevign test split, {teacher['n_examples']} functions; teacher={args.teacher} "
          f"({args.teacher_epochs} epochs), student {args.candidate!r} {' '.join(args.set)} "
          f"for {args.minutes:g} min")
    print("| model | size MB | test accuracy | test F1 | flips (renamed copy) | latency ms | collapsed "
          "| gap (points) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        accuracy = float(row.get("metric_accuracy") or row["metric"])
        gap = (float(teacher.get("metric_accuracy") or teacher["metric"]) - accuracy) * 100
        f1 = float(row.get("metric_f1") or 0)
        flips = f"{row['flips']} of {row['flip_examples']}" if row.get("flips") else "n/a"
        print(f"| {row['name']} | {float(row['size_mb']):.2f} | {accuracy:.4f} | {f1:.4f} | {flips} "
              f"| {float(row['latency_ms']):.1f} | {row['collapsed']} | {gap:.1f} |")
    print("\nwall s: " + ", ".join(f"{stage} {value:.0f}" for stage, value in seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
