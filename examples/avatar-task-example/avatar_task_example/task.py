"""``snippet_kind``: is a short Java method loop-based (0) or recursive (1)?

Why this shape: it is the smallest complete task plugin, in the layout docs/plugins.md
describes. The data ships inside the
package (``data/snippets.jsonl``: ``code``, ``label``, ``split`` per line) and is read
with ``importlib.resources``, so the task works wherever the wheel is installed, with no
data directory. Both versions of one problem (say, an iterative and a recursive
factorial) sit in the same split, so the test split never holds the twin of a training
example.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from avatar.core.errors import DataError
from avatar.core.io import iter_jsonl
from avatar.core.registry import TASKS
from avatar.task.base import SPLITS, Example, Split, Task

DATA_FILE = "snippets.jsonl"


def load_snippets() -> list[dict[str, Any]]:
    """Every record of the packaged data file, checked; a bad record names file:line."""
    resource = resources.files("avatar_task_example").joinpath("data", DATA_FILE)
    with resources.as_file(resource) as path:
        records = list(iter_jsonl(path))
        for number, record in enumerate(records, start=1):
            if not isinstance(record.get("code"), str) or record.get("label") not in (0, 1):
                raise DataError(f"{path}:{number}: needs a string 'code' and a 'label' of 0 or 1")
            if record.get("split") not in SPLITS:
                raise DataError(f"{path}:{number}: 'split' must be one of {', '.join(SPLITS)}")
    return records


@TASKS.register("snippet_kind")
class SnippetKindTask(Task):
    """Binary classification of Java methods: 0 = loop-based, 1 = recursive."""

    name = "snippet_kind"
    num_labels = 2
    label_names = ("loop", "recursive")  # id2label of every student, avatar predict's label_name
    is_pair = False
    language = "java"
    headline_metric = "accuracy"

    def read_split(self, split: Split) -> list[Example]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        examples = [
            Example(code=str(record["code"]), label=int(record["label"]), id=f"snippet_kind-{number}")
            for number, record in enumerate(load_snippets())
            if record["split"] == split
        ]
        return examples if self.limit is None else examples[: self.limit]
