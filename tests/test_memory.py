"""Training keeps its freed memory (``avatar.core.memory``): no page-fault storm per step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from avatar.core.memory import OFF_SWITCH

# three training steps of a tiny real student at 32 x 512 tokens: its attention scores (32 MiB a
# tensor) are above glibc's mmap threshold, so by default every step faults their pages in afresh
STEPS = """
import resource, torch
from transformers import RobertaConfig, RobertaForSequenceClassification
from avatar.core.memory import keep_freed_memory
applied = keep_freed_memory()
torch.set_num_threads(1)
torch.manual_seed(0)
config = RobertaConfig(vocab_size=1000, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                       intermediate_size=32, max_position_embeddings=514, attn_implementation="sdpa")
model = RobertaForSequenceClassification(config).train()
ids = torch.randint(5, 1000, (32, 512))
mask = torch.ones_like(ids)
mask[1:, 400:] = 0
def step():
    model(input_ids=ids, attention_mask=mask).logits.sum().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(switch: str) -> tuple[bool, int]:
    env = {**os.environ, OFF_SWITCH: switch}
    out = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_a_training_process_reuses_freed_pages_and_the_switch_turns_it_off() -> None:
    kept, kept_faults = _faults("1")
    default, default_faults = _faults("0")
    assert kept and not default
    assert default_faults > 100_000  # measured: about 250,000
    assert kept_faults < default_faults // 5  # measured: about 25,000
