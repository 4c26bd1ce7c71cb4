"""The distillation recipe: learning-rate schedule, per-task temperature, collapse detection,
and the training-throughput meter. Tiny real runs (Lightning, transformers), seconds each."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from avatar.core.registry import METERS, TASKS
from avatar.distill.settings import DistillSettings, temperature_for
from avatar.distill.train import distill_candidate
from avatar.plugins.tasks.demo import DemoTask
from avatar.report.render import render_markdown
from avatar.search.objectives import MeterContext
from avatar.search.space import Candidate
from avatar.teach.teacher import Knowledge
from tests.helpers import load_space
from tests.test_distill import TINY

torch.set_num_threads(1)


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "distill_cache"


class LearningRates(Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:  # noqa: ANN001
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_linear_schedule_warms_up_then_decays_to_zero(cache) -> None:
    task = DemoTask(limit=32)
    gold = np.array([e.label for e in task.read_split("unlabel_train")])
    knowledge = Knowledge("demo", "gold", task.fingerprint("unlabel_train"), logits=np.eye(2)[gold] * 6 - 3)
    rates = LearningRates()
    distill_candidate(
        Candidate.from_dict(TINY), task, knowledge, DistillSettings(fast=True, warmup_ratio=0.2),
        cache_dir=cache, callbacks=[rates],
        trainer={"max_steps": 20, "max_epochs": -1, "limit_val_batches": 1},
    )
    peak = max(rates.rates)
    assert rates.rates[0] < 0.05 * peak  # starts near zero
    assert peak == pytest.approx(TINY["learning_rate"], rel=0.05)
    top = rates.rates.index(peak)
    assert 3 <= top <= 5  # 20% of 20 steps
    assert all(a >= b for a, b in zip(rates.rates[top:], rates.rates[top + 1 :]))  # then only decays
    assert rates.rates[-1] < 0.1 * peak


def test_each_task_brings_its_temperature() -> None:
    assert temperature_for(DistillSettings(), TASKS.create("clone")) == TASKS.get("clone").temperature
    assert temperature_for(DistillSettings(), TASKS.create("vuln")) == TASKS.get("vuln").temperature
    assert temperature_for(DistillSettings(temperature=3.0), TASKS.create("clone")) == 3.0


def test_a_collapsed_student_is_detected_logged_and_reported(cache, caplog: pytest.LogCaptureFixture) -> None:
    """A teacher that says "class 0" for everything makes a student that does too: it must say so."""
    task = DemoTask(limit=32)
    n = len(task.read_split("unlabel_train"))
    knowledge = Knowledge("demo", "constant", task.fingerprint("unlabel_train"), hard_labels=np.zeros(n, int))
    with caplog.at_level(logging.WARNING, logger="avatar"):
        result = distill_candidate(
            Candidate.from_dict({**TINY, "learning_rate": 3e-3}), task, knowledge, DistillSettings(fast=True),
            cache_dir=cache, trainer={"max_steps": 20, "max_epochs": -1},
        )
    assert result.collapsed and result.metrics["val/majority_fraction"] == 1.0
    assert result.metrics["val/selection"] < -5  # what checkpoints watch: collapse ranks last
    assert "collapsed" in caplog.text and "(final weights)" in caplog.text  # fit says its step

    from avatar.report.rows import ReportRow

    row = ReportRow("student 1", "student", 0.1, "accuracy", 0.5, 1.0, 1e-6, 1e-4, True, 10, collapsed=True)
    markdown = render_markdown([row], "t", {}, "estimated by codecarbon")
    assert "**Collapsed**" in markdown and "student 1" in markdown.split("**Collapsed**")[1]


def test_a_collapsed_epoch_never_outranks_a_learning_one() -> None:
    """On an imbalanced task one class everywhere can score the best accuracy; the checkpoint
    score puts it below any epoch that predicts both classes, and decodes back."""
    from avatar.learn.classifier import headline_of, selection_score

    collapsed, learning = selection_score(0.60, True), selection_score(0.52, False)
    assert collapsed < learning and collapsed < selection_score(-1.0, False)  # MCC's floor too
    assert headline_of(collapsed) == pytest.approx((0.60, True)) and headline_of(learning) == (0.52, False)
    assert selection_score(0.55, True) < collapsed  # among collapsed ones the order stays


def test_training_throughput_meter_measures_once(tmp_path: Path) -> None:
    space = load_space("tiny")
    candidate = space.validate(TINY)
    meter = METERS.create("train_examples_per_s", runs=1, warmup=0)
    context = MeterContext(space, 2, str(tmp_path))
    first = meter.measure(candidate, context)
    assert first > 0 and meter.direction == "max"
    assert (tmp_path / "train_speed_cache.json").is_file()
    assert meter.measure(candidate, context) == first  # cached
    with pytest.raises(ValueError, match="runs >= 1"):
        METERS.create("train_examples_per_s", runs=0)


def test_training_throughput_meter_stops_early_on_a_slow_candidate() -> None:
    """A candidate whose warmup step alone takes ``max_seconds`` is measured by that one step; a
    fast one gets all its timed steps."""
    space = load_space("tiny")
    candidate = space.validate(TINY)
    slow = METERS.create("train_examples_per_s", runs=5, warmup=1, max_seconds=0.0)
    assert slow.measure(candidate, MeterContext(space, 2)) > 0 and slow._steps_timed == 1
    patient = METERS.create("train_examples_per_s", runs=3, warmup=1, max_seconds=600.0)
    patient.measure(candidate, MeterContext(space, 2))
    assert patient._steps_timed == 3
    with pytest.raises(ValueError, match="max_seconds >= 0"):
        METERS.create("train_examples_per_s", max_seconds=-1)


def test_default_recipe_learns_a_three_class_toy(tmp_path: Path) -> None:
    """Issue 12's toy (which language is a snippet in?): a small student (2 layers, hidden
    64), the default recipe and a small budget (10 epochs of 300 snippets, 190 steps)
    reach >= 0.90 test accuracy."""
    from avatar.task.base import Example, Task
    from tests.helpers import CODELANG_LABELS, codelang_records

    records = codelang_records({"label_train": 10, "unlabel_train": 100, "valid": 20, "test": 30}, seed=1)

    class Toy(Task):
        name = "codelang_recipe_test"
        num_labels = 3
        label_names = CODELANG_LABELS

        def read_split(self, split):  # noqa: ANN001, ANN202
            return [Example(r["code"], r["label"], id=f"{split}-{i}")
                    for i, r in enumerate(records) if r["split"] == split]

    task = Toy()
    gold = np.array([e.label for e in task.read_split("unlabel_train")])
    fingerprint = task.fingerprint("unlabel_train")
    knowledge = Knowledge(task.name, "gold", fingerprint, logits=np.eye(3)[gold] * 6 - 3)
    candidate = load_space("tiny").validate(
        {**TINY, "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128}
    )
    result = distill_candidate(
        candidate, task, knowledge, DistillSettings(progress_bar=False), tmp_path / "student",
        cache_dir=tmp_path / "cache", trainer={"max_epochs": 10, "accelerator": "cpu"},
    )
    assert result.metrics["test/accuracy"] >= 0.90, result.metrics
    assert not result.collapsed


def test_a_logits_file_teacher_is_described_in_the_report_notes() -> None:
    from avatar.plugins.teachers.predictions import PredictionsTeacher
    from avatar.report.notes import logits_teacher_note

    knowledge = Knowledge("clone", "paper_codebert", "f", logits=[[2.0, 0.0], [0.0, 1.0]], gold=[0, 0])
    bare = PredictionsTeacher(path="codebert.npy")
    note = logits_teacher_note(bare, knowledge)
    assert note.startswith("Teacher codebert:") and "no teacher row" in note
    assert "2 unlabeled examples" in note and "no teacher row" in note
    assert "agree with the gold labels on 50.00% of those examples" in note
    shaped = PredictionsTeacher(path="codebert.npy", model_name="CodeBERT", architecture={"hidden_size": 32})
    note = logits_teacher_note(shaped, knowledge)
    assert "random weights" in note and "distill.holdout" in note and "no teacher row" not in note


def test_held_out_unlabeled_examples_are_never_trained_on_and_give_agreement(cache, tmp_path: Path) -> None:
    """distill.holdout keeps seeded unlabeled rows out of training; each student's agreement
    with the teacher on them lands in its result, its avatar.json and the report."""
    from avatar.distill.folder import HOLDOUT_AGREEMENT
    from avatar.distill.student import StudentDataModule, build_tokenizer
    from avatar.report.stage import student_rows

    task = DemoTask(limit=40)
    n = len(task.read_split("unlabel_train"))
    labels = np.array([e.label for e in task.read_split("unlabel_train")])
    knowledge = Knowledge("demo", "gold", task.fingerprint("unlabel_train"), hard_labels=labels)
    candidate = Candidate.from_dict(TINY)
    tokenizer = build_tokenizer(candidate, task, cache)

    def module(holdout: int, cap: int | None = None) -> StudentDataModule:
        return StudentDataModule(task, tokenizer, knowledge, 16, 128, soft=False, holdout=holdout,
                                 max_train_examples=cap)

    held_module = module(8)
    held = held_module.holdout_split()
    assert held is not None and len(held) == 8 and len(held_module.split("unlabel_train")) == n - 8
    assert not set(held.texts) & set(held_module.split("unlabel_train").texts)
    assert module(0).holdout_split() is None and len(module(0).split("unlabel_train")) == n
    # no holdout: the capped subset is the one every earlier run drew
    order = np.random.default_rng(42).permutation(n)
    expected = [task.read_split("unlabel_train")[i].code for i in np.sort(order[:10])]
    assert module(0, cap=10).split("unlabel_train").texts == expected

    result = distill_candidate(candidate, task, knowledge, DistillSettings(holdout=8, progress_bar=False),
                               tmp_path / "student", cache_dir=cache, trainer={"max_steps": 4})
    agreement = result.metrics[HOLDOUT_AGREEMENT]
    assert 0.0 <= agreement <= 1.0
    rows = student_rows(result.student_dir, task, 8, "test", export=False)
    assert rows[0].holdout_agreement == pytest.approx(agreement)
    markdown = render_markdown(rows, "t", {}, "estimated by codecarbon")
    assert "held out of every student's training" in markdown
    with pytest.raises(Exception, match="distill.holdout must be in"):
        module(n).split("unlabel_train")


def test_group_by_length_feeds_the_training_loader_and_the_signature(cache, tmp_path: Path) -> None:
    """``distill.group_by_length``: the training loader's order is grouped by the texts' lengths, a
    student trains with it, and its signature differs from the plain run's (no finished student is
    reused across the two)."""
    from avatar.distill.settings import run_signature
    from avatar.distill.student import StudentDataModule, build_tokenizer

    task = DemoTask(limit=40)
    labels = np.array([e.label for e in task.read_split("unlabel_train")])
    knowledge = Knowledge("demo", "gold", task.fingerprint("unlabel_train"), hard_labels=labels)
    candidate = Candidate.from_dict(TINY)
    tokenizer = build_tokenizer(candidate, task, cache)
    grouped = StudentDataModule(task, tokenizer, knowledge, 4, 128, soft=False, group_by_length=True)
    sampler = grouped.train_dataloader().sampler
    assert sampler.lengths is not None and len(sampler.lengths) == len(grouped.split("unlabel_train"))
    plain_data = StudentDataModule(task, tokenizer, knowledge, 4, 128, soft=False)
    assert plain_data.train_dataloader().sampler.lengths is None
    settings = DistillSettings(group_by_length=True, progress_bar=False, measure_energy=False)
    result = distill_candidate(candidate, task, knowledge, settings, tmp_path / "student", cache_dir=cache,
                               trainer={"max_steps": 3})
    assert result.global_step == 3
    plain = DistillSettings(progress_bar=False, measure_energy=False)
    assert run_signature(candidate, settings, {}) != run_signature(candidate, plain, {})


def test_a_teacher_known_by_its_architecture_gets_a_measured_cost_row_and_a_payback() -> None:
    """The paper's teachers are logits files: their architecture, built with random weights,
    gives the report a teacher row whose cost is measured and whose quality is n/a."""
    from avatar.report.measure import measure_architecture
    from avatar.report.render import greening_lines
    from avatar.report.rows import ReportRow, ratios

    task = TASKS.create("demo")
    shape = {"vocab_size": 2000, "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
             "intermediate_size": 128, "max_sequence_length": 128}
    teacher = measure_architecture(shape, task, "wide teacher", n_examples=3, threads=1)
    assert teacher.kind == "teacher" and teacher.metric is None and teacher.n_examples == 3
    assert teacher.latency_ms > 0 and teacher.energy_kwh_per_1k > 0 and teacher.gflops > 0
    assert teacher.size_mb > 0.5 and "random weights" in teacher.name
    student = ReportRow("s", "student", teacher.size_mb / 10, "accuracy", 0.8, teacher.latency_ms / 5,
                        teacher.energy_kwh_per_1k / 5, 1e-6, True, 3)
    assert ratios([teacher, student])[1]["size"] == pytest.approx(10)
    lines = greening_lines([teacher, student], {"students_kwh": 0.01})
    assert any("pays back after about" in line for line in lines)
    assert "| n/a |" in render_markdown([teacher, student], "t", {}, "estimated by codecarbon")


def test_a_teacher_that_gives_one_class_everywhere_is_called_collapsed() -> None:
    from avatar.teach.teacher import collapse_warning

    constant = Knowledge("vuln", "scratch", "f", logits=[[2.0, 0.0], [1.0, 0.5], [3.0, -1.0]])
    warning = collapse_warning(constant)
    assert warning is not None and "gives class 0 to all 3 unlabeled vuln examples" in warning
    assert collapse_warning(Knowledge("vuln", "scratch", "f", hard_labels=[0, 1, 0])) is None


def test_bf16_on_a_cpu_without_bf16_instructions_warns(monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    """Emulated bf16 is about 4x slower than fp32 (bench/train_speed_bench.py): say so up front."""
    from avatar.learn import training

    for native, expected in ((False, True), (True, False)):
        monkeypatch.setattr(training, "cpu_has_bf16", lambda native=native: native)
        monkeypatch.setattr(training, "_WARNED_PRECISIONS", set())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="avatar"):
            training.build_trainer({"precision": "bf16-mixed", "accelerator": "cpu", "max_steps": 1})
            training.build_trainer({"precision": "32-true", "accelerator": "cpu", "max_steps": 1})
            training.build_trainer({"precision": "bf16-mixed", "accelerator": "cpu", "max_steps": 1})
        assert ("without bf16 instructions" in caplog.text) is expected
        assert caplog.text.count("without bf16") <= 1  # once per process; fp32 never warns
