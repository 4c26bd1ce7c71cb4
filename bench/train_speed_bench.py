"""Benchmark: training throughput of the reference students under each precision and thread count.

Why: ``trainer.precision=bf16-mixed`` halves the bytes a CPU moves, but only CPUs with
bf16 instructions (``avx512_bf16`` or AMX) compute in bf16; elsewhere PyTorch emulates it.
This prints, side by side in one run, the examples/s of one real training step (the
``train_examples_per_s`` meter: random weights, full sequence length, the candidate's
batch, the distillation loss, AdamW) for ``bench/fidelity.py``'s reference candidates,
fp32 and bf16 autocast, 1 and 2 threads, and says whether this CPU has bf16 instructions.

    python bench/train_speed_bench.py [--runs 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity import CANDIDATES, paper_space  # noqa: E402

from avatar.core.registry import METERS  # noqa: E402
from avatar.learn.training import cpu_has_bf16  # noqa: E402
from avatar.search.objectives import MeterContext  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed steps per cell (the median is kept)")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--candidates", nargs="*", default=sorted(CANDIDATES), choices=sorted(CANDIDATES))
    args = parser.parse_args()

    space = paper_space()
    has_bf16 = cpu_has_bf16()
    print(f"CPU bf16 instructions: {'yes' if has_bf16 else 'no' if has_bf16 is False else 'unknown'}")
    print("\n| candidate | seq | batch | threads | fp32 ex/s | bf16 ex/s | bf16 / fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.candidates:
        candidate = space.validate(CANDIDATES[name])
        for threads in args.threads:
            speeds = []
            for bf16 in (False, True):
                with tempfile.TemporaryDirectory() as run_dir:
                    meter = METERS.create("train_examples_per_s", threads=threads, runs=args.runs, bf16=bf16)
                    speeds.append(meter.measure(candidate, MeterContext(space, 2, run_dir)))
            print(f"| {name} | {candidate['max_sequence_length']} | {candidate['batch_size']} | {threads} | "
                  f"{speeds[0]:.1f} | {speeds[1]:.1f} | {speeds[1] / speeds[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
