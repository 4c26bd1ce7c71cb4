"""Students and distillation: sizes, losses, saved students, resume, pair tasks, the stage."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from avatar.core.errors import AvatarError
from avatar.distill.settings import DistillSettings, student_key
from avatar.distill.student import StudentDataModule, build_model, build_tokenizer, parameter_bytes
from avatar.distill.train import distill_candidate
from avatar.learn.losses import KLDivergence
from avatar.plugins.tasks.demo import DemoTask
from avatar.report.predict import Predictor
from avatar.search.cost import size_bytes
from avatar.search.space import Candidate
from avatar.search.variables import candidate_vars
from avatar.stages import distill_stage, resolve_candidate
from avatar.task.base import Example, Split, Task, label_names
from avatar.teach.teacher import Knowledge
from tests.conftest import require_data
from tests.helpers import load_space

torch.set_num_threads(1)

TINY = {
    "tokenizer": "BPE",
    "vocab_size": 1000,
    "num_hidden_layers": 1,
    "hidden_size": 32,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "attention_probs_dropout_prob": 0.1,
    "max_sequence_length": 128,
    "position_embedding_type": "absolute",
    "learning_rate": 1e-3,
    "batch_size": 16,
}


@pytest.fixture(scope="module")
def space():
    return load_space("tiny")


@pytest.fixture(scope="module")
def candidate(space) -> Candidate:
    return space.validate(TINY)


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "distill_cache"  # shared: tokenizers train once


def gold_knowledge(task: Task, soft: bool) -> Knowledge:
    """A perfect, confident stand-in teacher: the gold labels as logits (+-3) or hard labels."""
    gold = np.array([e.label for e in task.read_split("unlabel_train")], dtype=np.int64)
    fingerprint = task.fingerprint("unlabel_train")
    if soft:
        return Knowledge(
            task.name, "gold", fingerprint, logits=np.eye(task.num_labels)[gold] * 6 - 3, gold=gold
        )
    return Knowledge(task.name, "gold", fingerprint, hard_labels=gold, gold=gold)


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.losses.append(float(outputs["loss"]))


class PairDemo(Task):
    """A pair task from demo functions: (f, g), labelled with f's label (g is a distractor)."""

    name = "pairdemo"
    is_pair = True
    headline_metric = "f1"

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(limit=limit)
        self.base = DemoTask(size=40)

    def read_split(self, split: Split) -> list[Example]:
        singles = self.base.read_split(split)
        pairs = [
            Example(code=(a.code, b.code), label=a.label, id=f"{a.id}+{b.id}")  # type: ignore[arg-type]
            for a, b in zip(singles, singles[1:] + singles[:1])
        ]
        return pairs[: self.limit] if self.limit is not None else pairs


# ------------------------------------------------------------------------------ students


def test_student_size_is_the_promised_size(space) -> None:
    """Real parameter bytes equal the cost formula the search pruned with, over varied candidates."""
    rng = random.Random(3)
    checked = 0
    while checked < 6:
        candidate = space.candidate(space.random_indices(rng))
        if candidate["hidden_size"] % candidate["num_attention_heads"]:
            continue
        for labels in (2, 3):
            model = build_model(candidate, labels)
            assert parameter_bytes(model) == int(size_bytes(candidate_vars(candidate, labels))), candidate
        checked += 1


def test_soft_loss_is_kl_scaled_by_t_squared() -> None:
    teacher = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    assert float(KLDivergence(2.0)(teacher.clone(), teacher)) == pytest.approx(0.0, abs=1e-7)
    student = torch.zeros(2, 2)
    p = torch.softmax(teacher / 3.0, dim=-1)
    expected = float((p * (p.log() - np.log(0.5))).sum(dim=-1).mean()) * 9.0
    assert float(KLDivergence(3.0)(student, teacher)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("soft", [True, False], ids=["soft", "hard"])
def test_distillation_lowers_the_loss(cache, soft: bool) -> None:
    """30 steps over 32 demo functions (fast mode): the student fits its teacher.

    A wider student and a learning rate above the tiny space's (3e-3) leave the initial
    plateau within 30 steps; at 1e-3 a hidden-32 student needs about 60.
    """
    candidate = Candidate.from_dict(
        {**TINY, "hidden_size": 64, "intermediate_size": 128, "learning_rate": 3e-3}
    )
    task = DemoTask(limit=32)
    recorder = LossRecorder()
    settings = DistillSettings(fast=True, schedule="constant", warmup_ratio=0.0)
    result = distill_candidate(
        candidate, task, gold_knowledge(task, soft), settings, cache_dir=cache, callbacks=[recorder],
        trainer={"max_steps": 30, "max_epochs": -1, "limit_val_batches": 1},
    )
    assert len(recorder.losses) == 30 and result.global_step == 30
    assert np.mean(recorder.losses[-5:]) < 0.5 * np.mean(recorder.losses[:5])
    assert result.soft is soft
    assert result.student_dir is None and result.train_examples == 30 * 16
    assert (
        set(result.metrics) >= {"val/accuracy", "val/f1"}
        and result.headline == result.metrics["val/accuracy"]
    )


def test_knowledge_must_match_the_data(candidate, cache) -> None:
    task = DemoTask(limit=16)
    knowledge = gold_knowledge(DemoTask(limit=20), soft=True)
    with pytest.raises(
        AvatarError, match="20 predictions but task .demo. has 16 unlabeled examples .data.limit=16."
    ):
        distill_candidate(candidate, task, knowledge, DistillSettings(fast=True), cache_dir=cache)
    hard_only = gold_knowledge(task, soft=False)
    with pytest.raises(AvatarError, match="needs teacher logits"):
        distill_candidate(
            candidate, task, hard_only, DistillSettings(fast=True, loss="kl"), cache_dir=cache
        )


def _module_logits(model, data: StudentDataModule, split: Split) -> tuple[list, np.ndarray]:
    """The student's logits on a split, encoded exactly as in training (the data module's collate)."""
    encoded = data.split(split)
    batch = encoded.collate(list(range(len(encoded))))
    with torch.inference_mode():
        logits = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return encoded.texts, logits.numpy()


def _check_student(result, candidate: Candidate, task: Task, cache: Path) -> None:
    """Files, metadata, HF loading, Predictor agreement and the promised size of a saved student."""
    from transformers import AutoModelForSequenceClassification

    folder = result.student_dir
    meta = json.loads((folder / "avatar.json").read_text())
    assert meta["task"] == task.name and meta["is_pair"] is task.is_pair
    assert meta["max_length"] == candidate["max_sequence_length"] and meta["labels"] == label_names(task)
    assert meta["candidate"] == candidate.as_dict() and "test/f1" in meta["metrics"]
    promised = int(size_bytes(candidate_vars(candidate, task.num_labels))) / 2**20
    assert meta["size_mb"] == pytest.approx(promised, rel=1e-12) == result.size_mb
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert parameter_bytes(model) == int(size_bytes(candidate_vars(candidate, task.num_labels)))
    data = StudentDataModule(
        task, build_tokenizer(candidate, task, cache), None, 16, candidate["max_sequence_length"]
    )
    texts, expected = _module_logits(model, data, "valid")
    predicted = Predictor.load(folder).logits(texts)
    np.testing.assert_allclose(predicted, expected, atol=1e-4)


def test_full_run_resumes_and_saves_a_loadable_student(candidate, cache, tmp_path: Path) -> None:
    """A run stopped at step 2 (one epoch of 32 examples) continues from last.ckpt to step 4."""
    task = DemoTask(limit=32)
    knowledge = gold_knowledge(task, soft=True)
    out = tmp_path / "student_run"
    settings = DistillSettings(progress_bar=False)

    def run(steps: int):  # noqa: ANN202
        budget = {"max_steps": steps}
        return distill_candidate(candidate, task, knowledge, settings, out, cache_dir=cache, trainer=budget)

    first = run(2)
    last = out / "checkpoints" / "last.ckpt"
    assert first.global_step == 2 and first.resumed_from is None
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert (out / "checkpoints" / "best.ckpt").is_file()

    second = run(4)
    assert second.resumed_from == last and second.global_step == 4
    assert second.train_examples == 2 * 16  # only the two new steps ran
    assert torch.load(last, weights_only=True)["global_step"] == 4
    assert json.loads((out / "result.json").read_text())["global_step"] == 4
    _check_student(second, candidate, task, cache)
    assert not [p for p in out.iterdir() if p.name.startswith(".student")]  # no temp folders left
    from avatar.distill.front import student_curves

    curves = student_curves([{"student_dir": str(second.student_dir), "front_index": 0}])
    assert curves and {"student", "step", "val/accuracy"} <= set(curves[-1])  # what wandb gets
    # the same command again: the finished student is returned, not trained one more epoch
    third = run(4)
    assert third.global_step == 4 and third.student_dir == second.student_dir
    assert torch.load(last, weights_only=True)["global_step"] == 4


def test_pair_task_student(space, cache, tmp_path: Path) -> None:
    """Pairs are one jointly truncated sequence; the saved student predicts pairs like in training."""
    task = PairDemo(limit=24)
    candidate = space.validate(
        {
            **TINY,
            "tokenizer": "WordPiece",
            "max_sequence_length": 64,
            "position_embedding_type": "relative_key",
        }
    )
    result = distill_candidate(
        candidate, task, gold_knowledge(task, soft=False), DistillSettings(progress_bar=False),
        tmp_path / "pair", cache_dir=cache, trainer={"max_steps": 2},
    )
    assert not result.soft and "val/f1" in result.metrics and result.headline == result.metrics["val/f1"]
    _check_student(result, candidate, task, cache)
    with pytest.raises(AvatarError, match="pairs"):
        Predictor.load(result.student_dir).predict(["int main() { return 0; }"])


def test_clone_task_with_the_papers_teacher_logits(candidate, cache) -> None:
    """Real BigCloneBench pairs and the real CodeBERT teacher logits (first 20 rows)."""
    from avatar.plugins.tasks.clone import CloneTask

    logits = np.load(require_data("bigclonebench", "teacher_logits", "codebert_unlabel_train.npy"))
    task = CloneTask(limit=20)
    knowledge = Knowledge("clone", "codebert", task.fingerprint("unlabel_train"), logits=logits[:20])
    result = distill_candidate(
        candidate, task, knowledge, DistillSettings(fast=True), cache_dir=cache, trainer={"max_steps": 2}
    )
    assert result.global_step == 2 and result.headline_metric == "f1" and 0.0 <= result.headline <= 1.0


# --------------------------------------------------------------------------------- stage


def test_settings_from_config() -> None:
    settings = DistillSettings.from_config({"top_k": 3, "temperature": 4.0, "patience": 1})
    assert settings.temperature == 4.0 and settings.patience == 1
    assert DistillSettings.from_config({}, fast=True).fast
    with pytest.raises(AvatarError, match="distill.schedule must be one of linear, constant"):
        DistillSettings.from_config({"schedule": "cosine"})
    with pytest.raises(AvatarError, match="unknown distill option 'temprature'"):
        DistillSettings.from_config({"temprature": 2.0})
    with pytest.raises(AvatarError, match="unknown loss 'mse'; known losses: hard, kl, kl_cosine"):
        DistillSettings.from_config({"loss": "mse"})


def test_resolve_candidate(space, tmp_path: Path) -> None:
    members = [space.candidate([0] * len(space.names)), space.validate(TINY)]
    pareto = tmp_path / "pareto.json"
    pareto.write_text(json.dumps({"front": [{"config": m.as_dict()} for m in members]}))
    cfg = OmegaConf.create({"pareto": str(pareto), "candidate": 1})
    assert resolve_candidate(cfg, space) == members[1]
    with pytest.raises(AvatarError, match="out of range.*2 Pareto members"):
        resolve_candidate(OmegaConf.create({"pareto": str(pareto), "candidate": 5}), space)
    with pytest.raises(AvatarError, match="needs pareto="):
        resolve_candidate(OmegaConf.create({"pareto": None, "candidate": 0}), space)
    inline = OmegaConf.create({"candidate": TINY})
    assert resolve_candidate(inline, space) == members[1]
    inline.candidate.hidden_size = 33
    with pytest.raises(AvatarError, match="33 is not a value of dimension 'hidden_size'"):
        resolve_candidate(inline, space)


def test_distill_stage(space, cache, tmp_path: Path) -> None:
    """The stage: inline candidate, knowledge from the configured teacher (a predictions file of
    gold logits), output under students/<key>/; ``trainer.*`` sets the students' budget."""
    task = DemoTask(limit=32)
    logits = tmp_path / "gold.npy"
    np.save(logits, gold_knowledge(task, soft=True).logits)
    dimensions = [{"name": d.name, "choices": list(d.choices)} for d in space.dimensions]
    cfg = OmegaConf.create(
        {
            "stage": "distill",
            "task": {"name": "demo", "data_dir": None, "limit": 32, "seed": 42, "size": 400},
            "space": {"dimensions": dimensions},
            "candidate": TINY,
            "pareto": None,
            "teacher": {"name": "predictions", "path": str(logits), "kind": "logits"},
            "distill": {"top_k": 3, "temperature": 2.0, "patience": 2},
            "trainer": {"max_steps": 2, "max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False},
            "paths": {"cache": str(cache), "data": None},
        }
    )
    summary = distill_stage(cfg, tmp_path)
    key = student_key(space.validate(TINY))
    assert summary["student_dir"] == str(tmp_path / "students" / key / "student")
    assert (tmp_path / "students" / key / "student" / "model.safetensors").is_file()
    assert summary["global_step"] == 2 and "test/accuracy" in summary["metrics"]


def test_finished_students_are_read_in_the_driver_not_sent_to_the_executor(space, candidate, cache,
                                                                         tmp_path: Path) -> None:
    """A rerun of a search whose students finished sends nothing to its executor (on Ray that
    would be a start, the knowledge shipped and a worker's imports, to read a file)."""
    from avatar.distill.front import distill_front
    from avatar.run.executor import LocalExecutor

    class Refuses(LocalExecutor):
        def map(self, function, units, shared=None, costs=None):  # noqa: ANN001, ANN201
            assert not units, f"{len(units)} finished students were sent to the executor"
            return iter(())

    task = DemoTask(limit=32)
    front = [{"config": candidate.as_dict(), "objectives": {"size_mb": 0.1}}]
    arguments = (task, space, front, 1, gold_knowledge(task, soft=True), DistillSettings(progress_bar=False),
                 {"max_steps": 4, "max_epochs": -1, "limit_val_batches": 1}, tmp_path)
    first = distill_front(*arguments, cache_dir=cache)
    again = distill_front(*arguments, cache_dir=cache, executor=Refuses())
    assert again == first and len(first) == 1


class TerminateAt(Callback):
    """SIGTERM to this process after training step ``step``, as a preempting scheduler sends it."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:  # noqa: ANN001, ANN002
        if trainer.global_step == self.step:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)


def test_a_run_resumed_after_sigterm_mid_epoch_is_the_uninterrupted_run(candidate, cache, tmp_path) -> None:  # noqa: ANN001
    """Same steps, same early stop, same best weights and metrics: data order, dropout and
    early stopping continue where SIGTERM stopped them (mid-epoch, between validations)."""
    task = DemoTask(limit=64)  # 4 batches of 16 per epoch
    knowledge = gold_knowledge(task, soft=True)
    settings = DistillSettings(progress_bar=False, patience=4, checkpoint_every_n_steps=1000)
    budget = {"max_steps": 80, "max_epochs": -1, "val_check_interval": 3, "check_val_every_n_epoch": None}

    def run(out: Path, *callbacks: Callback):  # noqa: ANN202
        return distill_candidate(candidate, task, knowledge, settings, out, cache_dir=cache, trainer=budget,
                                 callbacks=callbacks)

    whole = run(tmp_path / "whole")
    with pytest.raises(SystemExit):
        run(tmp_path / "cut", TerminateAt(7))  # epoch 2, batch 3 of 4; between validations 6 and 9
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 7
    resumed = run(tmp_path / "cut")
    assert resumed.resumed_from is not None
    assert resumed.global_step == whole.global_step
    assert not list((tmp_path / "cut" / "checkpoints").glob("last-v*"))  # the SIGTERM's last.ckpt is its own
    for name, value in whole.metrics.items():
        assert resumed.metrics[name] == pytest.approx(value, abs=1e-5), name
    for kind in ("best", "last"):  # the weights it ends with: every batch and dropout mask the same
        files = [tmp_path / run / "checkpoints" / f"{kind}.ckpt" for run in ("whole", "cut")]
        weights = [torch.load(file, weights_only=True)["state_dict"] for file in files]
        for name, tensor in weights[0].items():
            torch.testing.assert_close(weights[1][name], tensor, msg=f"{kind}: {name}")


def test_the_resumable_shuffle_continues_an_epoch_where_the_loop_left_it() -> None:
    from avatar.learn.resumable import ResumableShuffle

    whole = ResumableShuffle(10, batch_size=3, seed=7)
    epochs = [list(whole), list(whole)]
    assert sorted(epochs[0]) == list(range(10)) and epochs[0] != epochs[1]
    cut = ResumableShuffle(10, batch_size=3, seed=7)
    iter_ = iter(cut)
    taken = [next(iter_) for _ in range(6)]  # two batches reached the model, a third was prefetched
    cut.took_batch(), cut.took_batch()
    next(iter_)
    resumed = ResumableShuffle(10, batch_size=3, seed=7)
    resumed.load_state_dict(cut.state_dict())
    assert taken + list(resumed) == epochs[0] and list(resumed) == epochs[1]
    # a checkpoint at an epoch's last batch resumes with the next epoch; another data set starts afresh
    done = ResumableShuffle(10, batch_size=3, seed=7)
    done.load_state_dict({**cut.state_dict(), "taken": 4})
    assert list(done) == epochs[1]
    other = ResumableShuffle(12, batch_size=3, seed=7)
    other.load_state_dict(cut.state_dict())
    assert list(other) == ResumableShuffle(12, batch_size=3, seed=7).order(0)


def test_batches_grouped_by_length_pad_less_and_still_cover_the_epoch_in_random_order() -> None:
    from avatar.learn.resumable import ResumableShuffle

    lengths = [(i * 37) % 101 for i in range(100)]  # 100 examples of scattered lengths
    grouped = ResumableShuffle(100, batch_size=8, seed=3, lengths=lengths, window_batches=4)
    plain = ResumableShuffle(100, batch_size=8, seed=3)
    first, second = list(grouped), list(grouped)
    assert sorted(first) == list(range(100)) and first != second  # every example once, a new order each epoch

    def padded(order: list[int]) -> int:  # tokens a batch of the order pads to, summed over batches
        return sum(max(lengths[i] for i in order[s:s + 8]) * len(order[s:s + 8]) for s in range(0, 100, 8))

    assert padded(first) < 0.8 * padded(plain.order(0))
    starts = [min(lengths[i] for i in first[s:s + 8]) for s in range(0, 96, 8)]
    assert starts != sorted(starts)  # the batches themselves are shuffled, not served shortest first
    # a checkpoint resumes the grouped order; a checkpoint of the plain order starts the grouped afresh
    cut = ResumableShuffle(100, batch_size=8, seed=3, lengths=lengths, window_batches=4)
    iterator = iter(cut)
    taken = [next(iterator) for _ in range(16)]
    cut.took_batch(), cut.took_batch()
    resumed = ResumableShuffle(100, batch_size=8, seed=3, lengths=lengths, window_batches=4)
    resumed.load_state_dict(cut.state_dict())
    assert taken + list(resumed) == first
    fresh = ResumableShuffle(100, batch_size=8, seed=3, lengths=lengths, window_batches=4)
    fresh.load_state_dict({**plain.state_dict(), "epoch": 0, "taken": 2})
    assert list(fresh) == first
