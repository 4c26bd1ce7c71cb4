"""Benchmark: robust students on real BigCloneBench, at equal wall-clock time per arm.

Why: a student that changes its answer when a variable is renamed is not trusted, however
accurate. Each arm distils the same reference student (``bench/fidelity.py``'s
``context`` by default) for the same ``--minutes`` with the paper's teacher logits, and
differs in one thing only:

* ``baseline``: KL on the original unlabeled pairs (today's recipe);
* ``augment``: plus ``--copies`` metamorphic copies of every pair (``distill.augment=rename``:
  the functions' names, parameters and locals renamed with names mined from the task's own
  code), each with the original's logits as its target (the transformation keeps the
  meaning, and a predictions-file teacher cannot be asked about the copy);
* ``kl_cosine``: MORPH's loss (KL plus a cosine term) on the original pairs;
* ``augment_kl_cosine``: both;
* ``canonical``: the student reads every function with canonical names (``fa``, ``va``, ``vb`` ...;
  ``distill.canonical_names``), in training and in its test, so a renamed copy reads as the
  original: robust by construction, at the price of what the names said.

Every arm reports test accuracy and F1 on all 4,000 test pairs, agreement with the teacher
on 1,000 held-out unlabeled pairs, training examples/s, and its **flips**: the test pairs
whose predicted label changes on the metamorphic (renamed) copy of the test split, the
same copy for every arm. Rows go to ``<out>/fidelity.jsonl`` (with every other fidelity
run there); an arm already recorded there at the same minutes and threads is not trained
again (``--rerun`` does), so the bench resumes across sittings; ``--parallel 2`` runs two
arms at once as Ray tasks (``--threads`` each).

    AVATAR_DATA=../shared/data python bench/robustness.py --minutes 60 --threads 2
    python bench/robustness.py --minutes 30 --threads 1 --parallel 2 --arms baseline augment
    python bench/robustness.py --minutes 60 --threads 1 --parallel 2 --group-by-length   # the arms, grouped
    python bench/robustness.py --table      # every arm run so far, from <out>/fidelity.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import fidelity  # noqa: E402

ARMS: dict[str, list[str]] = {
    "baseline": [],
    "augment": ["--augment", "rename"],
    "kl_cosine": ["--loss", "kl_cosine"],
    "augment_kl_cosine": ["--augment", "rename", "--loss", "kl_cosine"],
    "canonical": ["--canonical-names"],
}


def arm_argv(arm: str, args: argparse.Namespace, teacher: str) -> list[str]:
    extra = list(ARMS[arm])
    if "--augment" in extra:
        extra += ["--augment-copies", str(args.copies)]
    name = f"{args.candidate}-{arm}"
    if args.group_by_length is not None:
        extra.append("--group-by-length" if args.group_by_length else "--no-group-by-length")
        name += "-grouped" if args.group_by_length else ""
    return [
        "--teachers", teacher, "--candidate", args.candidate, "--minutes", str(args.minutes),
        "--threads", str(args.threads), "--name", name, "--out", str(args.out),
        "--seed", str(args.seed), *extra,
    ]


def arm_of(row: dict) -> str:
    """The arm's name in a row's run label (``<teacher>-<candidate>-<arm>[-grouped]``)."""
    return row["run"].split("-", 2)[-1]


def run_arm(argv: list[str]) -> dict:
    """One arm through fidelity.py's own runner (in this process, or in a Ray worker)."""
    parser = fidelity.build_parser()
    run_args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(run_args.threads)
    run_args.out.mkdir(parents=True, exist_ok=True)
    return fidelity.run(run_args.teachers[0], run_args, run_args.out)


def run_label(argv: list[str]) -> str:
    """The label fidelity.py records an arm's row under: ``<teacher>-<name>``."""
    return f"{argv[argv.index('--teachers') + 1]}-{argv[argv.index('--name') + 1]}"


def finished_arms(path: Path, minutes: float, threads: int) -> dict[str, dict]:
    """Arms already recorded in ``path`` at this budget and thread count, by label: a bench run
    that stopped after some arms resumes with the rest."""
    if not path.is_file():
        return {}
    return {row["run"]: row for row in recorded(path)
            if row.get("recipe", {}).get("minutes") == minutes and row.get("threads") == threads}


def recorded(path: Path) -> list[dict]:
    """The arms recorded in a ``fidelity.jsonl``, the latest row of each run label, in first-run order."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: run some arms first")
    latest: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            latest[row["run"]] = row
    return list(latest.values())


def table(rows: list[dict]) -> str:
    def grouped(row: dict) -> bool:
        return bool(row.get("recipe", {}).get("group_by_length"))

    baseline = {(r["teacher"], grouped(r)): r for r in rows if arm_of(r).split("-")[0] == "baseline"}
    lines = [
        "| teacher | arm | test acc | gain | test F1 | flips (of 4,000) | teacher agreement | pairs seen "
        "| train ex/s | threads |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = baseline.get((r["teacher"], grouped(r)))
        gain = f"{r['accuracy'] - base['accuracy']:+.4f}" if base is not None and base is not r else "-"
        arm = arm_of(r)
        lines.append(
            f"| {r['teacher']} | {arm} | {r['accuracy']:.4f} | {gain} | {r['f1']:.4f} | {r.get('flips')} "
            f"| {r['agreement']:.4f} | {r['examples']:,} | {r['ex_per_s']:.1f} | {r['threads']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--teachers", nargs="*", default=["codebert"], choices=["codebert", "graphcodebert"])
    parser.add_argument("--candidate", default="context", choices=sorted(fidelity.CANDIDATES))
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget per arm")
    parser.add_argument("--copies", type=int, default=1, help="metamorphic copies per pair (augment arms)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per arm")
    parser.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=None,
                        help="training batches of similar lengths in every arm (default: the setting's)")
    parser.add_argument("--parallel", type=int, default=1, help="arms at once (Ray tasks when > 1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("outputs/robustness"))
    parser.add_argument("--rerun", action="store_true", help="train arms already recorded in <out> again")
    parser.add_argument("--table", action="store_true",
                        help="print every arm recorded in <out>/fidelity.jsonl (the latest of each) and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(table(recorded(args.out / "fidelity.jsonl")))
        return 0
    if not os.environ.get("AVATAR_DATA"):
        parser.error("set AVATAR_DATA to the real data root (bigclonebench/)")
    jobs = [arm_argv(arm, args, teacher) for teacher in args.teachers for arm in args.arms]
    done = finished_arms(args.out / "fidelity.jsonl", args.minutes, args.threads) if not args.rerun else {}
    rows = [done[label] for label in map(run_label, jobs) if label in done]
    for row in rows:
        print(f"{row['run']}: already measured at {args.minutes:g} min x {args.threads} thread(s) "
              f"(--rerun to train it again)", file=sys.stderr)
    jobs = [job for job in jobs if run_label(job) not in done]
    if args.parallel <= 1 or len(jobs) <= 1:
        rows += [run_arm(job) for job in jobs]
    else:
        import ray

        ray.init(num_cpus=args.parallel * args.threads, include_dashboard=False, logging_level="ERROR")
        remote = ray.remote(num_cpus=args.threads)(run_arm)
        rows += ray.get([remote.remote(job) for job in jobs])
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
