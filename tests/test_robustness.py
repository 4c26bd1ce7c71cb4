"""Robustness: metamorphic copies of a split, flips of a student, augmentation by copies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avatar.code.metamorphic import metamorphic_copy
from avatar.core.errors import AvatarError
from avatar.distill.settings import DistillSettings
from avatar.distill.student import StudentDataModule, build_tokenizer
from avatar.distill.train import distill_candidate
from avatar.plugins.tasks.demo import DemoTask
from tests.helpers import load_space
from tests.test_distill import TINY, PairDemo, gold_knowledge


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "robustness_cache"


def test_a_copy_is_seeded_cached_and_renames_only_names(cache: Path) -> None:
    task = DemoTask(limit=24)
    copy = metamorphic_copy(task, "test", cache, "rename", seed=0)
    originals = [e.code for e in task.read_split("test")]
    assert len(copy.codes) == len(originals) and copy.skipped == 0 and copy.changed > 0
    assert any(c != o for c, o in zip(copy.codes, originals))
    files = sorted((cache / "metamorphic").glob("demo-test-rename-*.json.gz"))
    assert len(files) == 1
    again = metamorphic_copy(task, "test", cache, "rename", seed=0)  # read from the cache
    assert again.codes == copy.codes
    assert metamorphic_copy(task, "test", cache, "rename", seed=1).codes != copy.codes


def test_pairs_transform_both_functions_the_same_way_everywhere(cache: Path) -> None:
    task = PairDemo(limit=16)
    copy = metamorphic_copy(task, "test", cache)
    seen: dict[str, str] = {}
    originals = [e.code for e in task.read_split("test")]
    for (first, second), (new_first, new_second) in zip(originals, copy.codes):
        assert new_first != first or new_second != second
        for old, new in ((first, new_first), (second, new_second)):
            assert seen.setdefault(old, new) == new  # one function, one copy


def test_a_language_without_a_parser_is_one_line(cache: Path) -> None:
    class Python(DemoTask):
        language = "python"

    with pytest.raises(AvatarError, match="no metamorphic copies for language 'python'"):
        metamorphic_copy(Python(limit=8), "test", cache)


def test_augmentation_adds_each_copy_with_the_originals_targets(cache: Path) -> None:
    task = DemoTask(limit=24)
    candidate = load_space("tiny").validate(TINY)
    knowledge = gold_knowledge(task, soft=True)
    copies = [metamorphic_copy(task, "unlabel_train", cache, seed=seed) for seed in (1, 2)]
    tokenizer = build_tokenizer(candidate, task, cache)
    plain = StudentDataModule(task, tokenizer, knowledge, 8, 128).split("unlabel_train")
    augmented = StudentDataModule(task, tokenizer, knowledge, 8, 128, augmented=copies).split("unlabel_train")
    kept = [len(c.kept) for c in copies]
    assert len(augmented) == len(plain) + sum(kept)
    np.testing.assert_array_equal(augmented.targets[len(plain): len(plain) + kept[0]].numpy(),
                                  plain.targets[np.array(copies[0].kept)].numpy())
    assert augmented.texts[len(plain)] == copies[0].codes[copies[0].kept[0]]


def test_every_student_reports_its_flips(cache: Path, tmp_path: Path) -> None:
    task = DemoTask(limit=32)
    candidate = load_space("tiny").validate(TINY)
    settings = DistillSettings(progress_bar=False, augment="rename")
    result = distill_candidate(candidate, task, gold_knowledge(task, soft=True), settings, tmp_path / "run",
                               cache_dir=cache, trainer={"max_steps": 2})
    metrics = result.metrics
    assert metrics["test/flip_examples"] == len(task.read_split("test"))
    assert 0 <= metrics["test/flips"] <= metrics["test/flip_examples"]
    assert metrics["test/flip_rate"] == pytest.approx(metrics["test/flips"] / metrics["test/flip_examples"])
    saved = json.loads((result.student_dir / "avatar.json").read_text())["metrics"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(result.student_dir / "README.md")  # the Hub's own parser
    assert card.data.pipeline_tag == "text-classification" and "avatar" in card.data.tags
    assert f"**{int(metrics['test/flips'])}** of" in card.text and "`vulnerable` (1)" in card.text
    weights = result.student_dir / "model.safetensors"
    assert weights.stat().st_mode & 0o044 == 0o044  # readable by others: a student is meant to be shared
    assert saved["test/flips"] == metrics["test/flips"]
    # the card's pipeline, as a user copies it: a 2,000-token function needs no argument per call
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(result.student_dir), truncation=True)
    long_function = "int f(int a) { " + " ".join(f"a = a + {i};" for i in range(500)) + " return a; }"
    assert len(classify.tokenizer(long_function)["input_ids"]) > 2000
    assert classify(long_function)[0]["label"] in ("not vulnerable", "vulnerable")
    with pytest.raises(AvatarError, match="distill.augment: unknown transform 'shuffle'; known transforms"):
        DistillSettings.from_config({"augment": "shuffle"})


def test_a_canonical_names_student_reads_a_renamed_copy_as_its_original(cache: Path, tmp_path: Path) -> None:
    """``distill.canonical_names``: every split is read in canonical form, the test copy's flips
    are measured on its canonical form too (none, by construction), avatar.json says so, and the
    predictor canonicalizes what a user passes, so a renamed function gets the same answer."""
    from avatar.code.metamorphic import canonical_split
    from avatar.report.predict import Predictor

    task = DemoTask(limit=32)
    candidate = load_space("tiny").validate(TINY)
    settings = DistillSettings(progress_bar=False, canonical_names=True, measure_energy=False)
    result = distill_candidate(candidate, task, gold_knowledge(task, soft=True), settings, tmp_path / "run",
                               cache_dir=cache, trainer={"max_steps": 2})
    assert result.metrics["test/flips"] == 0 and result.metrics["test/flip_examples"] > 0
    assert json.loads((result.student_dir / "avatar.json").read_text())["canonical_names"] is True
    canonical = canonical_split(task, "test", cache)
    originals = [e.code for e in task.read_split("test")]
    assert sum(c != o for c, o in zip(canonical, originals)) > len(originals) // 2
    renamed = metamorphic_copy(task, "test", cache, "rename", seed=0)
    kept = renamed.kept[:8]
    predictor = Predictor.load(result.student_dir)
    assert predictor.meta.canonical_names
    assert "canonical names" in (result.student_dir / "README.md").read_text()  # the card says so
    assert list((cache / "tokenizers").glob("demo-*-canonical*"))  # its tokenizer learned canonical code
    np.testing.assert_allclose(predictor.logits([originals[i] for i in kept]),
                               predictor.logits([renamed.codes[i] for i in kept]), rtol=1e-5)
    with pytest.raises(AvatarError, match="canonical_names with distill.augment"):
        DistillSettings(canonical_names=True, augment="rename").check()


def test_canonical_names_auto_is_decided_once_by_the_tasks_language_and_augment() -> None:
    """``distill.canonical_names: auto``: on for a language the transforms parse, off for one they
    do not and beside ``augment``; anything but true, false or auto is one line."""

    class PythonDemo(DemoTask):
        language = "python"

    auto = DistillSettings(canonical_names="auto")
    assert auto.for_task(DemoTask(limit=8)).canonical_names is True
    assert auto.for_task(PythonDemo(limit=8)).canonical_names is False
    beside_augment = DistillSettings(canonical_names="auto", augment="rename")
    assert beside_augment.for_task(DemoTask(limit=8)).canonical_names is False
    assert DistillSettings(canonical_names=False).for_task(DemoTask(limit=8)).canonical_names is False
    with pytest.raises(AvatarError, match="true, false or auto, got 'yes'"):
        DistillSettings(canonical_names="yes").check()


def test_an_indicators_extra_objectives_follow_effectiveness_in_every_list() -> None:
    from avatar.search.objectives import EffectivenessIndicator, Objectives
    from avatar.search.space import Candidate

    class Robust(EffectivenessIndicator):
        extra_objectives = [("flip_rate", "min")]

        def predict(self, candidate: Candidate, context) -> float:  # noqa: ANN001
            return 0.9

        def predict_extra(self, candidate: Candidate, context) -> dict[str, float]:  # noqa: ANN001
            return {"flip_rate": 0.1}

    from avatar.core.registry import METERS

    objectives = Objectives(Robust(), [METERS.create("size_mb")])
    assert objectives.names == ["effectiveness", "flip_rate", "size_mb"]
    assert objectives.directions == ["max", "min", "min"]


@pytest.mark.slow
def test_robustness_is_a_search_objective_from_the_brief_runs(tmp_path: Path) -> None:
    """``indicator.robustness=true``: each brief run counts its validation flips, a second ridge
    predicts the flip rate, and the front minimises it beside effectiveness and the costs."""
    import numpy as np
    from hydra import compose, initialize_config_dir

    from avatar import stages
    from avatar.plugins.tasks.demo import DemoTask
    from tests.conftest import REPO

    gold = np.array([e.label for e in DemoTask(size=200).read_split("unlabel_train")])
    logits = tmp_path / "gold.npy"
    np.save(logits, (np.eye(2)[gold] * 6 - 3).astype(np.float32))
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=[
            "experiment=demo", "task.size=200", "teacher=predictions", f"teacher.path={logits}",
            "teacher.kind=logits", "indicator.samples=3", "indicator.max_steps=10",
            "indicator.robustness=true", "search.population=6", "search.generations=1", "distill.top_k=0",
            "logger=none",
            f"paths.cache={tmp_path / 'cache'}",
        ])
    result = stages.search(cfg, tmp_path / "run")
    pareto = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert pareto["objectives"]["flip_rate"] == "min"
    assert all(0.0 <= member["objectives"]["flip_rate"] <= 1.0 for member in result["front"])
    runs = json.loads((tmp_path / "run" / "surrogate.json").read_text())["runs"]
    assert len(runs) == 3 and all(0.0 <= run["val_flip_rate"] <= 1.0 for run in runs)
