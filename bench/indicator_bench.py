"""Benchmark: the effectiveness indicator's ground truth on real BigCloneBench.

Why: an indicator is only as good as its rank agreement with what the students really
reach within *their* budget. This bench draws ``--candidates`` points by a seeded Latin
hypercube from the paper's whole space under the 3 MiB constraint (``space=avatar``,
``Pruner.latin_hypercube``), distils each one for the students' budget (``--minutes``, 30
by default) with the paper's fine-tuned teacher logits, and records its test accuracy on
all 4,000 test pairs, its validation curve against wall-clock time and its training
throughput: the inputs of every indicator variant (brief runs, learning curves, proxies).
A candidate whose training step would need more than ``--max-gb`` of RAM is recorded as not
trainable here, and a second seeded Latin hypercube (``--seed`` + 1, under the memory bound
too) supplies one replacement for each, appended after the first sample.

Each finished candidate is one line of ``bench/results/indicator_ground_truth.jsonl``
(committed: hours of CPU), keyed by candidate, teacher, budget and seed; a rerun skips
finished candidates and resumes an interrupted one from its last checkpoint (run folders
under ``$AVATAR_CACHE/bench/indicator``). ``--workers 2`` runs two candidates at once as
Ray tasks (one thread each).

Training keeps freed memory in the process (``avatar.core.memory``, up to 1.4x the examples
of glibc's defaults in the same minutes), and a wall-clock budget turns that into more
examples, so the allocator is part of the ground truth: ``--allocator kept`` (the default,
what every student trains with) or ``glibc`` (``AVATAR_KEEP_FREED_MEMORY=0``: the first 12
candidates were distilled so, before the change). Rows record it; a row without it is glibc's.

``--learning-rate`` (1e-3 by default) trains every candidate at one rate, the one the
default search holds its students at (``indicator.learning_rate``: the surrogate's brief runs
all train at it, so the search fixes the space's rate there). The first 12 trained at their own
Latin-hypercube rates (``--learning-rate own``), and 5 of them at 5e-5 or 1e-4 collapsed or
stayed low: a ground truth that ranks rates no default search trains at.

    AVATAR_DATA=../shared/data python bench/indicator_bench.py --minutes 30 --workers 1
    python bench/indicator_bench.py --table        # the ground truth so far, no training
    python bench/indicator_bench.py --table --allocator glibc --learning-rate own   # the first one
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from fidelity import SampledValidTask, paper_space, peak_rss_mb  # noqa: E402

from avatar.core.errors import AvatarError  # noqa: E402
from avatar.core.memory import OFF_SWITCH  # noqa: E402
from avatar.core.registry import CONSTRAINTS, TASKS  # noqa: E402
from avatar.distill.student import default_cache_dir  # noqa: E402
from avatar.search.cost import training_memory_bytes  # noqa: E402
from avatar.search.smt import Pruner  # noqa: E402
from avatar.search.space import Candidate  # noqa: E402
from avatar.search.variables import candidate_vars  # noqa: E402

RESULTS = BENCH / "results" / "indicator_ground_truth.jsonl"
ALLOCATORS = ("kept", "glibc")


def use_allocator(allocator: str) -> None:
    """Train in this process (and the Ray workers it starts) with ``allocator``: set before any
    training, since ``keep_freed_memory`` reads the switch once per process."""
    os.environ[OFF_SWITCH] = "1" if allocator == "kept" else "0"


def held_rate(option: str) -> float | None:
    """``--learning-rate``: the rate every candidate trains at, or None for ``own``."""
    return None if option == "own" else float(option)


def measured_under(row: dict, allocator: str, rate: float | None) -> bool:
    """Whether a ground-truth row was distilled with ``allocator`` at ``rate``; a row without the
    fields is of the first ground truth (glibc's allocator, each candidate's own rate)."""
    return row.get("allocator", "glibc") == allocator and row.get("held_learning_rate") == rate


def draw(count: int, seed: int, max_mb: float, max_gb: float | None = None) -> list[Candidate]:
    """The seeded Latin-hypercube sample of the 3 MiB space: the same list on every machine.

    With ``max_gb``, the sample is drawn under the training-memory bound too (the default
    search's own space, ``constraints=size3mb_memory``).
    """
    space = paper_space()
    constraints = [CONSTRAINTS.create("size", max_mb=max_mb), CONSTRAINTS.create("heads")]
    if max_gb is not None:
        constraints.append(CONSTRAINTS.create("train_memory", max_gb=max_gb))
    pruner = Pruner(space, constraints, num_labels=2, seed=seed)
    return [space.candidate(genome) for genome in pruner.latin_hypercube(count, random.Random(seed))]


def at_learning_rate(candidate: Candidate, rate: float | None) -> Candidate:
    """The candidate with its learning rate held at ``rate`` (None: its own)."""
    if rate is None:
        return candidate
    return paper_space().validate({**candidate.as_dict(), "learning_rate": rate})


def needed_gb(candidate: Candidate) -> float:
    return training_memory_bytes(candidate_vars(candidate, 2)) / 2**30


def with_replacements(
    candidates: list[Candidate], seed: int, max_mb: float, max_gb: float
) -> list[Candidate]:
    """The sample, then one replacement for each candidate this machine cannot train.

    Why: the first sample (drawn under the paper's 3 MiB bound alone, before the memory
    constraint existed) holds students that need 20-30 GiB for a training step. They stay in
    the list, recorded as not trainable here, and the first ones of a second seeded Latin
    hypercube (``seed + 1``, drawn under the memory bound as well) take their places at the
    end, so the ground truth still has ``--candidates`` trained students and every earlier
    index and key keeps its meaning.
    """
    missing = sum(needed_gb(c) > max_gb for c in candidates)
    if not missing:
        return candidates
    return candidates + draw(len(candidates), seed + 1, max_mb, max_gb)[:missing]


def run_key(candidate: Candidate, teacher: str, minutes: float, seed: int, allocator: str = "kept") -> str:
    """The candidate's row and run folder; glibc's rows keep their keys from before the allocator counted."""
    parts: list[object] = [candidate.key(), teacher, minutes, seed]
    if allocator != "glibc":
        parts.append(allocator)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def finished() -> dict[str, dict]:
    if not RESULTS.is_file():
        return {}
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["key"]: row for row in rows}


def curve(out: Path) -> list[dict[str, float]]:
    """(elapsed training seconds, step, validation accuracy) from the run's CSV log."""
    import csv

    points = []
    for path in sorted(out.glob("logs/version_*/metrics.csv")):
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/accuracy"):
                    points.append({"step": int(row["step"]), "val_accuracy": float(row["val/accuracy"]),
                                   "val_loss": float(row["val/loss"]) if row.get("val/loss") else None})
    return points


def distil(index: int, candidate: dict, teacher: str, args: dict, key: str) -> dict:
    """One candidate at the students' budget (a Ray task when ``--workers`` > 1)."""
    import torch

    from avatar.distill.settings import DistillSettings
    from avatar.distill.train import distill_candidate
    from avatar.teach.teacher import Knowledge

    torch.set_num_threads(args["threads"])
    use_allocator(args["allocator"])  # a Ray worker is a process of its own
    base = TASKS.create("clone", data_dir=None)
    task = SampledValidTask(base, args["valid_examples"], args["seed"])
    logits = Path(os.environ["AVATAR_DATA"]) / "bigclonebench" / "teacher_logits"
    logits = logits / f"{teacher}_unlabel_train.npy"
    knowledge = Knowledge("clone", teacher, task.fingerprint("unlabel_train"), logits=np.load(logits))
    cand = paper_space().validate(candidate)
    trainer = {
        "max_epochs": -1, "max_time": {"minutes": args["minutes"]}, "accelerator": "cpu",
        "val_check_interval": f"00:00:{args['val_minutes']:02d}:00", "check_val_every_n_epoch": None,
    }
    settings = DistillSettings(patience=1000, progress_bar=False, seed=args["seed"], measure_energy=False)
    out = Path(args["runs"]) / key
    started = time.perf_counter()
    cpu_started = time.process_time()
    setting = {"key": key, "index": index, "teacher": teacher, "minutes": args["minutes"],
               "seed": args["seed"], "allocator": args["allocator"],
               "held_learning_rate": args["learning_rate"]}
    # not trainable on this machine: a ground-truth fact (recorded, so a rerun skips it) that
    # the search avoids with constraints=size3mb_memory; the indicator evaluation leaves it out
    skipped = {**setting, "candidate": cand.as_dict(), "size_mb": None, "test_accuracy": None}
    needed = needed_gb(cand)
    if needed > args["max_gb"]:
        return {**skipped, "skipped": f"needs about {needed:.1f} GiB of RAM for one training step (over "
                                      f"--max-gb {args['max_gb']:g})"}
    try:
        result = distill_candidate(cand, task, knowledge, settings, out, trainer=trainer)
    except AvatarError as error:
        if "GiB of RAM" not in str(error):
            raise
        return {**skipped, "skipped": str(error)}
    cpu_seconds = time.process_time() - cpu_started
    metrics = result.metrics
    return {
        **setting, "candidate": cand.as_dict(), "size_mb": result.size_mb,
        "test_accuracy": metrics["test/accuracy"], "test_f1": metrics["test/f1"],
        "val_accuracy": metrics.get("val/accuracy"), "collapsed": result.collapsed,
        "steps": result.global_step, "examples": result.global_step * int(cand["batch_size"]),
        "train_examples_per_s": result.train_examples_per_second,
        "wall_s": time.perf_counter() - started, "peak_mb": peak_rss_mb(), "threads": args["threads"],
        # CPU time the process got: on a shared machine, cpu_s / wall_s < threads says how contended
        "cpu_s": cpu_seconds, "load_avg": os.getloadavg()[0],
        "curve": curve(out),
    }


def record(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)


def table(rows: list[dict]) -> str:
    lines = [
        "| # | size MB | tokenizer | vocab | layers | hidden | FFN | heads | seq | lr | batch | pairs seen "
        "| ex/s | test acc |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: r["index"]):
        c = row["candidate"]
        if row.get("skipped"):
            lines.append(f"| {row['index']} | - | {c['tokenizer']} | {c['vocab_size']} "
                         f"| {c['num_hidden_layers']} | {c['hidden_size']} | {c['intermediate_size']} "
                         f"| {c['num_attention_heads']} "
                         f"| {c['max_sequence_length']} | {c['learning_rate']:g} | {c['batch_size']} | - | - "
                         f"| not trainable here: {row['skipped'].split(' for one')[0].split('needs ')[-1]} |")
            continue
        lines.append(
            f"| {row['index']} | {row['size_mb']:.2f} | {c['tokenizer']} | {c['vocab_size']} "
            f"| {c['num_hidden_layers']} | {c['hidden_size']} | {c['intermediate_size']} "
            f"| {c['num_attention_heads']} | {c['max_sequence_length']} | {c['learning_rate']:g} "
            f"| {c['batch_size']} | {row['examples']:,} | {row['train_examples_per_s']:.1f} "
            f"| {row['test_accuracy']:.4f}{' (collapsed)' if row['collapsed'] else ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=30.0, help="the students' budget per candidate")
    parser.add_argument("--teacher", default="codebert", choices=["codebert", "graphcodebert"])
    parser.add_argument("--max-mb", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--valid-examples", type=int, default=400, help="validation pairs per check")
    parser.add_argument("--val-minutes", type=int, default=6, help="validate every N minutes of training")
    parser.add_argument("--workers", type=int, default=1, help="candidates at once (Ray tasks when > 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per candidate")
    parser.add_argument("--max-gb", type=float, default=8.0,
                        help="record a candidate whose training step needs more RAM (estimated) as not "
                             "trainable here instead of training it (constraints=size3mb_memory's bound)")
    parser.add_argument("--only", type=int, nargs="*", default=None, help="candidate indices to run")
    parser.add_argument("--allocator", choices=ALLOCATORS, default="kept",
                        help="kept: freed memory stays in the process (as students train); glibc: defaults")
    parser.add_argument("--learning-rate", default="1e-3",
                        help="every candidate's rate (the default search's); 'own': its Latin-hypercube one")
    parser.add_argument("--table", action="store_true", help="print the ground truth so far and stop")
    args = parser.parse_args(argv)

    candidates = with_replacements(draw(args.candidates, args.seed, args.max_mb), args.seed, args.max_mb,
                                   args.max_gb)
    held = held_rate(args.learning_rate)
    candidates = [at_learning_rate(c, held) for c in candidates]
    keys = [run_key(c, args.teacher, args.minutes, args.seed, args.allocator) for c in candidates]
    done = finished()
    if args.table:
        print(table([done[k] for k in keys if k in done]))
        skipped = sum(k in done and bool(done[k].get("skipped")) for k in keys)
        print(f"\n{sum(k in done for k in keys) - skipped} of {len(keys) - skipped} candidates trained, "
              f"{skipped} not trainable here ({RESULTS})")
        return 0
    if not os.environ.get("AVATAR_DATA"):
        parser.error("set AVATAR_DATA to the real data root (bigclonebench/)")
    settings = {
        "minutes": args.minutes, "seed": args.seed, "valid_examples": args.valid_examples,
        "val_minutes": args.val_minutes, "threads": args.threads, "max_gb": args.max_gb,
        "allocator": args.allocator, "learning_rate": held,
        "runs": str(default_cache_dir() / "bench" / "indicator"),
    }
    todo = [i for i, k in enumerate(keys) if k not in done and (args.only is None or i in args.only)]
    hours = len(todo) * args.minutes / max(1, args.workers) / 60
    print(f"{len(todo)} candidates to distil for {args.minutes:g} min each "
          f"({hours:.1f} h on {args.workers} worker(s))", flush=True)
    if args.workers <= 1:
        for i in todo:
            record(distil(i, candidates[i].as_dict(), args.teacher, settings, keys[i]))
    else:
        import ray

        ray.init(num_cpus=args.workers * args.threads, include_dashboard=False, _node_ip_address="127.0.0.1")
        remote = ray.remote(num_cpus=args.threads)(distil)
        pending = {
            remote.remote(i, candidates[i].as_dict(), args.teacher, settings, keys[i]): i for i in todo
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                record(ray.get(ref))
    rows = finished()
    print(table([rows[k] for k in keys if k in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
