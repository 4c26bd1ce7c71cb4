"""Training keeps its freed memory (``avatar.core.memory``): no page-fault storm per step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from avatar.core.memory import OFF_SWITCH

# three training steps of attention as a student at 32 x 512 tokens trains it (mask, dropout): its
# scores (32 MiB a tensor) are above glibc's mmap threshold, so by default every step faults their
# pages in afresh. Torch alone: a subprocess that imports transformers too costs twice the time.
STEPS = """
import resource, torch
from avatar.core.memory import keep_freed_memory
applied = keep_freed_memory()
torch.set_num_threads(1)
torch.manual_seed(0)
q, k, v = (torch.randn(32, 1, 512, 16, requires_grad=True) for _ in range(3))
mask = torch.ones(32, 1, 1, 512, dtype=torch.bool)
mask[1:, :, :, 400:] = False
def step():
    torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1).sum().backward()
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
    assert default_faults > 100_000  # measured: about 175,000
    assert kept_faults < default_faults // 2  # measured: about 49,000
