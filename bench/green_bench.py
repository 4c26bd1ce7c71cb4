"""Teacher vs 3 MB student on this CPU: size, batch-1 latency, energy and CO2 per 1,000 inferences.

    .venv/bin/python bench/green_bench.py [--threads 2] [--teacher-n 20] [--student-n 200]

Both models get random weights (cost does not depend on the weight values): a
roberta-base-sized teacher (``RobertaConfig(num_labels=2, max_position_embeddings=514,
type_vocab_size=1)``: 125M parameters, the shape of CodeBERT and GraphCodeBERT) and a fixed
student of the paper's 3 MB budget (vocab 1000, hidden 96, 5 layers, 4 heads, intermediate
384, absolute positions, sequences up to 512; 2.72 MiB by ``avatar.search.cost``). Each runs N
random sequences at batch 1 at sequence lengths 256 and 512; latency is the median per
inference, energy and CO2 are measured by codecarbon over the N inferences and extrapolated
linearly to 1,000. The last column holds the paper's reported
gains for comparison (160x smaller, 76x faster, 184x less energy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STUDENT = {
    "vocab_size": 1000, "hidden_size": 96, "num_hidden_layers": 5, "num_attention_heads": 4,
    "intermediate_size": 384, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_sequence_length": 512, "position_embedding_type": "absolute",
}
PAPER_GOALS = {"size": 160.0, "latency": 76.0, "energy": 184.0}
BUDGET_MB = 3.0


def _models():  # noqa: ANN202 - (teacher, student, student size MiB)
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from avatar.search.cost import MB, size_bytes
    from avatar.search.space import Candidate, model_config
    from avatar.search.variables import candidate_vars

    candidate = Candidate.from_dict(STUDENT)
    student_mb = int(size_bytes(candidate_vars(candidate, 2))) / MB
    if student_mb > BUDGET_MB:
        raise SystemExit(f"student config is {student_mb:.2f} MiB, over the {BUDGET_MB} MB budget")
    torch.manual_seed(0)
    # roberta-base's own shape: RobertaConfig()'s defaults have 512 positions (too few for
    # 512 tokens after RoBERTa's padding offset) and 2 token types; CodeBERT has 514 and 1.
    teacher_config = RobertaConfig(num_labels=2, max_position_embeddings=514, type_vocab_size=1)
    teacher = RobertaForSequenceClassification(teacher_config).eval()
    student = RobertaForSequenceClassification(RobertaConfig(**model_config(candidate, 2))).eval()
    return teacher, student, student_mb


def _size_mb(model) -> float:  # noqa: ANN001
    from avatar.search.cost import MB

    return sum(p.numel() for p in model.parameters()) * 4 / MB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads (default 2)")
    parser.add_argument("--teacher-n", type=int, default=20, help="teacher inferences measured per length")
    parser.add_argument("--student-n", type=int, default=200, help="student inferences measured per length")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args(argv)

    import torch

    from avatar.run import green

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    teacher, student, student_formula_mb = _models()
    sizes = {"teacher": _size_mb(teacher), "student": _size_mb(student)}
    assert abs(sizes["student"] - student_formula_mb) < 1e-9, "search.cost disagrees with the built model"
    green.get_tracker()  # the one-off start (about 1.4 s) stays out of every measurement
    results: dict[tuple[int, str], green.InferenceMeasurement] = {}
    for length in args.lengths:
        for name, model, n in (("teacher", teacher, args.teacher_n), ("student", student, args.student_n)):
            inputs = green.random_sequences(model.config.vocab_size, length, n, seed=length)
            results[(length, name)] = green.inference_workload(
                model, inputs, batch_size=1, warmup=args.warmup, name=f"bench-{name}-{length}")
            r = results[(length, name)]
            print(f"  measured {name} at {length}: {n} inferences in {r.measurement.seconds:.1f} s",
                  file=sys.stderr, flush=True)

    info = green.machine_info()
    print(f"# Teacher vs 3 MB student, batch 1, {info['cpu']} ({info['logical_cpus']} logical CPUs), "
          f"PyTorch threads {args.threads}")
    print(f"Energy: {green.energy_source()}.")
    print(f"Load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}: other "
          "processes on the machine slow both models and inflate the estimated energy.")
    print(f"Energy and CO2 per 1,000 inferences are extrapolated from N measured "
          f"(teacher N={args.teacher_n}, student N={args.student_n} per length). Random weights.")
    print()
    print("| seq | model | size MB | latency ms (median) | energy kWh / 1k | CO2 g / 1k |")
    print("|---:|---|---:|---:|---:|---:|")
    for length in args.lengths:
        for name in ("teacher", "student"):
            r = results[(length, name)]
            energy, co2 = r.per_1000()
            print(f"| {length} | {name} | {sizes[name]:.2f} | {r.latency_ms:.2f} | {energy:.3g} "
                  f"| {co2:.3g} |")
    print()
    print("| seq | teacher / student | measured | paper |")
    print("|---:|---|---:|---:|")
    for length in args.lengths:
        t, s = results[(length, "teacher")], results[(length, "student")]
        measured = {
            "size": sizes["teacher"] / sizes["student"],
            "latency": t.latency_ms / s.latency_ms,
            "energy": t.per_1000()[0] / s.per_1000()[0],
        }
        for key, value in measured.items():
            print(f"| {length} | {key} | {value:.1f}x | {PAPER_GOALS[key]:.0f}x |")
    print()
    print(f"(bench wall time {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
