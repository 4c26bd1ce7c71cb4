"""The classical TF-IDF + LR model: the ``tfidf`` teacher and the report's baseline row.

Everything runs on generated data (the demo task, and pairs built from it) in seconds:
the knowledge's shape, determinism, quality above chance, the pair features' point (a
bag of both functions cannot tell a copy from a stranger, the product and difference can),
one-line errors, and the baseline row in a rendered report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from avatar.core.errors import AvatarError
from avatar.core.registry import TASKS, TEACHERS
from avatar.plugins.teachers.tfidf import TfidfTeacher
from avatar.report.baseline import BASELINE_NAME, baseline_row
from avatar.report.render import build_report
from avatar.report.stage import ReportOptions
from avatar.stages import build_teacher
from avatar.task.base import Example, Split, Task
from avatar.teach.teacher import TeacherContext, teacher_knowledge
from avatar.teach.tfidf import CodeAnalyzer, TfidfClassifier, TfidfOptions
from tests.conftest import REPO
from tests.helpers import Copies


class Unlabeled(Task):
    """A task whose labeled half has no gold labels (or, with ``empty``, no examples at all)."""

    name = "unlabeled"

    def __init__(self, empty: bool = False) -> None:
        super().__init__()
        self.empty = empty

    def read_split(self, split: Split) -> list[Example]:
        if split == "label_train" and self.empty:
            return []
        return [Example(code=f"int f{i}(void) {{ return {i}; }}", label=None) for i in range(4)]


@pytest.fixture(scope="module")
def demo() -> Task:
    return TASKS.create("demo", size=200)


def _context(tmp_path: Path) -> TeacherContext:
    return TeacherContext(tmp_path / "cache", tmp_path / "run", {})


def test_tokens_keep_operators_and_split_identifiers() -> None:
    terms = CodeAnalyzer((1, 2))("if (readBuf_len >= 0x10) p->next++;")
    assert {"readBuf_len", ">=", "0x10", "->", "++", "(", "p ->", "-> next"} <= set(terms)
    assert {"read", "buf", "len"} <= set(terms)  # the parts of a compound identifier
    assert "if" in terms and "p" in terms and "next" in terms  # plain words are not split again


def test_the_teacher_on_the_demo_task(demo: Task, tmp_path: Path) -> None:
    teacher = TEACHERS.build({"name": "tfidf", "max_features": 5000})
    knowledge = teacher.produce(demo, _context(tmp_path))
    assert knowledge.logits.shape == (len(demo.read_split("unlabel_train")), 2)
    assert knowledge.logits.dtype == np.float32 and np.isfinite(knowledge.logits).all()
    assert knowledge.gold_agreement() > 0.65  # chance is 0.5 (the classes are balanced)
    again = TfidfTeacher(max_features=5000).produce(demo, _context(tmp_path))
    np.testing.assert_array_equal(again.logits, knowledge.logits)  # deterministic for a seed

    cached, from_cache, path = teacher_knowledge(demo, teacher, _context(tmp_path))
    assert not from_cache and path.is_file()
    np.testing.assert_array_equal(cached.logits, knowledge.logits)
    assert teacher_knowledge(demo, teacher, _context(tmp_path))[1]  # the second time: from the cache
    other = TfidfTeacher(max_features=5000, C=0.5)
    assert other.cache_identity(demo, _context(tmp_path)) != teacher.cache_identity(demo, _context(tmp_path))


def test_pair_features_see_similarity_where_a_bag_of_both_cannot() -> None:
    task = Copies()
    knowledge = TfidfTeacher().produce(task, TeacherContext(Path("unused"), Path("unused"), {}))
    assert knowledge.logits.shape == (len(task.read_split("unlabel_train")), 2)
    assert knowledge.gold is not None and knowledge.gold_agreement() >= 0.9
    test = task.read_split("test")
    codes, gold = [e.code for e in test], np.array([e.label for e in test])
    train = task.read_split("label_train")
    labeled = ([e.code for e in train], [int(e.label) for e in train])  # type: ignore[arg-type]
    pairs = TfidfClassifier().fit(*labeled, num_labels=2)
    bag = TfidfClassifier(TfidfOptions.create(pair_features=["sum"])).fit(*labeled, num_labels=2)
    assert (pairs.predict(codes) == gold).mean() >= 0.9
    assert (bag.predict(codes) == gold).mean() <= 0.75
    swapped = [(b, a) for a, b in codes]  # the features are symmetric in the pair's order
    np.testing.assert_allclose(pairs.logits(swapped), pairs.logits(codes), rtol=1e-5, atol=1e-5)


def test_three_classes_and_a_class_the_labeled_half_lacks() -> None:
    codes = ["int a;", "char b;", "float c;", "int d;", "char e;", "float f;"]
    model = TfidfClassifier().fit(codes, [0, 1, 2, 0, 1, 2], num_labels=3)
    assert model.logits(["int x;"]).shape == (1, 3) and model.predict(["int x;"])[0] == 0
    binary = TfidfClassifier().fit(codes[:4], [0, 1, 0, 1], num_labels=3)  # class 2 never seen
    logits = binary.logits(["int x;"])
    assert logits.shape == (1, 3) and np.isfinite(logits).all() and logits[0, 2] < logits[0, :2].min() - 29


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_features": 0}, "teacher.max_features must be an integer >= 1, got 0"),
        ({"ngram_range": [2, 1]}, "teacher.ngram_range must satisfy 1 <= low <= high <= 4, got [2, 1]"),
        ({"ngram_range": "12"}, "teacher.ngram_range must be two integers [low, high], got '12'"),
        ({"C": -1}, "teacher.C must be a positive number, got -1"),
        ({"seed": "x"}, "teacher.seed must be an integer, got 'x'"),
        ({"pair_features": ["xor"]}, "teacher.pair_features must be a non-empty list of product, diff"),
        ({"max_feature": 10}, "teacher 'tfidf' has no option max_feature (it takes "),
    ],
)
def test_bad_options_are_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(AvatarError) as caught:
        TEACHERS.build({"name": "tfidf", **options})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (Unlabeled(), "task 'unlabeled' has no gold labels on its 4 label_train examples"),
        (Unlabeled(empty=True), "task 'unlabeled' has no label_train examples"),
    ],
)
def test_a_task_without_labeled_examples_is_one_line(task: Task, message: str, tmp_path: Path) -> None:
    for call in (TfidfTeacher().check_ready, TfidfTeacher().produce):
        with pytest.raises(AvatarError, match=message) as caught:
            call(task, _context(tmp_path))
        assert "\n" not in str(caught.value)


def test_one_class_is_one_line(tmp_path: Path) -> None:
    class OneClass(Unlabeled):
        def read_split(self, split: Split) -> list[Example]:
            return [Example(code=f"int f{i};", label=1) for i in range(4)]

    with pytest.raises(AvatarError, match=r"every labeled example has label 1; TF-IDF \+ LR needs at least"):
        TfidfTeacher().produce(OneClass(), _context(tmp_path))


def test_teacher_tfidf_composes_from_its_config() -> None:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["stage=teacher", "task=demo", "teacher=tfidf", "teacher.C=2"])
    teacher = build_teacher(cfg)
    assert isinstance(teacher, TfidfTeacher) and teacher.options == TfidfOptions.create(C=2.0)
    assert cfg.report.baseline is True and ReportOptions.from_config({"baseline": False}).baseline is False


def test_the_baseline_row_in_a_report(demo: Task, tmp_path: Path) -> None:
    found = baseline_row(demo, 20, "test")
    assert found is not None
    row = found.row
    assert (row.name, row.kind, row.backend, row.n_examples) == (BASELINE_NAME, "baseline", "sklearn", 20)
    assert row.metric_name == "accuracy" and 0 <= row.metric <= 1 and set(row.metrics) >= {"accuracy", "f1"}
    assert row.size_mb > 0 and row.latency_ms > 0 and row.energy_kwh_per_1k > 0 and row.gflops is None
    assert len(row.predictions) == 20 and "200 labeled examples" in found.note
    paths = build_report([row], tmp_path, notes=[found.note])
    markdown = paths["md"].read_text()
    assert f"| {BASELINE_NAME} | baseline |" in markdown and "| n/a |" in markdown  # GFLOPs, no ratios
    assert "fitted on the task's 200 labeled examples" in markdown
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_no_baseline_row_without_a_labeled_half(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="avatar"):
        assert baseline_row(Unlabeled(), 4) is None
    assert "no TF-IDF + LR baseline row: task 'unlabeled' has no gold labels" in caplog.text
