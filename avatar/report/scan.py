"""Classify every function of a code base and write the verdicts as jsonl, csv or SARIF 2.1.0.

Why three formats: jsonl and csv are for people and scripts and are written row by row as
the batches finish (a killed scan keeps what it classified); SARIF is what code-review
tools read (GitHub code scanning, VS Code's SARIF viewer, GitLab), so a student's verdicts
show up as warnings on the lines of the functions, like any static analyser's.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from avatar.code.functions import Function
from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_text
from avatar.report.predict import BATCHES_PER_CHUNK, Predictor

FORMATS = ("jsonl", "csv", "sarif")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
ROOT_ID = "SRCROOT"


@dataclass(frozen=True)
class ScanRow:
    """One function's verdict. ``label`` is the decision (see ``decide``); ``probability`` is
    the probability of that label; ``file`` is the resolved path (for SARIF URIs)."""

    function: Function
    file: Path
    label: int
    label_name: str
    probability: float
    probabilities: dict[str, float]

    def record(self) -> dict[str, Any]:
        f = self.function
        return {"file": f.path, "start_line": f.start_line, "end_line": f.end_line, "function": f.name,
                "label": self.label, "label_name": self.label_name, "probability": self.probability,
                "probabilities": self.probabilities}


def decide(probabilities: Sequence[float], threshold: float | None) -> int:
    """The reported label: the most probable one, or, with ``threshold``, the most probable
    label other than the first (negative) one when its probability reaches ``threshold``,
    else the first label. Why: a reviewer trades missed findings for noise by moving P."""
    if threshold is None or len(probabilities) < 2:
        return max(range(len(probabilities)), key=probabilities.__getitem__)
    best = max(range(1, len(probabilities)), key=probabilities.__getitem__)
    return best if probabilities[best] >= threshold else 0


def check_options(batch_size: int, threshold: float | None) -> None:
    """One line for a batch size or threshold that cannot work, before any file is read."""
    if batch_size < 1:
        raise AvatarError(f"--batch-size must be at least 1, got {batch_size}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise AvatarError(f"--threshold must be a probability between 0 and 1, got {threshold}")


def classify(predictor: Predictor, functions: Sequence[tuple[Path, Function]], batch_size: int = 32,
             threshold: float | None = None) -> Iterator[list[ScanRow]]:
    """The rows of ``functions`` in their order, one chunk of ``BATCHES_PER_CHUNK`` batches at a time."""
    check_options(batch_size, threshold)
    names = [predictor.label_name(i) for i in range(len(predictor.meta.labels))]
    chunk = batch_size * BATCHES_PER_CHUNK
    for start in range(0, len(functions), chunk):
        part = functions[start:start + chunk]
        results = predictor.predict([function.code for _, function in part], batch_size=batch_size)
        rows = []
        for (file, function), result in zip(part, results):
            label = decide(result.probabilities, threshold)
            rows.append(ScanRow(
                function=function, file=file, label=label, label_name=predictor.label_name(label),
                probability=round(result.probabilities[label], 6),
                probabilities={name: round(p, 6) for name, p in zip(names, result.probabilities)},
            ))
        yield rows


# ---- writers ------------------------------------------------------------------------------------

class Writer:
    """Rows to ``output`` (a path, or stdout for None); ``close`` finishes the file."""

    def __init__(self, output: str | os.PathLike[str] | None) -> None:
        self.output = output
        self.count = 0

    def write(self, rows: Iterable[ScanRow]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output: the streaming writers close their file, SARIF writes its log."""

    def abort(self) -> None:
        """The scan failed or was interrupted: release the file, write nothing more."""


class _StreamWriter(Writer):
    """Opens the target at once and flushes after every chunk: a kill keeps the rows written."""

    def __init__(self, output: str | os.PathLike[str] | None) -> None:
        super().__init__(output)
        if output is None:
            self.handle: IO[str] = sys.stdout
        else:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def write(self, rows: Iterable[ScanRow]) -> None:
        for row in rows:
            self._write(row)
            self.count += 1
        self.handle.flush()

    def _write(self, row: ScanRow) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.handle is not sys.stdout:
            self.handle.close()

    def abort(self) -> None:
        self.close()


class JsonlWriter(_StreamWriter):
    def _write(self, row: ScanRow) -> None:
        self.handle.write(json.dumps(row.record()) + "\n")


class CsvWriter(_StreamWriter):
    """One column per label's probability (``p_<label name>``) after the fixed columns."""

    def __init__(self, output: str | os.PathLike[str] | None, labels: Sequence[str]) -> None:
        super().__init__(output)
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow(["file", "start_line", "end_line", "function", "label", "label_name",
                              "probability", *(f"p_{name}" for name in labels)])

    def _write(self, row: ScanRow) -> None:
        record = row.record()
        self.writer.writerow([*(record[k] for k in ("file", "start_line", "end_line", "function", "label",
                                                     "label_name", "probability")),
                              *row.probabilities.values()])


class SarifWriter(Writer):
    """Collects the reported functions; ``close`` writes the whole log (atomically to a file)."""

    def __init__(self, output: str | os.PathLike[str] | None, labels: Sequence[str], root: Path,
                 version: str, properties: dict[str, Any]) -> None:
        super().__init__(output)
        self.labels = list(labels)
        self.root = root.resolve()
        self.version = version
        self.properties = properties
        self.results: list[dict[str, Any]] = []

    def write(self, rows: Iterable[ScanRow]) -> None:
        for row in rows:
            self.count += 1
            if row.label != 0:
                self.results.append(self._result(row))

    def _uri(self, file: Path) -> dict[str, str]:
        try:
            relative = file.relative_to(self.root)
        except ValueError:  # outside the root: an absolute file:// URI
            return {"uri": file.as_uri()}
        return {"uri": quote(relative.as_posix()), "uriBaseId": ROOT_ID}

    def _result(self, row: ScanRow) -> dict[str, Any]:
        f = row.function
        return {
            "ruleId": row.label_name,
            "ruleIndex": row.label - 1,
            "level": "warning",
            "message": {"text": f"{f.name} is predicted {row.label_name} "
                                f"(probability {row.probability:.3f}) by the student"},
            "locations": [{
                "physicalLocation": {"artifactLocation": self._uri(row.file),
                                     "region": {"startLine": f.start_line, "endLine": f.end_line}},
                "logicalLocations": [{"name": f.name, "kind": "function"}],
            }],
            "properties": {"probability": row.probability, "probabilities": row.probabilities},
        }

    def log(self) -> dict[str, Any]:
        """The SARIF 2.1.0 log: one run, one rule per label other than the first (negative) one."""
        rules = [{"id": name, "name": "".join(w.capitalize() for w in name.replace("-", "_").split("_")),
                  "shortDescription": {"text": f"function predicted {name}"},
                  "fullDescription": {"text": f"A distilled code model classified this function as {name}; "
                                              "a statistical prediction, not a proof: review the function."},
                  "defaultConfiguration": {"level": "warning"}}
                 for name in self.labels[1:]]
        return {
            "$schema": SARIF_SCHEMA,
            "version": SARIF_VERSION,
            "runs": [{
                "tool": {"driver": {"name": "avatar", "version": self.version, "rules": rules}},
                "originalUriBaseIds": {ROOT_ID: {"uri": _folder_uri(self.root)}},
                "results": self.results,
                "properties": {**self.properties, "functions": self.count},
            }],
        }

    def close(self) -> None:
        text = json.dumps(self.log(), indent=2) + "\n"
        if self.output is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            atomic_write_text(self.output, text)


def _folder_uri(folder: Path) -> str:
    """A folder's ``file://`` URI with the trailing slash SARIF requires of a base URI."""
    uri = folder.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def open_writer(fmt: str, output: str | os.PathLike[str] | None, labels: Sequence[str], root: Path,
                version: str, properties: dict[str, Any]) -> Writer:
    """The writer of ``fmt`` (one of ``FORMATS``)."""
    if fmt == "jsonl":
        return JsonlWriter(output)
    if fmt == "csv":
        return CsvWriter(output, labels)
    if fmt == "sarif":
        return SarifWriter(output, labels, root, version, properties)
    raise AvatarError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
