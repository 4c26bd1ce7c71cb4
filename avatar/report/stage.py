"""The report stage: teacher and students side by side on size, quality, latency, energy and CO2.

Every model is measured the same way, on the same examples of one split, on this machine:
loaded through ``avatar.report.predict.Predictor`` (so tokenisation is included, as a deployed
model pays it), run at batch 1, timed per example (median), and the whole run measured by
codecarbon (``avatar.run.green``). Energy and CO2 are reported per 1,000 examples,
extrapolated linearly from the N measured. The ratios divide the teacher's number by each
row's: "12x" means the row is 12 times smaller, faster or more frugal than the teacher.

Sizes are MiB (2**20 bytes), as ``avatar.search.cost`` and the paper compute them: fp32
parameters x 4 bytes for PyTorch rows, the file size for ONNX rows.

``report_run`` is the one driver (``python train.py stage=report`` and the end of a search) with
the ``report`` settings (``ReportOptions``):
``report.teacher`` (a saved teacher folder, optional), ``report.students`` (folders or
globs; default ``<run_dir>/students/*/student``), ``report.examples``, ``report.export``
(also export each student to ONNX and int8 and report those rows), ``report.baseline`` (a
TF-IDF + LR row fitted on the labeled half, ``avatar.report.baseline``), ``report.latency_repeats``
and ``report.latency_examples`` (every model's latency re-timed round-robin with the others,
median and IQR over the repeats, ``avatar.report.latency``).
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from avatar.code.metamorphic import MetamorphicCopy, metamorphic_copy, supports
from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_bytes
from avatar.distill.folder import (
    HOLDOUT_AGREEMENT,
    META_NAME,
    check_student_fits,
    onnx_file,
    read_student_meta,
)
from avatar.distill.student import default_cache_dir
from avatar.report.baseline import baseline_row
from avatar.report.latency import interleave_latencies
from avatar.report.measure import measure_architecture, measure_model
from avatar.report.render import build_report, render_pareto_png
from avatar.report.rows import DEFAULT_STUDENTS_GLOB, ReportRow, add_teacher_agreement
from avatar.task.base import Split, Task

log = logging.getLogger("avatar")


def _expand(pattern: str) -> list[Path]:
    """A folder, or a glob of folders (sorted), or an error naming the pattern."""
    if glob.has_magic(pattern):
        found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_dir())
        if not found:
            raise AvatarError(f"report.students: no folder matches {pattern!r}")
        return found
    if not Path(pattern).is_dir():
        raise AvatarError(f"report.students: folder not found: {pattern}")
    return [Path(pattern)]


def student_dirs(students: Any, run_dir: str | os.PathLike[str]) -> list[Path]:
    """Folders named by ``report.students`` (a string, a list, or None for the run's own students)."""
    if students is None:
        return sorted(p for p in Path(run_dir).glob(DEFAULT_STUDENTS_GLOB) if p.is_dir())
    items = [students] if isinstance(students, str | os.PathLike) else list(students)
    return [folder for item in items for folder in _expand(str(item))]


def _is_exported(folder: Path) -> bool:
    """ONNX and int8 files both present and newer than the weights they were exported from."""
    weights = [p.stat().st_mtime for p in folder.glob("*.safetensors")] + [p.stat().st_mtime
                                                                         for p in folder.glob("*.bin")]
    newest = max(weights, default=0.0)
    files = [onnx_file(folder), onnx_file(folder, quantized=True)]
    return all(f.is_file() and f.stat().st_mtime >= newest for f in files)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def holdout_agreement(folder: str | os.PathLike[str]) -> float | None:
    """The student's agreement with its teacher on the unlabeled examples held out of its
    training (``distill.holdout``), as recorded in its ``avatar.json``; None when not measured."""
    path = Path(folder) / META_NAME
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("metrics", {}).get(HOLDOUT_AGREEMENT)
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def student_rows(
    folder: str | os.PathLike[str], task: Task, n: int, split: str, export: bool, threads: int | None = None,
    copy: MetamorphicCopy | None = None,
) -> list[ReportRow]:
    """The student's row, and with ``export`` its ONNX and int8 rows (exported when stale)."""
    from avatar.report.export import export_all

    rows = [measure_model(folder, task, "torch", n, split, kind="student", threads=threads, copy=copy)]
    rows[0].holdout_agreement = holdout_agreement(folder)
    if export:
        if not _is_exported(Path(folder)):
            with _quiet_root_logger():  # onnxruntime's quantiser logs every tensor at INFO
                export_all(folder, int8=True)
        for backend in ("onnx", "int8"):
            rows.append(measure_model(folder, task, backend, n, split, kind=backend, threads=threads,
                                      copy=copy))
    return rows


@dataclass
class ReportOptions:
    """The ``report`` settings: which models, how many examples, export or not (plain values)."""

    teacher: str | None = None  # a fine-tuned teacher folder; None: the pipeline's own, if any
    students: Any = None  # folders or globs; None: <run_dir>/students/*/student
    examples: int = 200
    split: str = "test"
    export: bool = True
    threads: int | None = None
    flips: str | None = "rename"  # the transform of the metamorphic copy each model's flips count on
    baseline: bool = True  # a TF-IDF + LR row fitted on the labeled half (avatar.report.baseline)
    latency_repeats: int = 10  # round-robin repeats per model (avatar.report.latency); 0: keep each pass's
    latency_examples: int = 10  # examples per repeat: the first ones measured

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> ReportOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise AvatarError(f"unknown report option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        values = {k: v for k, v in options.items() if v is not None}
        return cls(**values)


def report_run(
    task: Task,
    run_dir: str | os.PathLike[str],
    options: ReportOptions,
    *,
    teacher_dir: str | os.PathLike[str] | None = None,
    student_folders: Sequence[Path] | None = None,
    front: Sequence[dict[str, Any]] | None = None,
    objective_names: Sequence[str] | None = None,
    students: Sequence[dict[str, Any]] | None = None,
    greening: dict[str, float] | None = None,
    notes: Sequence[str] = (),
    teacher_architecture: Mapping[str, Any] | None = None,
    teacher_name: str = "teacher",
    cache_dir: Path | None = None,
) -> dict[str, str]:
    """The one report driver (``train.py stage=report`` and the end of a search).

    Measures the teacher (``teacher_dir``, when there is one) and each student side by
    side, writes ``report.md``/``.csv``/``.png``, and with a ``front`` also ``pareto.png``
    (distilled members starred). ``notes`` are extra lines under the conditions (where the
    training ran, for example). Without a teacher folder, ``teacher_architecture`` (the
    teacher plugin's) gives the teacher's cost row (``measure_architecture``). Every model
    measured is also run on the split's metamorphic copy (``report.flips``; cached under
    ``cache_dir``): its flips. With ``report.baseline``, a TF-IDF + LR row fitted on the labeled
    half joins them (none when the task has no labeled half).
    """
    run_dir = Path(run_dir)
    rows: list[ReportRow] = []
    folders = student_dirs(options.students, run_dir) if student_folders is None else list(student_folders)
    measured = [*([teacher_dir] if teacher_dir and Path(teacher_dir).is_dir() else []), *folders]
    for folder in measured:  # every mismatch in one line, before any model is measured
        check_student_fits(read_student_meta(folder), folder, task=task.name, is_pair=task.is_pair,
                           num_labels=task.num_labels)
    copy = None
    if options.flips and supports(task):
        split: Split = options.split  # type: ignore[assignment]  # checked by read_split
        copy = metamorphic_copy(task, split, cache_dir or default_cache_dir(), options.flips)
    if teacher_dir:
        if not Path(teacher_dir).is_dir():
            raise AvatarError(f"report.teacher: folder not found: {teacher_dir} "
                              "(a fine-tuned teacher saved with its tokenizer)")
        rows.append(measure_model(teacher_dir, task, "torch", options.examples, options.split, kind="teacher",
                                  threads=options.threads, copy=copy))
    elif teacher_architecture:
        log.info("report: measuring the cost of %s's architecture (random weights)", teacher_name)
        rows.append(measure_architecture(teacher_architecture, task, teacher_name, min(options.examples, 50),
                                         options.split, options.threads))
    else:
        log.info("report: no teacher model to measure (a predictions-file teacher, or none given)")
    for folder in folders:
        rows.extend(student_rows(folder, task, options.examples, options.split, options.export,
                                 options.threads, copy))
    if not rows:
        raise AvatarError(
            f"nothing to report: set report.teacher and/or report.students (no {DEFAULT_STUDENTS_GLOB} "
            f"under {run_dir})"
        )
    baseline = baseline_row(task, options.examples, options.split, copy) if options.baseline else None
    if baseline is not None:
        rows.append(baseline.row)
        notes = [*notes, baseline.note]
    timing = interleave_latencies(
        rows, task, options.split, options.latency_repeats, min(options.latency_examples, options.examples),
        options.threads, None if teacher_dir else teacher_architecture, baseline.model if baseline else None)
    if timing is not None:
        notes = [*notes, *timing.notes()]
    add_teacher_agreement(rows)
    paths = {k: str(v) for k, v in build_report(rows, run_dir, title=f"Avatar report: {task.name}",
                                                  greening=greening, notes=notes).items()}
    if front is not None and objective_names is not None:
        distilled = {json.dumps(s["candidate"], sort_keys=True) for s in students or []}
        marks = [json.dumps(m["config"], sort_keys=True) in distilled for m in front]
        atomic_write_bytes(run_dir / "pareto.png", render_pareto_png(front, objective_names, marks))
        paths["pareto_png"] = str(run_dir / "pareto.png")
    log.info("report: %s", paths["md"])
    return paths
