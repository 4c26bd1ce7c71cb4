"""The built-in tasks read the real CodeXGLUE data right, and bad data fails with file:line.

Real data comes from ``$AVATAR_DATA`` (the shared offline copies); the tests that need it
skip with a reason when it is absent. Error cases use small files written to tmp_path.
The big files are parsed once per module: the tasks are module-scoped fixtures, and
``data.jsonl`` is cached per file version by the clone task itself.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

import avatar.plugins.tasks  # noqa: F401  (registers vuln and clone until avatar.plugins imports it)
from avatar.core.errors import AvatarError, DataError
from avatar.core.registry import TASKS
from avatar.plugins.tasks.clone import CloneTask
from avatar.plugins.tasks.vuln import VulnTask, stratified_halves
from avatar.task.base import SPLITS, Example
from avatar.task.folder import require_file, resolve_data_root, resolve_task_dir

# ---------------------------------------------------------------- real data fixtures


@pytest.fixture(scope="module")
def data_root() -> Path:
    value = os.environ.get("AVATAR_DATA")
    if not value:
        pytest.skip("AVATAR_DATA is not set: point it at the shared CodeXGLUE data to run these tests")
    root = Path(value)
    if not (root / "devign").is_dir() or not (root / "bigclonebench").is_dir():
        pytest.skip(f"AVATAR_DATA={root} has no devign/ and bigclonebench/ folders")
    return root


@pytest.fixture(scope="module")
def vuln_full(data_root: Path) -> VulnTask:
    return VulnTask(data_dir=str(data_root / "devign"))


@pytest.fixture(scope="module")
def vuln_50(data_root: Path) -> VulnTask:
    return VulnTask(data_dir=str(data_root / "devign"), limit=50)


@pytest.fixture(scope="module")
def clone_full(data_root: Path) -> CloneTask:
    return CloneTask(data_dir=str(data_root / "bigclonebench"))


@pytest.fixture(scope="module")
def clone_50(data_root: Path) -> CloneTask:
    return CloneTask(data_dir=str(data_root / "bigclonebench"), limit=50)


# ---------------------------------------------------------------- registry and attributes


def test_registry_finds_both_tasks_and_lists_them_for_an_unknown_name() -> None:
    assert TASKS.get("vuln") is VulnTask
    assert TASKS.get("clone") is CloneTask
    with pytest.raises(AvatarError) as error:
        TASKS.get("nope")
    message = str(error.value)
    assert "'nope'" in message and "vuln" in message and "clone" in message


def test_task_attributes() -> None:
    vuln, clone = VulnTask(), CloneTask()  # building a task needs no data
    attributes = ("name", "language", "headline_metric", "is_pair", "num_labels")
    assert [getattr(vuln, a) for a in attributes] == ["vuln", "c", "accuracy", False, 2]
    assert [getattr(clone, a) for a in attributes] == ["clone", "java", "f1", True, 2]
    assert "vuln" in vuln.describe() and "clone" in clone.describe()


# ---------------------------------------------------------------- vuln on real data


def test_vuln_reads_every_split_with_limit(vuln_50: VulnTask) -> None:
    for split in SPLITS:
        examples = vuln_50.read_split(split)
        assert len(examples) == 50, split
        assert all(isinstance(e.code, str) and e.code and e.label in (0, 1) for e in examples)
        assert all(e.teacher_label is None for e in examples)
    assert len(vuln_50.fingerprint("test")) == 16


def test_vuln_halves_are_deterministic_disjoint_and_balanced(vuln_full: VulnTask, vuln_50: VulnTask) -> None:
    labelled, unlabelled = vuln_full.read_split("label_train"), vuln_full.read_split("unlabel_train")
    assert len(labelled) + len(unlabelled) == 21_854
    assert abs(len(labelled) - len(unlabelled)) <= 2
    ids_l, ids_u = [e.id for e in labelled], [e.id for e in unlabelled]
    assert not set(ids_l) & set(ids_u)
    # Same class balance in both halves (a class's odd member goes to label_train).
    positives_l, positives_u = sum(e.label for e in labelled), sum(e.label for e in unlabelled)
    assert positives_l + positives_u == 10_070 and 0 <= positives_l - positives_u <= 1
    # Same seed, same halves; ``limit`` takes the first examples after the split.
    assert [e.id for e in vuln_50.read_split("label_train")] == ids_l[:50]
    assert [e.id for e in vuln_50.read_split("unlabel_train")] == ids_u[:50]
    assert vuln_full.fingerprint("label_train") == vuln_full.fingerprint("label_train")


def test_vuln_other_seed_gives_other_halves(data_root: Path, vuln_50: VulnTask) -> None:
    other = VulnTask(data_dir=str(data_root), limit=50, seed=7)  # the root works as well as devign/
    assert [e.id for e in other.read_split("label_train")] != [
        e.id for e in vuln_50.read_split("label_train")
    ]
    assert [e.id for e in other.read_split("test")] == [e.id for e in vuln_50.read_split("test")]


def test_vuln_test_split_is_codexglue_test(vuln_full: VulnTask) -> None:
    test = vuln_full.read_split("test")
    assert len(test) == 2_732 and sum(e.label for e in test) == 1_255
    assert len(vuln_full.read_split("valid")) == 2_732


def test_stratified_halves_is_deterministic_and_keeps_ratios() -> None:
    labels = [1] * 31 + [0] * 69
    first, second = stratified_halves(labels, seed=3)
    assert (first, second) == stratified_halves(labels, seed=3)
    assert (first, second) != stratified_halves(labels, seed=4)
    assert sorted(first + second) == list(range(100))
    assert Counter(labels[i] for i in first) == {1: 16, 0: 35}
    assert Counter(labels[i] for i in second) == {1: 15, 0: 34}


# ---------------------------------------------------------------- clone on real data


def test_clone_reads_every_split_with_limit(clone_50: CloneTask, data_root: Path) -> None:
    for split in SPLITS:
        examples = clone_50.read_split(split)
        assert len(examples) == 50, split
        assert all(isinstance(e.code, tuple) and len(e.code) == 2 and all(e.code) for e in examples)
    assert all(e.label is None and e.teacher_label in (0, 1) for e in clone_50.read_split("unlabel_train"))
    assert all(e.label in (0, 1) and e.teacher_label in (0, 1) for e in clone_50.read_split("label_train"))
    assert all(e.label in (0, 1) for e in clone_50.read_split("test"))
    # unlabel_train keeps file order: the teachers' logits are row-aligned with it.
    lines = (data_root / "bigclonebench" / "unlabel_train.txt").read_text().splitlines()[:50]
    expected = [(f"{c[0]}-{c[1]}", int(c[3])) for c in (line.split("\t") for line in lines)]
    assert [(e.id, e.teacher_label) for e in clone_50.read_split("unlabel_train")] == expected


def test_clone_full_split_sizes(clone_full: CloneTask) -> None:
    sizes = {split: len(clone_full.read_split(split)) for split in SPLITS}
    assert sizes == {"label_train": 45_051, "unlabel_train": 45_051, "valid": 4_000, "test": 4_000}
    assert Counter(e.label for e in clone_full.read_split("test")) == {0: 2_000, 1: 2_000}


def test_clone_gold_join_covers_every_unlabelled_pair(clone_full: CloneTask) -> None:
    gold = clone_full.gold_labels_for_unlabeled()
    assert len(gold) == 45_051 and None not in gold
    teacher = [e.teacher_label for e in clone_full.read_split("unlabel_train")]
    agreement = sum(g == t for g, t in zip(gold, teacher)) / len(gold)
    assert agreement > 0.99  # the README measures 99.62% for the shipped teacher column


# ---------------------------------------------------------------- errors (tmp_path files)


def test_missing_root_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AVATAR_DATA", raising=False)
    with pytest.raises(DataError) as error:
        resolve_data_root(None)
    message = str(error.value)
    assert "paths.data=" in message and "AVATAR_DATA" in message and "CodeXGLUE" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="AVATAR_DATA"):
        VulnTask().read_split("test")
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_root(str(tmp_path / "absent"))
    monkeypatch.setenv("AVATAR_DATA", str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    assert resolve_data_root(str(tmp_path / ".")) == tmp_path / "."
    assert resolve_task_dir(None, "devign", ("test.jsonl",)) == tmp_path / "devign"


def test_missing_file_names_it_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="how to get it"):
        require_file(tmp_path / "x.txt", "how to get it")
    (tmp_path / "valid.jsonl").write_text('{"func": "int f(){}", "target": 0}\n')
    with pytest.raises(DataError) as error:
        VulnTask(data_dir=str(tmp_path)).read_split("test")
    assert str(tmp_path / "test.jsonl") in str(error.value) and "CodeXGLUE" in str(error.value)
    with pytest.raises(DataError, match="train.jsonl"):
        VulnTask(data_dir=str(tmp_path)).read_split("label_train")
    (tmp_path / "test_sampled.txt").write_text("1\t2\t0\n")
    with pytest.raises(DataError, match="data.jsonl"):
        CloneTask(data_dir=str(tmp_path)).read_split("test")


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text('{"func": "int f(){}", "target": 0}\n{"func": oops\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:2: ")):
        VulnTask(data_dir=str(tmp_path)).read_split("test")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ('{"target": 1}', "missing field 'func'"),
        ('{"func": 3, "target": 1}', "'func' must be a string"),
        ('{"func": "int f(){}"}', "missing field 'target'"),
        ('{"func": "int f(){}", "target": "1"}', "'target' must be 0 or 1"),
        ('{"func": "int f(){}", "target": 2}', "'target' must be 0 or 1"),
    ],
)
def test_bad_vuln_record_names_file_and_line(tmp_path: Path, record: str, problem: str) -> None:
    path = tmp_path / "valid.jsonl"
    # A blank line before the bad record: the reported line is the file's, not the record count.
    path.write_text('{"func": "int f(){}", "target": 0}\n\n' + record + "\n")
    with pytest.raises(DataError) as error:
        VulnTask(data_dir=str(tmp_path)).read_split("valid")
    assert str(error.value).startswith(f"{path}:3: ") and problem in str(error.value)


def _clone_dir(tmp_path: Path, pairs: str, split_file: str = "test_sampled.txt") -> Path:
    (tmp_path / "data.jsonl").write_text(
        '{"idx": "1", "func": "void a() {}"}\n{"idx": "2", "func": "void b() {}"}\n'
    )
    (tmp_path / split_file).write_text(pairs)
    return tmp_path / split_file


def test_unknown_function_id_names_file_and_line(tmp_path: Path) -> None:
    path = _clone_dir(tmp_path, "1\t2\t1\n1\t123\t0\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}:2: unknown function id 123$"):
        CloneTask(data_dir=str(tmp_path)).read_split("test")


@pytest.mark.parametrize(
    ("split", "split_file", "line", "problem"),
    [
        ("test", "test_sampled.txt", "1\t2\n", "expected 3 or 4 tab-separated columns, got 2"),
        ("test", "test_sampled.txt", "1\t2\t0\t1\t9\n", "got 5"),
        ("test", "test_sampled.txt", "1\t2\tyes\n", "column 3 must be an integer label"),
        ("test", "test_sampled.txt", "1\t2\t-1\n", "column 3 label must be in 0..1"),
        ("label_train", "label_train.txt", "1\t2\t1\tx\n", "column 4 must be an integer label"),
        ("unlabel_train", "unlabel_train.txt", "1\t2\t-1\n", "expected 4 tab-separated columns, got 3"),
    ],
)
def test_malformed_pair_line_names_file_and_line(
    tmp_path: Path, split: str, split_file: str, line: str, problem: str
) -> None:
    path = _clone_dir(tmp_path, "1\t2\t1\t1\n" + line, split_file)
    with pytest.raises(DataError) as error:
        CloneTask(data_dir=str(tmp_path)).read_split(split)  # type: ignore[arg-type]
    assert str(error.value).startswith(f"{path}:2: ") and problem in str(error.value)


def test_bad_data_jsonl_record_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"idx": "1", "func": "void a() {}"}\n{"idx": "2"}\n')
    (tmp_path / "test_sampled.txt").write_text("1\t2\t0\n")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'data.jsonl'}:2: ") + ".*'func'"):
        CloneTask(data_dir=str(tmp_path)).read_split("test")


def test_small_clone_dir_reads_and_joins_gold(tmp_path: Path) -> None:
    _clone_dir(tmp_path, "2\t1\t-1\t1\n1\t2\t-1\t0\n", "unlabel_train.txt")
    (tmp_path / "train_sampled.txt").write_text("1\t2\t0\n2\t1\t1\n1\t2\t0\n")
    task = CloneTask(data_dir=str(tmp_path))
    assert task.read_split("unlabel_train") == [
        Example(code=("void b() {}", "void a() {}"), label=None, teacher_label=1, id="2-1"),
        Example(code=("void a() {}", "void b() {}"), label=None, teacher_label=0, id="1-2"),
    ]
    assert task.gold_labels_for_unlabeled() == [1, 0]
    (tmp_path / "train_sampled.txt").write_text("1\t2\t0\n1\t2\t1\n")
    with pytest.raises(DataError, match="train_sampled.txt:2: .*conflicting"):
        task.gold_labels_for_unlabeled()
