"""The task contract: ``check_task`` turns each broken promise into one line, before any teacher work.

Each case is a tiny in-memory task with one mistake a plugin author makes; the message
must name the task, the split, the first offending example and what was expected.
"""

from __future__ import annotations

import functools

import pytest
from hydra import compose, initialize_config_dir

from avatar.cli.main import run_command
from avatar.core.errors import AvatarError
from avatar.task.base import Example, Split, Task, label_names
from avatar.task.contract import check_task
from tests.conftest import REPO

check_task_main = functools.partial(run_command, "check-task")

SNIPPETS = {
    0: "def add(a, b):\n    return a + b\n",
    1: "public int add(int a, int b) { return a + b; }",
    2: "int add(int a, int b) { return a + b; }",
}


class ToyTask(Task):
    """Three classes, four examples per split (one unlabelled in unlabel_train)."""

    num_labels = 3
    label_names = ("python", "java", "c")
    language = "java"

    def examples(self, split: Split) -> list[Example]:
        rows = [Example(code=SNIPPETS[i % 3], label=i % 3, id=f"{split}-{i}") for i in range(4)]
        if split == "unlabel_train":
            rows[3] = Example(code=SNIPPETS[0], label=None, id=f"{split}-3")
        return rows

    def read_split(self, split: Split) -> list[Example]:
        return self.examples(split)


def _with(**attributes):
    """A ``ToyTask`` subclass with some class attributes replaced."""
    return type("Broken", (ToyTask,), attributes)()


def _split_override(split: Split, rows):
    def read_split(self, which: Split) -> list[Example]:
        return list(rows) if which == split else self.examples(which)

    return read_split


def _one_line(task: Task) -> str:
    with pytest.raises(AvatarError) as error:
        check_task(task, registered_name="toy")
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_good_task_gets_its_name_and_a_summary() -> None:
    task = ToyTask()
    summary = check_task(task, registered_name="toy")
    assert task.name == "toy" and summary.name == "toy"
    assert summary.label_names == ["python", "java", "c"]
    assert summary.splits["valid"].per_label == {"0": 2, "1": 1, "2": 1}
    assert summary.splits["unlabel_train"].per_label == {"0": 1, "1": 1, "2": 1, "none": 1}
    lengths = sorted(len(SNIPPETS[i % 3]) for i in range(4))
    valid = summary.splits["valid"]
    assert (valid.chars_min, valid.chars_max) == (lengths[0], lengths[-1])
    assert valid.chars_median == (lengths[1] + lengths[2]) / 2
    table = summary.table()
    assert "task toy: 3 labels (0 python, 1 java, 2 c)" in table and table.endswith("contract: ok")


def test_attributes_alone_without_reading_data() -> None:
    class NoData(ToyTask):
        def read_split(self, split: Split) -> list[Example]:
            raise AssertionError("must not be read")

    assert check_task(NoData(), "toy", read_data=False).splits == {}


@pytest.mark.parametrize(
    "task, message",
    [
        (_with(read_split=_split_override("label_train", [Example("x = 1", "python", id="a")])),
         "task 'toy', split 'label_train', example id 'a': label is 'python' (str); expected an int in 0..2 "
         "(num_labels=3: python, java, c); use the label's index 0, not its name"),
        (_with(num_labels=2, label_names=None),
         "task 'toy', split 'label_train', example id 'label_train-2': label is 2; expected an int in 0..1 "
         "(num_labels=2: 0, 1): raise num_labels or fix the data"),
        (_with(read_split=_split_override("valid", [])),
         "task 'toy', split 'valid': read_split returned no examples; the pipeline needs unlabel_train, "
         "valid, test non-empty"),
        (_with(read_split=_split_override("test", [Example("x = 1", True, id="t")])),
         "split 'test', example id 't': label is True (bool); expected an int"),
        (_with(read_split=_split_override("valid", [Example("x", 0), Example("y", 1)])),
         "split 'valid': id '' is used by examples #0 and #1; ids must be unique within a split"),
        (_with(read_split=_split_override("test", [Example("x", None, id="t0")])),
         "split 'test', example id 't0': has no label; test needs gold labels"),
        (_with(read_split=_split_override("label_train", [Example(("a", "b"), 0, id="p")])),
         "example id 'p': code is ('a', 'b') (tuple); a single-snippet task needs a str "
         "(a pair? set is_pair"),
        (_with(is_pair=True),
         "split 'label_train', example id 'label_train-0': code is 'def add(a, b):"),
        (_with(label_names=("python", "java")),
         "task 'toy': label_names has 2 names (python, java) but num_labels is 3: give one name per label"),
        (_with(headline_metric="f1_score"),
         "task 'toy': headline_metric 'f1_score' is not one of its metrics: accuracy, f1, precision, recall"),
        (_with(temperature=0), "task 'toy': temperature must be a number > 0"),
        (_with(num_labels="3"), "task 'toy': num_labels must be an int >= 2"),
    ],
    ids=["string-label", "too-few-labels", "empty-valid", "bool-label", "duplicate-ids", "unlabelled-test",
         "pair-in-single-task", "single-in-pair-task", "label-names-length", "headline-typo",
         "zero-temperature", "num-labels-str"],
)
def test_each_mistake_is_one_line(task: Task, message: str) -> None:
    assert message in _one_line(task)


def test_a_plugin_bug_in_read_split_names_its_line() -> None:
    class Buggy(ToyTask):
        def read_split(self, split: Split) -> list[Example]:
            record: dict[str, str] = {}
            return [Example(record["code"], 0)]

    message = _one_line(Buggy())
    assert message.startswith("task 'toy', split 'label_train': read_split raised KeyError: 'code' at ")
    assert "test_contract.py:" in message


def test_label_names_default_to_indices() -> None:
    assert label_names(_with(label_names=None)) == ["0", "1", "2"]


def test_build_task_checks_the_contract(tmp_path) -> None:
    """``build_task`` (every stage's first step) runs the check: a bad limit-0 run fails there."""
    from avatar.stages import build_task, reads_data

    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=["task=demo", "data.limit=0"])
        flops = compose("search", overrides=["task=demo", "indicator=flops", "distill.top_k=0"])
    with pytest.raises(AvatarError, match=r"task 'demo', split 'unlabel_train': read_split returned no "
                                          r"examples \(data.limit=0\)"):
        build_task(cfg)
    assert reads_data(cfg) and not reads_data(flops)
    assert build_task(flops, read_data=False).name == "demo"


def test_check_task_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_task_main(["demo", "--limit", "6"]) == 0
    out = capsys.readouterr().out
    assert "task demo: 2 labels (0 not vulnerable, 1 vulnerable); single snippets; language c" in out
    assert "valid          6         0:3 1:3" in out
    assert check_task_main(["demo", "--limit", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: task 'demo', split 'unlabel_train': read_split returned no examples")
    assert len(err.splitlines()) == 1
