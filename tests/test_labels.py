"""Class names end to end: a task's ``label_names`` reach the teacher's and the student's
``config.json`` (``id2label``), the student's ``avatar.json``, ``avatar predict``'s
``label_name`` and the report's class note. A 3-class toy task, tiny models, two steps each.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from avatar.cli.main import run_command
from avatar.distill.settings import DistillSettings
from avatar.distill.train import distill_candidate
from avatar.plugins.teachers.scratch import ScratchTeacher
from avatar.report.measure import measure_model
from avatar.report.render import build_report
from avatar.task.base import Example, Split, Task
from avatar.teach.teacher import TeacherContext, teacher_knowledge
from tests.helpers import CODELANG_LABELS, codelang_records, load_space

predict_main = functools.partial(run_command, "predict")

torch.set_num_threads(1)

TINY = {
    "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
    "attention_probs_dropout_prob": 0.1, "max_sequence_length": 128, "position_embedding_type": "absolute",
    "learning_rate": 1e-3, "batch_size": 16,
}
CPU_TRAINER = {
    "accelerator": "cpu", "devices": 1, "max_epochs": 1, "max_steps": 2, "enable_progress_bar": False,
}


class CodeLang(Task):
    """Which language is the snippet in: python, java or c."""

    name = "codelang_labels_test"
    num_labels = 3
    label_names = CODELANG_LABELS
    language = "java"

    def read_split(self, split: Split) -> list[Example]:
        return [Example(r["code"], r["label"], id=f"{split}-{i}")
                for i, r in enumerate(codelang_records()) if r["split"] == split]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A scratch teacher and one student of the toy task, two training steps each."""
    root = tmp_path_factory.mktemp("labels")
    task = CodeLang()
    teacher = ScratchTeacher(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             vocab_size=300, max_length=64, patience=0)
    context = TeacherContext(root / "cache", root / "run", dict(CPU_TRAINER))
    knowledge, _, _ = teacher_knowledge(task, teacher, context)
    assert knowledge.logits.shape == (30, 3)
    candidate = load_space("tiny").validate(TINY)
    settings = DistillSettings(progress_bar=False)
    result = distill_candidate(candidate, task, knowledge, settings, root / "student",
                               cache_dir=root / "cache", trainer={"max_steps": 2, "accelerator": "cpu"})
    assert result.student_dir is not None
    return {"root": root, "teacher": teacher.model_dir(task, context), "student": result.student_dir}


def test_teacher_and_student_configs_name_the_classes(trained: dict[str, Path]) -> None:
    expected = {"0": "python", "1": "java", "2": "c"}
    for folder in (trained["teacher"], trained["student"]):
        config = json.loads((folder / "config.json").read_text())
        assert config["id2label"] == expected
        assert config["label2id"] == {"python": 0, "java": 1, "c": 2}
    initial = next((trained["root"] / "cache" / "teachers").glob("scratch-init-*"))
    assert json.loads((initial / "config.json").read_text())["id2label"] == expected
    assert json.loads((trained["student"] / "avatar.json").read_text())["labels"] == list(CODELANG_LABELS)


def test_predict_prints_the_class_name(trained: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text("def f(a, b):\n    return a + b\n")
    assert predict_main([str(trained["student"]), str(snippet)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["label_name"] == CODELANG_LABELS[record["label"]] and len(record["probabilities"]) == 3


def test_report_notes_the_classes(trained: dict[str, Path], tmp_path: Path) -> None:
    task = CodeLang()
    rows = [measure_model(trained["teacher"], task, "torch", 3, kind="teacher", warmup=0),
            measure_model(trained["student"], task, "torch", 3, kind="student", warmup=0)]
    assert [row.labels for row in rows] == [list(CODELANG_LABELS)] * 2
    paths = build_report(rows, tmp_path, title="labels")
    markdown = paths["md"].read_text()
    assert "- Classes (3, from the models' config.json `id2label`): 0 = python, 1 = java, 2 = c." in markdown
    assert "macro averages over the classes" in markdown
    assert "python|java|c" in paths["csv"].read_text()
