"""The task interface: what a task plugin must say about its data and metrics.

A task reads its four splits from a data directory (CodeXGLUE formats for the built-in
tasks), says whether an example is one snippet or a pair of snippets, how many labels
it has, its language (for GraphCodeBERT's data flow) and its metrics. The search and the
distillation only ever talk to this interface, so a new task is one plugin file.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torchmetrics

Split = Literal["label_train", "unlabel_train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("label_train", "unlabel_train", "valid", "test")

Code = str | tuple[str, str]
"""What a model reads of one example: a snippet, or a pair of snippets."""


def snippets(code: Code) -> list[str]:
    """The snippets in a code: the snippet itself, or both sides of a pair."""
    return [code] if isinstance(code, str) else list(code)


@dataclass(frozen=True)
class Example:
    """One example: a code snippet (or a pair of them) and what is known of its label.

    ``label`` is the gold label, ``None`` where the data has none. ``teacher_label`` is a
    hard teacher prediction that some datasets ship beside the pair (BigCloneBench's
    column 4); ``None`` elsewhere.
    """

    code: Code
    label: int | None
    teacher_label: int | None = None
    id: str = ""

    @property
    def text(self) -> Code:
        """The code as a model reads it: the snippet, or the pair as a tuple (a reader that
        parsed JSON may have stored a list)."""
        code = self.code
        return code if isinstance(code, str) else (code[0], code[1])


class Task(ABC):
    """A classification task over code. Subclasses register with ``@TASKS.register``.

    The class attributes are the task's contract (``avatar.task.contract.check_task`` checks
    them, and the data, before any teacher work):

    - ``name``: the task's name in cache keys and reports; left empty, it becomes the name
      the task was registered under.
    - ``num_labels``: how many classes; labels are the ints ``0 .. num_labels - 1``.
    - ``label_names``: optional class names, one per label in label order (``("safe",
      "vulnerable")``); they travel into each student's ``config.json`` (``id2label``),
      the report and ``avatar predict``'s ``label_name``. Unset: ``"0"``, ``"1"``, ...
    - ``is_pair``: ``True`` when ``Example.code`` is a ``(code1, code2)`` tuple of str.
    - ``language``: the code's language for GraphCodeBERT's data flow (``"c"`` or
      ``"java"``); nothing else reads it (students tokenise any text), so a task of mixed
      languages names its main one and uses a teacher without ``data_flow``.
    - ``headline_metric``: the key of ``metrics()`` that early stopping, the surrogate
      and the report rank by.
    - ``temperature``: distillation temperature when ``distill.temperature`` is unset.
    """

    name: str = ""
    num_labels: int = 2
    label_names: tuple[str, ...] | None = None
    is_pair: bool = False
    language: str = "c"
    headline_metric: str = "accuracy"
    # Distillation temperature when ``distill.temperature`` is unset: how much of the
    # teacher's relative confidence a student sees (see avatar/distill/train.py).
    temperature: float = 2.0

    def __init__(self, data_dir: str | None = None, limit: int | None = None, seed: int = 42) -> None:
        self.data_dir = data_dir
        self.limit = limit
        self.seed = seed

    @abstractmethod
    def read_split(self, split: Split) -> list[Example]:
        """The examples of ``split``, at most ``self.limit`` of them."""

    def metrics(self, prefix: str = "") -> torchmetrics.MetricCollection:
        """Binary (or multiclass) accuracy, precision, recall and F1 over predicted labels."""
        from torchmetrics import classification as c

        if self.num_labels == 2:
            metrics = {
                "accuracy": c.BinaryAccuracy(),
                "precision": c.BinaryPrecision(),
                "recall": c.BinaryRecall(),
                "f1": c.BinaryF1Score(),
            }
        else:
            n = self.num_labels
            metrics = {
                "accuracy": c.MulticlassAccuracy(n, average="micro"),
                "precision": c.MulticlassPrecision(n, average="macro"),
                "recall": c.MulticlassRecall(n, average="macro"),
                "f1": c.MulticlassF1Score(n, average="macro"),
            }
        return torchmetrics.MetricCollection(metrics, prefix=prefix)

    def fingerprint(self, split: Split) -> str:
        """A short hash of a split's content: cache keys change when the data does."""
        digest = hashlib.sha256()
        for example in self.read_split(split):
            code = example.code if isinstance(example.code, str) else "\x00".join(example.code)
            digest.update(f"{example.id}\x01{example.label}\x01{code}\x02".encode())
        return digest.hexdigest()[:16]

    def gold_labels_for_unlabeled(self) -> list[int | None]:
        """Gold labels of ``unlabel_train`` row by row (None where unknown), for agreement
        reports only: a task that withholds them from its examples (clone) overrides this."""
        return [example.label for example in self.read_split("unlabel_train")]

    def texts(self, split: Split) -> list[str]:
        """Every code snippet of a split, flattened: the corpus a student tokenizer learns."""
        out: list[str] = []
        for example in self.read_split(split):
            out.extend(snippets(example.code))
        return out


def label_names(task: Task) -> list[str]:
    """The task's class names in label order: ``label_names`` when set, else ``"0"``, ``"1"``, ...

    A ``label_names`` of the wrong length is ignored here (``check_task`` refuses it with
    one line before anything reads it).
    """
    names = task.label_names
    if names and len(names) == task.num_labels:
        return [str(n) for n in names]
    return [str(i) for i in range(task.num_labels)]


def label_signature(task: Task) -> dict[str, object]:
    """What of the task's labels shapes a cached model or its outputs: part of every cache key.

    Why: a teacher's head, its logits and a student's ``id2label`` all change with
    ``num_labels`` and the class names, while the data (and its fingerprint) may not.
    """
    return {"num_labels": int(task.num_labels), "label_names": label_names(task)}
