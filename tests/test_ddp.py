"""Lightning DDP inside one run: two CPU processes (gloo) fine-tune a teacher, then distil a
student, through ``train.py``; rank 1 trains and leaves, rank 0 alone evaluates and saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "logger=none"]
CANDIDATE = (
    "{tokenizer: BPE, vocab_size: 1000, num_hidden_layers: 1, hidden_size: 32, hidden_act: gelu,"
    " hidden_dropout_prob: 0.1, intermediate_size: 64, num_attention_heads: 2,"
    " attention_probs_dropout_prob: 0.1, max_sequence_length: 128, position_embedding_type: absolute,"
    " learning_rate: 0.001, batch_size: 16}"
)


def _train(tmp_path: Path, name: str, *overrides: str) -> str:
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "train.py", "task=demo", "task.size=200", "teacher=scratch",
         "teacher.trainer.max_epochs=2", "teacher.trainer.min_steps=null", "distill.min_steps=0", *DDP,
         *overrides, f"hydra.run.dir={tmp_path / name}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output  # two processes trained
    assert "rank 1: training done; rank 0 evaluates and saves" in output
    return output


def test_ddp_fine_tune_then_distil_save_once_on_rank_zero(tmp_path: Path) -> None:
    output = _train(tmp_path, "teacher", "stage=teacher")
    assert output.count("fine-tuned teacher saved to") == 1
    assert output.count("computed and cached at") == 1  # the knowledge: predicted and written once
    assert len(list((tmp_path / "cache" / "knowledge").glob("*.npz"))) == 1

    output = _train(tmp_path, "student", "stage=distill", f"candidate={CANDIDATE}", "space=tiny",
                    "trainer.max_epochs=2")
    assert "computed and cached at" not in output  # the distillation reads the teacher's knowledge
    results = list((tmp_path / "student").glob("students/*/result.json"))
    assert len(results) == 1
    result = json.loads(results[0].read_text())
    assert result["global_step"] > 0 and "test/accuracy" in result["metrics"]
    assert (results[0].parent / "student" / "config.json").is_file()
    # both ranks' batches are counted: one epoch is the whole unlabeled split, not half of it
    assert result["train_examples"] == 2 * 200
