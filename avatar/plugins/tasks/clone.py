"""Clone detection on BigCloneBench (CodeXGLUE, Avatar's sampled subset): a pair of Java methods, 0/1.

``data.jsonl`` holds the functions by id; the pair files hold ``id1 id2 label
[teacher_pred]`` per line. Avatar's halves ship with the data: ``label_train.txt`` (gold
label) and ``unlabel_train.txt`` (label -1, gold unknown to the student), each with the
fine-tuned teacher's hard prediction in column 4. Line order matters: the teachers'
logits files are row-aligned with ``unlabel_train.txt``, so ``limit`` keeps the first
lines in file order and nothing here reorders pairs.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from avatar.core.errors import DataError
from avatar.core.io import iter_jsonl, read_lines
from avatar.core.registry import TASKS
from avatar.task.base import Example, Split
from avatar.task.folder import FolderTask, record_location, require_file

HINT = (
    "get BigCloneBench as CodeXGLUE Clone-detection-BigCloneBench (data.jsonl) with Avatar's sampled pair "
    "files (label_train.txt, unlabel_train.txt, valid_sampled.txt, test_sampled.txt) from "
    "https://github.com/microsoft/CodeXGLUE/tree/main/Code-Code/Clone-detection-BigCloneBench "
    "and https://github.com/soarsmu/Avatar"
)
PAIR_FILES: dict[str, str] = {
    "label_train": "label_train.txt",
    "unlabel_train": "unlabel_train.txt",
    "valid": "valid_sampled.txt",
    "test": "test_sampled.txt",
}
GOLD_FILE = "train_sampled.txt"
UNKNOWN = -1  # the label column of unlabel_train.txt: gold withheld from the student


@dataclass(frozen=True)
class Pair:
    """One line of a pair file, before the function texts are joined in."""

    id1: str
    id2: str
    label: int | None
    teacher_label: int | None
    where: str  # "file:line", for errors found later (an unknown function id)


def _int_column(text: str, column: int, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where}: column {column} must be an integer label, got {text!r}") from None


def _check_label(value: int, column: int, where: str, num_labels: int, allow_unknown: bool) -> int | None:
    if allow_unknown and value == UNKNOWN:
        return None
    if not 0 <= value < num_labels:
        raise DataError(f"{where}: column {column} label must be in 0..{num_labels - 1}, got {value}")
    return value


def read_pairs(
    path: Path,
    limit: int | None = None,
    num_labels: int = 2,
    unlabelled: bool = False,
    need_teacher: bool = False,
) -> list[Pair]:
    """The first ``limit`` pairs of ``path`` (tab-separated ``id1 id2 label [teacher_pred]``).

    ``unlabelled`` accepts -1 as "gold unknown"; ``need_teacher`` demands column 4.
    Blank lines are skipped; any other malformed line stops with file:line.
    """
    require_file(path, HINT)
    pairs: list[Pair] = []
    for number, line in enumerate(read_lines(path), start=1):
        if limit is not None and len(pairs) >= limit:
            break
        if not line.strip():
            continue
        where = f"{path}:{number}"
        columns = line.split()
        expected = "4" if need_teacher else "3 or 4"
        if len(columns) not in ((4,) if need_teacher else (3, 4)):
            raise DataError(f"{where}: expected {expected} tab-separated columns, got {len(columns)}")
        label = _check_label(_int_column(columns[2], 3, where), 3, where, num_labels, unlabelled)
        teacher = None
        if len(columns) == 4:
            teacher = _check_label(_int_column(columns[3], 4, where), 4, where, num_labels, False)
        pairs.append(Pair(columns[0], columns[1], label, teacher, where))
    return pairs


@functools.lru_cache(maxsize=2)
def _load_functions(path: str, mtime_ns: int, size: int) -> MappingProxyType[str, str]:
    """id -> function text. Cached per file version: every task instance in a process shares it."""
    functions: dict[str, str] = {}
    for index, record in enumerate(iter_jsonl(path)):
        idx, func = record.get("idx"), record.get("func")
        if isinstance(idx, bool) or not isinstance(idx, str | int):
            raise DataError(f"{record_location(Path(path), index)}: missing or non-string field 'idx'")
        if not isinstance(func, str):
            raise DataError(f"{record_location(Path(path), index)}: missing or non-string field 'func'")
        functions[str(idx)] = func
    return MappingProxyType(functions)


def load_functions(path: Path) -> MappingProxyType[str, str]:
    """The functions of ``data.jsonl``, parsed at most once per file version."""
    require_file(path, HINT)
    stat = path.stat()
    return _load_functions(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@TASKS.register("clone")
class CloneTask(FolderTask):
    """BigCloneBench: are these two Java methods clones? Headline metric: F1."""

    num_labels = 2
    label_names = ("not clone", "clone")
    is_pair = True
    language = "java"
    headline_metric = "f1"
    # Distillation temperature, measured on real BigCloneBench (README, "Distillation recipe"):
    # T=1 gained a point at batch 16 with CodeBERT (0.783 vs 0.773) but collapsed a
    # GraphCodeBERT student at batch 32, where T=2 learned (0.80 by 12,800 pairs) and was the
    # best arm of the ablation (E). Robustness first: 2.0 (the paper's code uses 1.0).
    temperature = 2.0

    folder = "bigclonebench"
    markers = ("data.jsonl",)

    def describe(self) -> str:
        where = self.data_dir or "$AVATAR_DATA/bigclonebench"
        limit = f", at most {self.limit} pairs per split" if self.limit is not None else ""
        return (
            f"clone: BigCloneBench clone detection (CodeXGLUE, Avatar's sampled pairs), Java pairs, "
            f"2 labels, headline f1{limit}; data {where}"
        )

    def pairs(self, split: Split) -> list[Pair]:
        """The raw pairs of ``split`` (ids and labels, no code): cheap, needs no data.jsonl."""
        if split not in PAIR_FILES:
            raise DataError(f"unknown split {split!r} for task clone")
        return read_pairs(
            self.directory / PAIR_FILES[split],
            limit=self.limit,
            num_labels=self.num_labels,
            unlabelled=split == "unlabel_train",
            need_teacher=split == "unlabel_train",
        )

    def read_split(self, split: Split) -> list[Example]:
        if split not in self._cache:
            pairs = self.pairs(split)
            functions = load_functions(self.directory / "data.jsonl")
            seen: Counter[str] = Counter()
            self._cache[split] = [self._example(pair, functions, seen) for pair in pairs]
        return self._cache[split]

    @staticmethod
    def _example(pair: Pair, functions: MappingProxyType[str, str], seen: Counter[str]) -> Example:
        """The pair as an Example; ids are ``id1-id2``, ``id1-id2#2`` for its second line, ...

        Why the suffix: the sampled pair files repeat some lines (drawn with replacement),
        and the rows stay (teacher logits are row-aligned), but ids are unique per split.
        """
        for idx in (pair.id1, pair.id2):
            if idx not in functions:
                raise DataError(f"{pair.where}: unknown function id {idx}")
        ident = f"{pair.id1}-{pair.id2}"
        seen[ident] += 1
        return Example(
            code=(functions[pair.id1], functions[pair.id2]),
            label=pair.label,
            teacher_label=pair.teacher_label,
            id=ident if seen[ident] == 1 else f"{ident}#{seen[ident]}",
        )

    def gold_labels_for_unlabeled(self) -> list[int | None]:
        """Gold labels of the unlabel_train pairs, row-aligned with it (``None`` where unknown).

        The student never sees them; they exist to measure how often a teacher is right
        on the data it labels. They come from ``train_sampled.txt``, CodeXGLUE's sample
        that is the union of both halves, joined on (id1, id2).
        """
        gold: dict[tuple[str, str], int] = {}
        for pair in read_pairs(self.directory / GOLD_FILE, num_labels=self.num_labels):
            key = (pair.id1, pair.id2)
            if gold.setdefault(key, pair.label) != pair.label:  # type: ignore[arg-type]
                raise DataError(f"{pair.where}: pair {pair.id1}-{pair.id2} has conflicting gold labels")
        return [gold.get((pair.id1, pair.id2)) for pair in self.pairs("unlabel_train")]
