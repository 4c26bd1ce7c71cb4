"""Kill -9 during a student's training, then the same command: it continues from its last
checkpoint; run again once finished: nothing trains. A real ``train.py`` subprocess on a
tiny run (slow: two cold starts of Lightning and transformers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.plugins.tasks.demo import DemoTask
from tests.conftest import REPO

CANDIDATE = (
    "{tokenizer: BPE, vocab_size: 1000, num_hidden_layers: 1, hidden_size: 32, hidden_act: gelu,"
    " hidden_dropout_prob: 0.1, intermediate_size: 64, num_attention_heads: 2,"
    " attention_probs_dropout_prob: 0.1, max_sequence_length: 128, position_embedding_type: absolute,"
    " learning_rate: 0.001, batch_size: 16}"
)


@pytest.mark.slow
def test_kill_9_during_a_student_then_the_same_command_resumes(tmp_path: Path) -> None:
    task = DemoTask(size=200)
    gold = np.array([e.label for e in task.read_split("unlabel_train")])
    logits = tmp_path / "gold.npy"
    np.save(logits, (np.eye(2)[gold] * 6 - 3).astype(np.float32))
    run = tmp_path / "run"
    command = [
        sys.executable, "train.py", "stage=distill", "task=demo", "task.size=200", "space=tiny",
        "teacher=predictions", f"teacher.path={logits}", "teacher.kind=logits", f"candidate={CANDIDATE}",
        "trainer.max_steps=120", "trainer.max_epochs=-1", "trainer.accelerator=cpu",
        "distill.checkpoint_every_n_steps=10", "distill.patience=1000", "logger=none", f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    last = None
    while time.monotonic() < deadline and first.poll() is None:
        found = list(run.glob("students/*/checkpoints/last.ckpt"))
        if found:
            last = found[0]
            break
        time.sleep(0.2)
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert last is not None, "no checkpoint appeared before the deadline"
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 10 <= killed_at < 120

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout + again.stderr
    result = json.loads((last.parent.parent / "result.json").read_text())
    assert result["global_step"] == 120 and result["train_examples"] <= (120 - killed_at) * 16

    once_more = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert once_more.returncode == 0 and "not training it again" in once_more.stdout + once_more.stderr
