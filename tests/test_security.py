"""No code from data files: a pickle payload planted where Avatar reads never runs.

Run directories and caches may live on shared file systems (docs/scale.md), so every file
Avatar reads back is data to it: checkpoints go through torch's restricted unpickler,
arrays through ``np.load(allow_pickle=False)``, weights through safetensors.
"""

from __future__ import annotations

import io
import os
import pathlib
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.core.io import UnreadableCheckpoint, load_checkpoint
from avatar.distill.settings import DistillSettings
from avatar.distill.train import distill_candidate
from avatar.plugins.tasks.demo import DemoTask
from avatar.teach.teacher import Knowledge
from tests.conftest import REPO
from tests.helpers import load_space
from tests.test_distill import TINY, gold_knowledge


class Payload:
    """Unpickling this touches ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (pathlib.Path.touch, (self.marker,))


def plant(path: Path, marker: Path) -> None:
    torch.save({"state_dict": {}, "global_step": 1, "payload": Payload(marker)}, path)


def test_the_payload_is_real(tmp_path: Path) -> None:
    """The planted file does run code under plain unpickling: the tests below mean something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_load_checkpoint_refuses_a_payload_in_one_line(tmp_path: Path) -> None:
    marker, planted = tmp_path / "ran", tmp_path / "best.ckpt"
    plant(planted, marker)
    with pytest.raises(UnreadableCheckpoint) as caught:
        load_checkpoint(planted)
    assert not marker.exists()
    assert "\n" not in str(caught.value) and "move it aside" in str(caught.value)


def test_a_planted_last_ckpt_is_set_aside_and_the_student_restarts(tmp_path: Path) -> None:
    task = DemoTask(limit=32)
    candidate = load_space("tiny").validate(TINY)
    out, marker = tmp_path / "student_run", tmp_path / "ran"
    settings = DistillSettings(progress_bar=False)

    def run(steps: int):  # noqa: ANN202
        return distill_candidate(
            candidate, task, gold_knowledge(task, soft=True), settings, out,
            cache_dir=tmp_path / "cache", trainer={"max_steps": steps},
        )

    run(2)
    last = out / "checkpoints" / "last.ckpt"
    plant(last, marker)
    result = run(4)
    assert not marker.exists()
    assert (out / "checkpoints" / "last.ckpt.unreadable-0").is_file()
    assert result.resumed_from is None and result.global_step == 4  # restarted, not resumed
    assert torch.load(last, weights_only=True)["global_step"] == 4


def test_a_knowledge_file_with_objects_is_refused(tmp_path: Path) -> None:
    marker, planted = tmp_path / "ran", tmp_path / "knowledge.npz"
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(["demo", "t", "f"]), logits=np.array([Payload(marker)], dtype=object))
    planted.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError):
        Knowledge.load(planted)
    assert not marker.exists()


def test_no_module_unpickles_files() -> None:
    """A guard: no ``weights_only=False``, ``allow_pickle=True`` or bare ``pickle.load`` in the package."""
    pattern = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|pickle\.loads?\(|joblib\.load")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "avatar").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """kill -9 mid-export leaves ``.model.onnx.<pid>.<id>.tmp.onnx``; the rerun's write sweeps it."""
    from avatar.core.io import atomic_write_text

    dead = tmp_path / ".model.onnx.999999999.abcd1234.tmp.onnx"  # no such pid
    alive = tmp_path / f".model.onnx.{os.getpid()}.abcd1234.tmp.onnx"
    dead.write_text("torn")
    alive.write_text("in progress")
    atomic_write_text(tmp_path / "model.onnx", "done")
    assert not dead.exists() and alive.exists()
