"""The task contract, checked before any teacher work: ``check_task`` and ``avatar check-task``.

Why: a task plugin is written by someone who knows their data, not Avatar's internals.
A string label, ``num_labels`` one too small or an empty validation split used to
surface minutes later as an ``int()`` ``ValueError`` inside the teacher, a torch
``IndexError`` or a transformers ``IndexError``. ``check_task`` reads every split once,
when the task is built, and turns the first broken promise into ONE ``AvatarError`` line
that names the task, the split, the first offending example and what was expected. What
it finds when all is well (counts per split and label, code lengths) is the
``TaskSummary`` that ``avatar check-task <name>`` prints.

The contract (see ``avatar.task.base.Task`` for what each attribute means):

- ``name``: a non-empty str (an empty one becomes the registered name);
- ``num_labels``: an int >= 2; ``label_names``: unset, or ``num_labels`` distinct str;
- ``is_pair``: a bool; ``language``: a non-empty str; ``headline_metric``: a key of
  ``metrics()``; ``temperature``: a number > 0;
- splits: ``unlabel_train``, ``valid`` and ``test`` non-empty (``label_train`` may be
  empty for a teacher that does not fine-tune); every item an ``Example``;
- code: a str, or for a pair task a tuple of two str;
- labels: ints (not str, not bool) in ``0 .. num_labels - 1``; ``None`` only in
  ``unlabel_train``, or in ``label_train`` when the example has a ``teacher_label``;
- ids: unique within a split.
"""

from __future__ import annotations

import numbers
import statistics
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError
from avatar.task.base import SPLITS, Example, Split, Task, label_names

REQUIRED_SPLITS: tuple[Split, ...] = ("unlabel_train", "valid", "test")
"""Splits the pipeline cannot run without: distillation data, early stopping, the report."""

UNLABELLED = "none"
"""The per-label count key of examples without a label (``unlabel_train``)."""


@dataclass
class SplitSummary:
    """One split: how many examples, how many per label, how long the code is (characters)."""

    examples: int
    per_label: dict[str, int] = field(default_factory=dict)
    chars_min: int = 0
    chars_median: float = 0.0
    chars_max: int = 0


@dataclass
class TaskSummary:
    """What ``check_task`` found: the task's attributes and a ``SplitSummary`` per split."""

    name: str
    num_labels: int
    label_names: list[str]
    is_pair: bool
    language: str
    headline_metric: str
    temperature: float
    splits: dict[str, SplitSummary]

    def table(self) -> str:
        """The summary as aligned text: a header line, then one row per split."""
        kind = "pairs of snippets" if self.is_pair else "single snippets"
        labels = ", ".join(f"{i} {name}" for i, name in enumerate(self.label_names))
        lines = [
            f"task {self.name}: {self.num_labels} labels ({labels}); {kind}; language {self.language}; "
            f"headline metric {self.headline_metric}; temperature {self.temperature:g}",
        ]
        header = ("split", "examples", "per label", "chars min / median / max")
        rows = [header]
        for split, summary in self.splits.items():
            per_label = " ".join(f"{key}:{count}" for key, count in summary.per_label.items()) or "-"
            lengths = "-"
            if summary.examples:
                lengths = f"{summary.chars_min} / {summary.chars_median:g} / {summary.chars_max}"
            rows.append((split, str(summary.examples), per_label, lengths))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines.append("contract: ok")
        return "\n".join(lines)


# ---- checking ---------------------------------------------------------------------------------------


class _Failure:
    """Builds the one-line messages of one task."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name

    def __call__(self, problem: str, split: str | None = None, where: str | None = None) -> AvatarError:
        parts = [f"task {self.task_name!r}"]
        if split is not None:
            parts.append(f"split {split!r}")
        if where is not None:
            parts.append(where)
        return AvatarError(f"{', '.join(parts)}: {problem}")


def _is_int(value: Any) -> bool:
    """An integer label: int or numpy integer, never bool (``True`` is an int in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _example_ref(example: Any, index: int) -> str:
    ident = getattr(example, "id", "")
    return f"example id {ident!r}" if ident != "" else f"example #{index} (no id)"


def _check_attributes(task: Task, fail: _Failure) -> list[str]:
    """Everything that does not need the data; returns the label names."""
    num_labels = task.num_labels
    if not _is_int(num_labels) or num_labels < 2:
        raise fail(f"num_labels must be an int >= 2 (classes), got {_describe(num_labels)}")
    names = getattr(task, "label_names", None)
    if names is not None:
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise fail(f"label_names must be a list of {num_labels} str (one per label), "
                       f"got {_describe(names)}")
        if len(names) != num_labels:
            raise fail(f"label_names has {len(names)} names ({', '.join(map(str, names))}) "
                       f"but num_labels is {num_labels}: give one name per label")
        bad = next((n for n in names if not isinstance(n, str) or not n), None)
        if bad is not None:
            raise fail(f"label_names must be non-empty str, got {_describe(bad)}")
        if len(set(names)) != len(names):
            raise fail(f"label_names repeats a name: {', '.join(names)}")
    if not isinstance(task.is_pair, bool):
        raise fail(f"is_pair must be True or False, got {_describe(task.is_pair)}")
    if not isinstance(task.language, str) or not task.language:
        raise fail(f"language must be a non-empty str such as 'c' or 'java', got {_describe(task.language)}")
    temperature = task.temperature
    if not isinstance(temperature, numbers.Real) or isinstance(temperature, bool) or not temperature > 0:
        raise fail(f"temperature must be a number > 0 (distillation temperature, default 2.0), "
                   f"got {_describe(temperature)}")
    metrics = sorted(task.metrics().keys())
    if task.headline_metric not in metrics:
        raise fail(f"headline_metric {task.headline_metric!r} is not one of its metrics: "
                   f"{', '.join(metrics)}")
    return label_names(task)


def _read(task: Task, split: Split, fail: _Failure) -> list[Example]:
    """``task.read_split(split)``; a plugin's own bug becomes one line naming where it happened."""
    try:
        examples = task.read_split(split)
    except AvatarError:
        raise
    except Exception as error:  # a plugin's read_split: name the error and its innermost frame
        frames = traceback.extract_tb(error.__traceback__)
        at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        first = (str(error).strip().splitlines() or [""])[0]
        raise fail(f"read_split raised {type(error).__name__}: {first}{at}", split) from error
    if not isinstance(examples, Sequence) or isinstance(examples, str):
        raise fail(f"read_split must return a list of Example, got {_describe(examples)}", split)
    return list(examples)


def _check_code(task: Task, example: Example, split: str, where: str, fail: _Failure) -> int:
    """The example's code is what ``is_pair`` promises; returns its length in characters."""
    code = example.code
    if task.is_pair:
        if not (isinstance(code, tuple) and len(code) == 2 and all(isinstance(c, str) for c in code)):
            raise fail(f"code is {_describe(code)}; a pair task (is_pair=True) needs a tuple of two str",
                       split, where)
        return len(code[0]) + len(code[1])
    if not isinstance(code, str):
        hint = " (a pair? set is_pair = True)" if isinstance(code, tuple | list) else ""
        raise fail(f"code is {_describe(code)}; a single-snippet task needs a str{hint}", split, where)
    return len(code)


def _check_label(value: Any, what: str, num_labels: int, names: list[str], split: str, where: str,
                 fail: _Failure) -> None:
    expected = f"an int in 0..{num_labels - 1} (num_labels={num_labels}: {', '.join(names)})"
    if not _is_int(value):
        hint = ""
        if isinstance(value, str) and value in names:
            hint = f"; use the label's index {names.index(value)}, not its name"
        raise fail(f"{what} is {_describe(value)}; expected {expected}{hint}", split, where)
    if not 0 <= int(value) < num_labels:
        raise fail(f"{what} is {value}; expected {expected}: raise num_labels or fix the data", split, where)


def _check_split(task: Task, split: Split, examples: list[Example], names: list[str],
                 fail: _Failure) -> SplitSummary:
    num_labels = int(task.num_labels)
    counts: Counter[str] = Counter()
    lengths: list[int] = []
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        if not isinstance(example, Example):
            raise fail(f"item #{index} is {_describe(example)}; expected avatar.task.base.Example", split)
        where = _example_ref(example, index)
        lengths.append(_check_code(task, example, split, where, fail))
        if example.id in seen:
            first = seen[example.id]
            raise fail(f"id {example.id!r} is used by examples #{first} and #{index}; "
                       "ids must be unique within a split (set Example.id)", split)
        seen[example.id] = index
        if example.label is None:
            if split == "label_train" and example.teacher_label is None:
                raise fail("has no label; label_train needs a gold label (or a teacher_label) to "
                           "fine-tune on", split, where)
            if split in ("valid", "test"):
                raise fail(f"has no label; {split} needs gold labels (the student is scored on them)",
                           split, where)
            counts[UNLABELLED] += 1
        else:
            _check_label(example.label, "label", num_labels, names, split, where, fail)
            counts[str(int(example.label))] += 1
        if example.teacher_label is not None:
            _check_label(example.teacher_label, "teacher_label", num_labels, names, split, where, fail)
    if split in REQUIRED_SPLITS and not examples:
        limit = f" (data.limit={task.limit})" if getattr(task, "limit", None) is not None else ""
        raise fail(f"read_split returned no examples{limit}; the pipeline needs {', '.join(REQUIRED_SPLITS)} "
                   "non-empty", split)
    per_label = {str(i): counts[str(i)] for i in range(num_labels) if counts[str(i)]}
    if counts[UNLABELLED]:
        per_label[UNLABELLED] = counts[UNLABELLED]
    return SplitSummary(
        examples=len(examples),
        per_label=per_label,
        chars_min=min(lengths, default=0),
        chars_median=float(statistics.median(lengths)) if lengths else 0.0,
        chars_max=max(lengths, default=0),
    )


def check_task(task: Task, registered_name: str | None = None, read_data: bool = True) -> TaskSummary:
    """Check ``task`` against the contract (module docstring); its summary, or one ``AvatarError`` line.

    An empty ``task.name`` is set to ``registered_name``. ``read_data=False`` checks only
    the attributes (for a run that never reads the data, such as a FLOPs-only search).
    """
    if not isinstance(task, Task):
        raise AvatarError(f"task {registered_name!r}: the registered class must subclass "
                          f"avatar.task.base.Task, got {_describe(task)}")
    name = getattr(task, "name", "")
    if not name and registered_name:
        task.name = name = registered_name
    if not isinstance(name, str) or not name:
        raise AvatarError(f"task {registered_name!r}: name must be a non-empty str, got {_describe(name)}")
    fail = _Failure(name)
    names = _check_attributes(task, fail)
    splits: dict[str, SplitSummary] = {}
    if read_data:
        for split in SPLITS:
            splits[split] = _check_split(task, split, _read(task, split, fail), names, fail)
    return TaskSummary(
        name=name, num_labels=int(task.num_labels), label_names=names, is_pair=task.is_pair,
        language=task.language, headline_metric=task.headline_metric, temperature=float(task.temperature),
        splits=splits,
    )


# ---- avatar check-task --------------------------------------------------------------------------------
