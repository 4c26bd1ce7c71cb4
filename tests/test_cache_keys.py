"""Every cache key holds everything its content depends on.

The caches: student tokenizers, teacher knowledge, fine-tuned teachers, the scratch
teacher's initial folder, the surrogate's runs and the measuring meters' ``RunDirCache``.
Each must change key when the task's labels (``num_labels``, ``label_names``), the data,
its own inputs (architecture, tokenizer, options) or its format version change. And a run
after ``num_labels`` changed must never load an entry built for the old value (the scratch
teacher used to, and failed with a size mismatch).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avatar.distill.student import tokenizer_key
from avatar.plugins.indicators.surrogate import SurrogateIndicator
from avatar.plugins.teachers.huggingface import HuggingFaceTeacher
from avatar.plugins.teachers.scratch import ScratchTeacher
from avatar.search.objectives import MeterContext
from avatar.search.space import Candidate
from avatar.task.base import Example, Split, Task
from avatar.teach.teacher import Knowledge, TeacherContext, cache_path, teacher_knowledge
from tests.helpers import codelang_records, load_space

torch.set_num_threads(1)

CPU_TRAINER = {
    "accelerator": "cpu", "devices": 1, "max_epochs": 1, "max_steps": 2, "enable_progress_bar": False,
}
TINY = {
    "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
    "attention_probs_dropout_prob": 0.1, "max_sequence_length": 64, "position_embedding_type": "absolute",
    "learning_rate": 1e-3, "batch_size": 16,
}
SMALL_TEACHER = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                 "vocab_size": 300, "max_length": 64, "patience": 0}


class Toy(Task):
    """Python and Java snippets (labels 0 and 1) under whatever ``num_labels`` a variant sets."""

    name = "toy"
    num_labels = 2
    edited = False  # a variant with one snippet changed: other data

    def read_split(self, split: Split) -> list[Example]:
        records = [r for r in codelang_records() if r["split"] == split and r["label"] < 2]
        examples = [Example(r["code"], r["label"], id=f"{split}-{i}") for i, r in enumerate(records)]
        if self.edited:
            examples[0] = Example(examples[0].code + "# edited\n", examples[0].label, id=examples[0].id)
        return examples


def variant(**attributes: Any) -> Task:
    return type("Variant", (Toy,), attributes)()


def _context(tmp: Path) -> TeacherContext:
    return TeacherContext(tmp / "cache", tmp / "run", dict(CPU_TRAINER))


def _knowledge(task: Task, teacher: str = "teacher") -> Knowledge:
    rows = len(task.read_split("unlabel_train"))
    return Knowledge(task.name, teacher, task.fingerprint("unlabel_train"), hard_labels=np.zeros(rows))


SPACE = load_space("tiny")
CANDIDATE = Candidate.from_dict(TINY)

# Each cache's key (a str or a path) for a task; its format constant (module, name).
KEYS: dict[str, tuple[Callable[[Task, Path], Any], tuple[str, str]]] = {
    "tokenizer": (lambda task, tmp: tokenizer_key(task), ("avatar.distill.student", "TOKENIZER_FORMAT")),
    "knowledge": (lambda task, tmp: cache_path(tmp, task, ScratchTeacher(**SMALL_TEACHER), _context(tmp)),
                  ("avatar.teach.teacher", "KNOWLEDGE_FORMAT")),
    "fine-tuned teacher": (lambda task, tmp: HuggingFaceTeacher("org/model").model_dir(task, _context(tmp)),
                           ("avatar.plugins.teachers.huggingface", "MODEL_FORMAT")),
    "scratch initial weights": (
        lambda task, tmp: ScratchTeacher(**SMALL_TEACHER).initial_dir(task, _context(tmp)),
        ("avatar.plugins.teachers.scratch", "INIT_FORMAT"),
    ),
    "surrogate runs": (lambda task, tmp: SurrogateIndicator().cache_key(task, _knowledge(task), SPACE),
                       ("avatar.plugins.indicators.surrogate", "SURROGATE_FORMAT")),
    "meter measurements": (
        lambda task, tmp: MeterContext(SPACE, task.num_labels).cache_key(CANDIDATE, runs=3),
        ("avatar.search.objectives", "MEASUREMENT_FORMAT"),
    ),
}
# A random-weight model's latency or energy reads neither the data nor the class names
# (only their number: the head's size).
DATA_FREE = NAME_FREE = {"meter measurements"}


@pytest.mark.parametrize("cache", list(KEYS))
def test_labels_data_and_format_change_the_key(
    cache: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, (module, constant) = KEYS[cache]
    base = key(Toy(), tmp_path)
    assert key(Toy(), tmp_path) == base, "a key must be stable"
    assert key(variant(num_labels=3), tmp_path) != base, "num_labels"
    if cache not in NAME_FREE:
        assert key(variant(label_names=("python", "java")), tmp_path) != base, "label_names"
    if cache not in DATA_FREE:
        assert key(variant(edited=True), tmp_path) != base, "data"
    monkeypatch.setattr(f"{module}.{constant}", 999)
    assert key(Toy(), tmp_path) != base, constant


def test_own_inputs_change_the_key(tmp_path: Path) -> None:
    """Architecture, tokenizer and options: what each cache adds beyond the task."""
    task, context = Toy(), _context(tmp_path)
    scratch = ScratchTeacher(**SMALL_TEACHER)
    for other in (ScratchTeacher(**{**SMALL_TEACHER, "hidden_size": 64}),
                  ScratchTeacher(**{**SMALL_TEACHER, "vocab_size": 400}),
                  ScratchTeacher(**{**SMALL_TEACHER, "max_length": 128})):
        assert other.initial_dir(task, context) != scratch.initial_dir(task, context)
        assert cache_path(tmp_path, task, other, context) != cache_path(tmp_path, task, scratch, context)
    model = HuggingFaceTeacher("org/model").model_dir(task, context)
    assert HuggingFaceTeacher("org/other").model_dir(task, context) != model
    assert HuggingFaceTeacher("org/model").model_dir(variant(headline_metric="f1"), context) != model
    surrogate = SurrogateIndicator().cache_key(task, _knowledge(task), SPACE)
    assert SurrogateIndicator().cache_key(task, _knowledge(task, "another teacher"), SPACE) != surrogate
    assert SurrogateIndicator(samples=4).cache_key(task, _knowledge(task), SPACE) != surrogate
    assert SurrogateIndicator().cache_key(variant(temperature=4.0), _knowledge(task), SPACE) != surrogate
    context_2 = MeterContext(SPACE, 2)
    measured = context_2.cache_key(CANDIDATE, runs=3)
    for dimension, value in (("hidden_size", 64), ("tokenizer", "WordPiece"), ("vocab_size", 2000)):
        assert context_2.cache_key(Candidate.from_dict({**TINY, dimension: value}), runs=3) != measured
    assert context_2.cache_key(CANDIDATE, runs=4) != measured


def test_changing_num_labels_after_a_run_never_reuses_the_old_entry(tmp_path: Path) -> None:
    """Same data, same teacher and cache: 2 labels, then 3. Every cache gets a new entry."""
    from avatar.distill.settings import DistillSettings
    from avatar.distill.train import distill_candidate
    from avatar.plugins.meters.latency import LatencyMeter

    context = _context(tmp_path)
    teacher = ScratchTeacher(**SMALL_TEACHER)
    settings = DistillSettings(fast=True, eval_batch_size=64)
    candidate = SPACE.validate(TINY)
    meter = LatencyMeter(runs=1, warmup=0)
    widths, latencies = [], []
    for num_labels in (2, 3):
        task = variant(num_labels=num_labels)
        knowledge, from_cache, _ = teacher_knowledge(task, teacher, context)
        assert not from_cache, f"num_labels={num_labels} reused knowledge built for another value"
        widths.append(knowledge.logits.shape[1])
        distill_candidate(candidate, task, knowledge, settings, cache_dir=context.cache_dir,
                          trainer={"max_steps": 1, "accelerator": "cpu"})
        run_dir = str(tmp_path / "search")
        latencies.append(meter.measure(candidate, MeterContext(SPACE, num_labels, run_dir)))
    assert widths == [2, 3]
    cache = context.cache_dir
    assert len(list((cache / "teachers").glob("scratch-init-toy-*"))) == 2
    assert len([p for p in (cache / "teachers").glob("toy-*") if p.is_dir()]) == 2
    assert len(list((cache / "knowledge").glob("toy-*.npz"))) == 2
    assert len(list((cache / "tokenizers").glob("toy-*"))) == 2
    assert len(json.loads((tmp_path / "search" / "latency_cache.json").read_text())) == 2
