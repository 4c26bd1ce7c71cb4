"""Stage 1, the teacher: ``python train.py stage=teacher``, its cache, and both teacher plugins.

A tiny RoBERTa teacher (1 layer, hidden 32, a 500-entry BPE tokenizer trained on Devign
functions) is saved to a temporary folder and fine-tuned for a few steps on real Devign
examples, so the Hugging Face path runs end to end offline in seconds. The paper's
BigCloneBench teachers come from the shared logits files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from avatar.core.errors import AvatarError, DataError
from avatar.core.registry import TEACHERS
from avatar.plugins.tasks.clone import CloneTask
from avatar.plugins.tasks.vuln import VulnTask
from avatar.plugins.teachers.huggingface import MARKER, HuggingFaceTeacher, load_pretrained
from avatar.plugins.teachers.predictions import PredictionsTeacher
from avatar.stages import build_teacher, teacher_stage
from avatar.teach.teacher import Knowledge, TeacherContext, teacher_knowledge
from tests.conftest import REPO, require_data

torch.set_num_threads(1)

CPU_TRAINER = {
    "accelerator": "cpu", "devices": 1, "max_epochs": 1, "max_steps": 2, "enable_progress_bar": False,
}


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 1-layer RoBERTa classifier and its BPE tokenizer (trained on 200 Devign functions)."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from avatar.distill.tokenizer import train_tokenizer

    devign = require_data("devign")
    tokenizer = train_tokenizer("BPE", 500, VulnTask(str(devign), limit=200).texts("valid"), max_length=128)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_teacher")
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _overrides(teacher_dir: Path, cache: Path) -> list[str]:
    return [
        "stage=teacher", "task=vuln", "teacher=codebert", f"teacher.path={teacher_dir}",
        "teacher.max_length=64", "data.limit=16", "teacher.trainer.max_steps=3", "trainer.accelerator=cpu",
        "logger=none", f"paths.cache={cache}",
    ]


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("train", overrides=overrides)


def _context(tmp_path: Path, **trainer: object) -> TeacherContext:
    return TeacherContext(tmp_path / "cache", tmp_path / "run", {**CPU_TRAINER, **trainer})


# ------------------------------------------------------------------ the stage, end to end


def test_train_py_teacher_stage_fine_tunes_then_reuses_the_cache(tiny_teacher: Path, tmp_path: Path) -> None:
    cache, run = tmp_path / "cache", tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "train.py", *_overrides(tiny_teacher, cache), f"hydra.run.dir={run}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # on a shared CPU, idle-waiting threads cost 20x
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "computed and cached" in done.stdout + done.stderr
    [knowledge_file] = (cache / "knowledge").glob("vuln-*.npz")
    [model_dir] = (cache / "teachers").glob("vuln-*")
    assert (model_dir / MARKER).is_file() and (model_dir / "config.json").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert not list(run.rglob("*.ckpt")), "Lightning checkpoints are removed once the model is cached"
    summary = json.loads((run / "teacher.json").read_text())
    assert summary["from_cache"] is False and summary["examples"] == 16 and summary["soft"] is True
    assert summary["model_dir"] == str(model_dir)  # what `stage=report report.teacher=` takes
    first = Knowledge.load(knowledge_file)
    assert first.logits.shape == (16, 2) and np.isfinite(first.logits).all()
    assert set(first.gold.tolist()) <= {0, 1}

    # The cached knowledge file is itself a predictions file (GPU server -> laptop).
    copied, _, _ = teacher_knowledge(
        VulnTask(str(require_data("devign")), limit=16), PredictionsTeacher(str(knowledge_file)),
        _context(tmp_path / "laptop"),
    )
    np.testing.assert_array_equal(copied.logits, first.logits)
    with pytest.raises(DataError, match="computed on other unlabeled data"):
        teacher_knowledge(
            VulnTask(str(require_data("devign")), limit=16, seed=1), PredictionsTeacher(str(knowledge_file)),
            _context(tmp_path / "laptop"),
        )

    # The same command again (in-process, to skip a second cold start) reads the cache.
    rerun = tmp_path / "rerun"
    started = time.perf_counter()
    again = teacher_stage(_compose(_overrides(tiny_teacher, cache)), rerun)
    print(f"cache hit in {time.perf_counter() - started:.2f} s")
    assert json.loads((rerun / "teacher.json").read_text())["from_cache"] is True
    assert not (rerun / "teacher_logs").exists(), "a cache hit must not fine-tune"
    np.testing.assert_array_equal(again.logits, first.logits)



def test_identity_covers_options_budget_and_data(tmp_path: Path) -> None:
    """A 5-step smoke teacher never shares a cache entry with a real one, nor with other data."""
    task = VulnTask(str(require_data("devign")), limit=16)
    teacher = HuggingFaceTeacher("some/model")
    base = teacher.cache_identity(task, _context(tmp_path))
    assert teacher.cache_identity(task, _context(tmp_path, max_steps=5)) != base
    assert teacher.cache_identity(task, _context(tmp_path, max_epochs=10)) != base
    assert HuggingFaceTeacher("some/model", lr=1e-5).cache_identity(task, _context(tmp_path)) != base
    assert HuggingFaceTeacher("some/model", seed=1).cache_identity(task, _context(tmp_path)) != base
    assert HuggingFaceTeacher("some/model", max_length=256).cache_identity(task, _context(tmp_path)) != base
    assert HuggingFaceTeacher("some/model", data_flow=True).cache_identity(task, _context(tmp_path)) != base
    other_data = VulnTask(str(require_data("devign")), limit=16, seed=1)
    assert teacher.cache_identity(other_data, _context(tmp_path)) != base
    # Where the run happens (CPU or GPU) does not change the teacher.
    assert teacher.cache_identity(task, _context(tmp_path, accelerator="gpu")) == base


def test_data_flow_teacher_on_single_snippets(tiny_teacher: Path, tmp_path: Path) -> None:
    task = VulnTask(str(require_data("devign")), limit=16)
    plain = HuggingFaceTeacher(str(tiny_teacher), max_length=64)
    flow = HuggingFaceTeacher(str(tiny_teacher), data_flow=True, max_length=64, data_flow_length=16)
    context = _context(tmp_path, max_steps=1)  # stops mid-epoch: no validation ran, the last weights count
    assert plain.model_dir(task, context) != flow.model_dir(task, context)
    knowledge, from_cache, _ = teacher_knowledge(task, flow, context)
    assert not from_cache and knowledge.logits.shape == (16, 2) and np.isfinite(knowledge.logits).all()
    assert (flow.model_dir(task, context) / MARKER).is_file()


def test_packed_graph_batches_equal_graph_inputs(tiny_teacher: Path) -> None:
    """Features are stored cut and bit-packed; a collated batch must be exactly ``graph_inputs``."""
    from transformers import AutoTokenizer

    from avatar.code.graphcodebert import graph_inputs
    from avatar.teach.finetune import Collator, encode_examples

    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    examples = VulnTask(str(require_data("devign")), limit=3).read_split("valid")
    batch = Collator(tokenizer.pad_token_id)(
        encode_examples(tokenizer, examples, 64, labels=[0, 1, 0], data_flow=True, data_flow_length=16)
    )
    full = [graph_inputs(tokenizer, e.code, "c", 48, 16) for e in examples]
    length = batch["input_ids"].shape[1]
    assert length == max(int(g["position_idx"].ne(1).sum()) for g in full)
    for key in ("input_ids", "position_idx"):
        assert torch.equal(batch[key], torch.stack([g[key][:length] for g in full])), key
    assert torch.equal(batch["attn_mask"], torch.stack([g["attn_mask"][:length, :length] for g in full]))
    assert batch["targets"].tolist() == [0, 1, 0]


def test_data_flow_on_pairs_falls_back_to_token_pairs(
    tiny_teacher: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task = CloneTask(str(require_data("bigclonebench")), limit=8)
    teacher = HuggingFaceTeacher(str(tiny_teacher), data_flow=True, max_length=64)
    with caplog.at_level("WARNING", logger="avatar"):
        knowledge, _, _ = teacher_knowledge(task, teacher, _context(tmp_path, max_steps=1))
    assert "single-snippet tasks only" in caplog.text
    assert knowledge.logits.shape == (8, 2)
    assert knowledge.gold.shape == (8,) and (knowledge.gold >= 0).all()


def test_offline_hub_id_fails_fast_in_one_line() -> None:
    started = time.perf_counter()
    with pytest.raises(AvatarError) as raised:
        load_pretrained("microsoft/codebert-base", num_labels=2)
    elapsed = time.perf_counter() - started
    message = str(raised.value)
    print(f"offline hub id failed in {elapsed:.2f} s: {message}")
    assert "\n" not in message and "teacher.path=<local dir>" in message
    assert elapsed < 10  # offline it is a local lookup (~2 s); online retries would take 20+ s


def test_missing_local_teacher_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match="no such folder"):
        load_pretrained(str(tmp_path / "nope"), num_labels=2)
    with pytest.raises(AvatarError, match="cannot load a model"):
        load_pretrained(str(tmp_path), num_labels=2)


# ------------------------------------------------------------------ predictions files


@pytest.fixture(scope="module")
def clone_full() -> CloneTask:
    """The whole BigCloneBench task, parsed once for the tests below."""
    return CloneTask(str(require_data("bigclonebench")))


def test_paper_teachers_on_bigclonebench(clone_full: CloneTask, tmp_path: Path) -> None:
    require_data("bigclonebench", "teacher_logits", "codebert_unlabel_train.npy")
    agreements = {}
    for name in ("paper_codebert", "paper_graphcodebert"):
        cfg = _compose(["stage=teacher", "task=clone", f"teacher={name}", "logger=none"])
        knowledge, _, _ = teacher_knowledge(clone_full, build_teacher(cfg), _context(tmp_path))
        assert len(knowledge) == 45_051 and knowledge.soft and knowledge.logits.shape == (45_051, 2)
        agreements[name] = knowledge.gold_agreement()
        assert 0.99 < agreements[name] < 1.0
    print(f"gold agreement: {agreements}")  # README: 99.62% (CodeBERT), 99.28% (GraphCodeBERT)


def test_hard_labels_shipped_with_the_task(clone_full: CloneTask, tmp_path: Path) -> None:
    cfg = _compose(["stage=teacher", "task=clone", "teacher=bcb_hard_labels", "logger=none"])
    knowledge, _, _ = teacher_knowledge(clone_full, build_teacher(cfg), _context(tmp_path))
    assert not knowledge.soft and len(knowledge) == 45_051
    assert 0.99 < knowledge.gold_agreement() < 1.0
    with pytest.raises(DataError, match="carry no teacher label"):
        teacher_knowledge(VulnTask(str(require_data("devign")), limit=4), PredictionsTeacher(source="task"),
                          _context(tmp_path))


def test_a_limit_takes_the_first_rows_of_the_file(tmp_path: Path) -> None:
    logits_file = require_data("bigclonebench", "teacher_logits", "codebert_unlabel_train.npy")
    task = CloneTask(str(require_data("bigclonebench")), limit=100)
    knowledge, _, _ = teacher_knowledge(task, PredictionsTeacher(str(logits_file)), _context(tmp_path))
    np.testing.assert_array_equal(knowledge.logits, np.load(logits_file)[:100])
    assert knowledge.gold.shape == (100,)


def test_wrong_length_names_the_file_and_both_numbers(tmp_path: Path) -> None:
    task = VulnTask(str(require_data("devign")), limit=16)
    path = tmp_path / "short.npy"
    np.save(path, np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(DataError) as raised:
        teacher_knowledge(task, PredictionsTeacher(str(path)), _context(tmp_path))
    message = str(raised.value)
    assert str(path) in message and "10 predictions" in message and "16 unlabeled examples" in message
    assert "\n" not in message


def test_text_and_jsonl_formats(tmp_path: Path) -> None:
    task = VulnTask(str(require_data("devign")), limit=6)
    labels = tmp_path / "labels.txt"
    labels.write_text("1\n0\n1\n1\n0\n0\n\n")
    knowledge, _, _ = teacher_knowledge(task, PredictionsTeacher(str(labels)), _context(tmp_path))
    assert not knowledge.soft and knowledge.hard_labels.tolist() == [1, 0, 1, 1, 0, 0]

    logits = tmp_path / "logits.jsonl"
    logits.write_text("".join(json.dumps({"logits": [-i, i]}) + "\n" for i in range(6)))
    knowledge, _, _ = teacher_knowledge(task, PredictionsTeacher(str(logits)), _context(tmp_path))
    assert knowledge.soft and knowledge.logits[:, 1].tolist() == [0, 1, 2, 3, 4, 5]
    labels_teacher = PredictionsTeacher(str(logits), kind="labels")
    as_labels, _, _ = teacher_knowledge(task, labels_teacher, _context(tmp_path))
    assert not as_labels.soft and as_labels.hard_labels.tolist() == [0, 1, 1, 1, 1, 1]

    with pytest.raises(DataError, match="one label per example"):
        teacher_knowledge(task, PredictionsTeacher(str(labels), kind="logits"), _context(tmp_path / "x"))
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n0\nyes\n")
    with pytest.raises(DataError, match=r"bad\.txt:3"):
        teacher_knowledge(task, PredictionsTeacher(str(bad)), _context(tmp_path))


def test_teachers_are_registered() -> None:
    assert {"huggingface", "predictions"} <= set(TEACHERS.names())


def test_teacher_knowledge_is_computed_once_whatever_the_students_budget(tmp_path: Path) -> None:
    """``trainer.*`` is the students' budget, ``teacher.trainer.*`` the teacher's: a search with
    another students' budget reuses the knowledge ``stage=teacher`` produced."""
    from hydra import compose, initialize_config_dir

    from avatar.stages import build_task, teacher_parts

    def config(*overrides: str):
        with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
            return compose("train", overrides=[
                "task=demo", "task.size=16", "teacher=scratch", "teacher.max_length=64", "logger=none",
                "trainer.accelerator=cpu", "teacher.trainer.max_steps=2",
                f"paths.cache={tmp_path / 'cache'}", *overrides,
            ])

    produced = teacher_stage(config("stage=teacher", "trainer.max_steps=2"), tmp_path / "teacher_run")
    search_cfg = config("trainer.max_steps=7", "trainer.max_time=00:00:05:00", "trainer.val_check_interval=9")
    parts = teacher_parts(search_cfg, build_task(search_cfg), tmp_path / "search_run")
    assert np.array_equal(parts.knowledge.logits, produced.logits)
    assert parts.summary["from_cache"] is True
    assert not (tmp_path / "search_run").exists()  # nothing was fine-tuned
    # the teacher's own budget is part of its identity
    other = teacher_parts(config("teacher.trainer.max_steps=3"), build_task(search_cfg))
    assert other.teacher.cache_identity(other.task, other.context) != parts.teacher.cache_identity(
        parts.task, parts.context
    )
