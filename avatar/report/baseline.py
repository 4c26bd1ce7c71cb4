"""The report's classical baseline row: TF-IDF + logistic regression, fitted here on the labeled half.

Why every report has one: a 3 MB student is worth its search and distillation only if it
beats what a classical model gets in a minute on a CPU. The row is measured like every
other row where that is cheap: its headline metric on the same measured examples, batch-1
latency (median per example, features included), energy and CO2 (codecarbon, per 1,000
examples); its size is the pickled vectoriser and regression; GFLOPs do not apply (n/a).
Its kind is ``baseline``: it is never the teacher, so ratios and agreement are taken against
the teacher as for the students (and the baseline's own agreement with the teacher is shown).
A task with no labeled ``label_train`` examples gets no row (an info line says why).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass

import numpy as np

from avatar.code.metamorphic import MetamorphicCopy
from avatar.core.errors import AvatarError
from avatar.report.measure import flip_count, score
from avatar.report.rows import ReportRow, set_latency
from avatar.run.timing import Spread
from avatar.search.cost import MB
from avatar.task.base import Task, label_names
from avatar.teach.tfidf import TfidfClassifier, TfidfOptions, fit_on_labeled_half

log = logging.getLogger("avatar")

BASELINE_NAME = "TF-IDF + LR (baseline)"
WARMUP = 2


@dataclass
class Baseline:
    """The row and the sentence the report prints under its conditions."""

    row: ReportRow
    note: str
    model: TfidfClassifier | None = None  # the fitted model, for the report's interleaved latency


def baseline_row(task: Task, n_examples: int, split: str = "test", copy: MetamorphicCopy | None = None,
                 options: TfidfOptions | None = None) -> Baseline | None:
    """Fit on ``label_train`` and measure on the first ``n_examples`` of ``split``; None without labels."""
    from avatar.run.green import measure_workload

    try:
        model = fit_on_labeled_half(task, options)
    except AvatarError as error:
        log.info("report: no TF-IDF + LR baseline row: %s", error)
        return None
    examples = task.read_split(split)[: max(1, n_examples)]  # type: ignore[arg-type]
    if not examples:
        raise AvatarError(f"task {task.name!r} has no {split} examples to measure on")
    codes = [example.code for example in examples]
    for code in codes[:WARMUP]:
        model.logits([code])
    times: list[float] = []
    outputs: list[np.ndarray] = []

    def run() -> None:
        for code in codes:
            started = time.perf_counter()
            outputs.append(model.logits([code]))
            times.append((time.perf_counter() - started) * 1000.0)

    measurement = measure_workload(run, "report-baseline")
    predictions = np.concatenate(outputs).argmax(axis=1)
    metrics = score(task, predictions, [example.label for example in examples])
    scale = 1000.0 / len(examples)
    flips = flip_count(model, predictions, copy, len(examples), None)
    row = ReportRow(
        name=BASELINE_NAME, kind="baseline", size_mb=model.size_bytes() / MB,
        metric_name=task.headline_metric, metric=metrics.get(task.headline_metric),
        latency_ms=statistics.median(times),
        energy_kwh_per_1k=measurement.energy_kwh * scale, co2_g_per_1k=measurement.co2_g * scale,
        estimated=measurement.estimated, n_examples=len(examples), backend="sklearn", split=split,
        metrics=metrics, labels=label_names(task),
        collapsed=len(examples) > 1 and len(set(predictions.tolist())) == 1, predictions=predictions.tolist(),
        flips=flips[0] if flips else None, flip_examples=flips[1] if flips else None,
    )
    set_latency(row, Spread.from_ms(times, "baseline"), False)
    return Baseline(row, baseline_note(model), model)


def baseline_note(model: TfidfClassifier) -> str:
    """What the baseline row is, for the report's list of conditions."""
    used = ", ".join(model.options.pair_features)
    pairs = f"; a pair's features: {used} of its two functions' TF-IDF vectors" if model.is_pair else ""
    return (
        f"{BASELINE_NAME}: TF-IDF over code tokens ({len(model.vectorizer.vocabulary_):,} terms) and "
        f"logistic regression (scikit-learn), fitted on the task's {model.examples:,} labeled examples in "
        f"{model.fit_seconds:.1f} s{pairs}. Its size is the pickled model; its latency is scikit-learn's "
        "at batch 1, features included; GFLOPs do not apply."
    )
