"""The ``predictions`` teacher: knowledge read from a file of precomputed predictions.

Why: a teacher is fine-tuned once on a GPU server and its predictions copied to the
laptops that search; and the paper's own BigCloneBench teachers exist only as logits files
(``bigclonebench/teacher_logits/*.npy``). Row i of the file is the teacher's prediction for
example i of ``task.read_split("unlabel_train")`` (the task's order: file order for clone).

Formats (``kind=auto`` decides logits or labels from the content):

* ``.npy``: an (N, num_labels) float array of logits, or an (N,) integer array of labels;
* ``.txt``: one line per example, either one integer label or the whitespace-separated logits;
* ``.jsonl``: one object per line with ``"logits": [...]`` or ``"label": int``;
* ``.npz``: a knowledge file cached by ``train.py stage=teacher`` on another machine (its
  ``teacher.json`` names it): fine-tune on a GPU server, copy the file, search on a laptop.

``kind=labels`` on logits keeps only their argmax; ``kind=logits`` on labels is an error.
With ``data.limit`` the task reads its first N unlabeled examples, so the first N rows are
used; otherwise the row count must equal the split's size exactly.

``source: task`` reads no file: the hard labels some datasets ship beside the examples
(``Example.teacher_label``, BigCloneBench's column 4) are the knowledge.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from avatar.core.errors import AvatarError, DataError
from avatar.core.io import iter_jsonl, read_lines
from avatar.core.registry import TEACHERS
from avatar.task.base import Task
from avatar.task.folder import resolve_data_root
from avatar.teach.teacher import Knowledge, Teacher, TeacherContext, gold_labels

Kind = Literal["auto", "logits", "labels"]
KINDS: tuple[str, ...] = ("auto", "logits", "labels")
SOURCES: tuple[str, ...] = ("file", "task")


def resolve_predictions_path(path: str | os.PathLike[str], root: str | None = None) -> Path:
    """An absolute path as is; a relative one from the working directory if it exists there, else
    from the data root (``root`` or ``$AVATAR_DATA``), so configs can name files inside the data.
    """
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    return resolve_data_root(root) / given


def _read_npy(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file; an empty, truncated or foreign file is one ``DataError``."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: not a readable .npy array (the file is empty: 0 bytes)")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy array ({_first_line(error)})") from None
    if array.ndim not in (1, 2):
        raise DataError(f"{path}: expected an (N,) label or (N, labels) logit array, got shape {array.shape}")
    return array


def _parse_row(values: list[str], where: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise DataError(f"{where}: expected a label or numeric logits, got {' '.join(values)!r}") from None


def _read_txt(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    width: int | None = None
    for number, line in enumerate(read_lines(path), start=1):
        values = line.split()
        if not values:
            continue
        where = f"{path}:{number}"
        if width is not None and len(values) != width:
            raise DataError(f"{where}: expected {width} value(s) like the lines above, got {len(values)}")
        width = len(values)
        rows.append(_parse_row(values, where))
    return _rows_to_array(rows, width, str(path))


def _read_jsonl(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    width: int | None = None
    for index, record in enumerate(iter_jsonl(path)):
        where = f"{path} record {index + 1}"
        if isinstance(record.get("logits"), list):
            values = record["logits"]
        elif "label" in record and not isinstance(record["label"], bool) and isinstance(record["label"], int):
            values = [record["label"]]
        else:
            raise DataError(f"{where}: needs \"logits\": [numbers] or \"label\": integer")
        if width is not None and len(values) != width:
            raise DataError(f"{where}: expected {width} value(s) like the records before, got {len(values)}")
        width = len(values)
        rows.append(_parse_row([str(v) for v in values], where))
    return _rows_to_array(rows, width, str(path))


def _rows_to_array(rows: list[list[float]], width: int | None, where: str) -> np.ndarray:
    if not rows:
        raise DataError(f"{where}: no predictions in the file")
    array = np.asarray(rows, dtype=np.float64)
    if width == 1:
        labels = array[:, 0]
        if not np.all(labels == np.round(labels)):
            raise DataError(f"{where}: one value per line must be an integer label")
        return labels.astype(np.int64)
    return array.astype(np.float32)


def _read_npz(path: Path) -> np.ndarray:
    """A knowledge file that ``train.py stage=teacher`` cached (``teacher.json`` names it)."""
    try:
        knowledge = Knowledge.load(path)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a teacher knowledge file ({_first_line(error)})") from None
    return knowledge.logits if knowledge.logits is not None else knowledge.labels()


def _check_fingerprint(path: Path, task: Task) -> None:
    """A knowledge file remembers its data: one computed on other data is refused, not misread."""
    theirs, ours = Knowledge.load(path).fingerprint, task.fingerprint("unlabel_train")
    if theirs and theirs != ours:
        raise DataError(
            f"{path}: computed on other unlabeled data (fingerprint {theirs}) than task {task.name} ({ours})"
        )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


READERS = {".npy": _read_npy, ".npz": _read_npz, ".txt": _read_txt, ".jsonl": _read_jsonl}


def read_predictions(path: Path) -> np.ndarray:
    """The file's rows: (N,) int64 labels or (N, labels) float32 logits."""
    if not path.is_file():
        raise DataError(f"teacher predictions file {path} not found")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported predictions format; use one of {', '.join(READERS)}")
    array = reader(path)
    if array.ndim == 1 and not np.issubdtype(array.dtype, np.integer):
        if not np.all(array == np.round(array)):
            raise DataError(f"{path}: a 1-D array must hold integer labels")
        array = array.astype(np.int64)
    return array


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@TEACHERS.register("predictions")
class PredictionsTeacher(Teacher):
    """Knowledge from a predictions file (``source=file``) or the task's shipped labels (``source=task``)."""

    def __init__(
        self, path: str | None = None, kind: Kind = "auto", source: str = "file", root: str | None = None,
        architecture: dict[str, Any] | None = None, model_name: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise AvatarError(f"teacher.kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if source not in SOURCES:
            raise AvatarError(f"teacher.source must be one of {', '.join(SOURCES)}, got {source!r}")
        if source == "file" and not path:
            raise AvatarError("the predictions teacher needs teacher.path=<file> (.npy, .npz, .txt, .jsonl)")
        self.path = path
        self.kind = kind
        self.source = source
        self.root = root
        self.architecture = dict(architecture) if architecture else None  # the report's cost row
        self.model_name = model_name or (Path(path).stem if path else "teacher")

    def _file(self) -> Path:
        return resolve_predictions_path(str(self.path), self.root)

    def identity(self) -> str:
        if self.source == "task":
            return f"predictions source=task kind={self.kind}"
        path = self._file()
        digest = _file_digest(path) if path.is_file() else "missing"
        return f"predictions file={path.name} sha256={digest} kind={self.kind}"

    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        examples = task.read_split("unlabel_train")
        gold = gold_labels(task)
        if self.source == "task":
            missing = sum(e.teacher_label is None for e in examples)
            if missing:
                raise DataError(
                    f"task {task.name}: {missing} of {len(examples)} unlabeled examples carry no teacher "
                    "label; use a predictions file (teacher.path=...) or a fine-tuned teacher"
                )
            labels = np.array([e.teacher_label for e in examples], dtype=np.int64)
            return Knowledge(task.name, self.identity(), "", hard_labels=labels, gold=gold)
        path = self._file()
        rows = read_predictions(path)
        if path.suffix.lower() == ".npz" and len(rows) == len(examples):
            _check_fingerprint(path, task)
        array = self._rows_for(rows, path, len(examples), task)
        if array.ndim == 2:
            if self.kind == "labels":
                return Knowledge(task.name, self.identity(), "", hard_labels=array.argmax(axis=1), gold=gold)
            return Knowledge(task.name, self.identity(), "", logits=array, gold=gold)
        if self.kind == "logits":
            raise DataError(f"{path}: teacher.kind=logits, but the file holds one label per example")
        return Knowledge(task.name, self.identity(), "", hard_labels=array, gold=gold)

    @staticmethod
    def _rows_for(array: np.ndarray, path: Path, expected: int, task: Task) -> np.ndarray:
        """The rows of the task's unlabeled examples: all of them, or the first N under a limit."""
        rows = len(array)
        if rows == expected:
            return array
        if task.limit is not None and rows > expected:
            return array[:expected]
        raise DataError(
            f"{path}: {rows:,} predictions, but task {task.name} has {expected:,} unlabeled examples"
        )
