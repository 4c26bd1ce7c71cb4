"""A report's rows: one model measured on one machine, and the comparisons between rows.

Sizes are MiB (2**20 bytes), as ``avatar.search.cost`` and the paper compute them: fp32
parameters x 4 bytes for PyTorch rows, the file size for ONNX rows. The ratios divide the
teacher's number by each row's: "12x" means the row is 12 times smaller, faster or more
frugal than the teacher.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from avatar.run.timing import Spread

KINDS = ("teacher", "student", "onnx", "int8", "baseline")
"""``baseline``: the classical TF-IDF + LR row (``avatar.report.baseline``), never the teacher."""
RATIO_FIELDS = (("size", "size_mb"), ("latency", "latency_ms"), ("energy", "energy_kwh_per_1k"))
DEFAULT_STUDENTS_GLOB = "students/*/student"

log = logging.getLogger("avatar")


@dataclass
class ReportRow:
    """One model measured on one machine (see the module docstring for the units)."""

    name: str
    kind: str
    size_mb: float
    metric_name: str
    metric: float | None
    latency_ms: float
    energy_kwh_per_1k: float
    co2_g_per_1k: float
    estimated: bool
    n_examples: int
    backend: str = "torch"
    split: str = "test"
    threads: int = 0  # PyTorch intra-op threads during the measurement (0: unknown)
    gflops: float | None = None  # forward pass at batch 1 over the model's full sequence length
    path: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    collapsed: bool = False  # every measured example got the same predicted class
    labels: list[str] = field(default_factory=list)  # class names in label order, from the model's config
    teacher_agreement: float | None = None  # share of the measured examples where it predicts as the teacher
    holdout_agreement: float | None = None  # the same on unlabeled examples held out of its training
    flips: int | None = None  # measured examples whose label changes on their metamorphic copy
    flip_examples: int | None = None  # measured examples that have a copy (the flips' denominator)
    predictions: list[int] = field(default_factory=list, repr=False)  # per measured example (not written)
    # The latency's interquartile range (25th and 75th percentiles, ms) over its repeats; a
    # latency whose IQR overlaps another's is not told apart from it (avatar.run.timing).
    latency_q1_ms: float | None = None
    latency_q3_ms: float | None = None
    latency_repeats: int = 0
    loaded: bool = False  # the CPUs it may use were busy while it was measured: numbers unreliable


def teacher_row(rows: Sequence[ReportRow]) -> ReportRow | None:
    """The teacher's row, the one every ratio and agreement is taken against (None without one)."""
    return next((r for r in rows if r.kind == "teacher"), None)


def add_teacher_agreement(rows: Sequence[ReportRow]) -> None:
    """Each model's agreement with the teacher row on the same measured examples: how
    faithfully it stands in for the teacher, gold labels or not."""
    teacher = teacher_row(rows)
    if teacher is None or not teacher.predictions:
        return
    for row in rows:
        if row is not teacher and len(row.predictions) == len(teacher.predictions):
            same = sum(a == b for a, b in zip(row.predictions, teacher.predictions))
            row.teacher_agreement = same / len(teacher.predictions)


def ratios(rows: Sequence[ReportRow]) -> list[dict[str, float | None]]:
    """Per row, teacher / row for size, latency and energy (None without a teacher row)."""
    teacher = teacher_row(rows)
    out: list[dict[str, float | None]] = []
    for row in rows:
        entry: dict[str, float | None] = {}
        for label, attribute in RATIO_FIELDS:
            mine = getattr(row, attribute)
            entry[label] = (getattr(teacher, attribute) / mine) if teacher is not None and mine > 0 else None
        out.append(entry)
    return out


def set_latency(row: ReportRow, spread: Spread, loaded: bool) -> None:
    """Put ``spread`` (ms per example) in ``row``: median, IQR ends and repeats; ``loaded`` sticks."""
    row.latency_ms, row.latency_q1_ms, row.latency_q3_ms = spread.median_ms, spread.q1_ms, spread.q3_ms
    row.latency_repeats = spread.repeats
    row.loaded = row.loaded or loaded


def format_latency(row: ReportRow) -> str:
    """``1.23 [1.20-1.31]``: the median and its IQR in brackets (the median alone without one)."""
    if row.latency_q1_ms is None or row.latency_q3_ms is None:
        return f"{row.latency_ms:.2f}"
    return f"{row.latency_ms:.2f} [{row.latency_q1_ms:.2f}-{row.latency_q3_ms:.2f}]"


def format_or_na(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` where a number was not measured."""
    return "n/a" if value is None else format(value, spec)
