"""Benchmark: the training-memory estimate against a real training step's peak RSS. Prints a table.

Why: ``constraints=size3mb_memory`` prunes candidates by ``avatar.search.cost.
training_memory_bytes``; this checks the estimate on real students. Each configuration runs
in its own process (peak RSS is a per-process high-water mark): the student of the
candidate, a batch of its size at its full sequence length, two AdamW steps on one thread.

    python bench/train_memory_bench.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIGS = [
    {"num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 1120, "num_attention_heads": 8,
     "max_sequence_length": 512, "position_embedding_type": "absolute", "batch_size": 16},
    {"num_hidden_layers": 4, "hidden_size": 16, "intermediate_size": 1120, "num_attention_heads": 8,
     "max_sequence_length": 512, "position_embedding_type": "absolute", "batch_size": 16},
    {"num_hidden_layers": 2, "hidden_size": 48, "intermediate_size": 32, "num_attention_heads": 12,
     "max_sequence_length": 512, "position_embedding_type": "relative_key_query", "batch_size": 16},
    {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 1,
     "max_sequence_length": 512, "position_embedding_type": "absolute", "batch_size": 32},
    {"num_hidden_layers": 2, "hidden_size": 48, "intermediate_size": 576, "num_attention_heads": 6,
     "max_sequence_length": 256, "position_embedding_type": "relative_key", "batch_size": 64},
]
BASE = {"tokenizer": "BPE", "vocab_size": 1000, "hidden_act": "gelu", "hidden_dropout_prob": 0.2,
        "attention_probs_dropout_prob": 0.2, "learning_rate": 1e-3}


def candidate(config: dict):  # noqa: ANN201 - avatar.search.space.Candidate
    from avatar.search.space import Candidate

    return Candidate.from_dict({**BASE, **config})


def step_peak_mib(config: dict) -> float:
    """In this process: the peak RSS growth of two training steps, MiB."""
    import torch

    from avatar.distill.student import build_model

    torch.set_num_threads(1)
    c = candidate(config)
    model = build_model(c, 2).train()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    ids = torch.randint(5, 1000, (c["batch_size"], c["max_sequence_length"]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(step_peak_mib(json.loads(sys.argv[2])))
        return 0
    from avatar.search.cost import training_memory_bytes
    from avatar.search.variables import candidate_vars

    print("| layers | hidden | FFN | heads | seq | positions | batch | estimate MiB | measured peak RSS MiB "
          "| measured / estimate |")
    print("| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for config in CONFIGS:
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)], capture_output=True,
                              text=True, check=True)
        measured = float(done.stdout.strip().splitlines()[-1])
        estimate = training_memory_bytes(candidate_vars(candidate(config), 2)) / 2**20
        c = config
        print(f"| {c['num_hidden_layers']} | {c['hidden_size']} | {c['intermediate_size']} "
              f"| {c['num_attention_heads']} | {c['max_sequence_length']} | {c['position_embedding_type']} "
              f"| {c['batch_size']} | {estimate:,.0f} | {measured:,.0f} | {measured / estimate:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
