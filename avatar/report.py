"""The report stage: teacher and students side by side on size, quality, latency, energy and CO2.

Every model is measured the same way, on the same examples of one split, on this machine:
loaded through ``avatar.predict.Predictor`` (so tokenisation is included, as a deployed
model pays it), run at batch 1, timed per example (median), and the whole run measured by
codecarbon (``avatar.green``). Energy and CO2 are reported per 1,000 examples,
extrapolated linearly from the N measured. The ratios divide the teacher's number by each
row's: "12x" means the row is 12 times smaller, faster or more frugal than the teacher.

Sizes are MiB (2**20 bytes), as ``avatar.cost`` and the paper compute them: fp32
parameters x 4 bytes for PyTorch rows, the file size for ONNX rows.

``report_run`` is the one driver (``python train.py stage=report`` and the end of a search) with
the ``report`` settings (``ReportOptions``):
``report.teacher`` (a saved teacher folder, optional), ``report.students`` (folders or
globs; default ``<run_dir>/students/*/student``), ``report.examples``, ``report.export``
(also export each student to ONNX and int8 and report those rows).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from avatar.cost import MB
from avatar.errors import AvatarError
from avatar.executor import torch_threads
from avatar.io import atomic_write_bytes, atomic_write_text
from avatar.student_folder import HOLDOUT_AGREEMENT, META_NAME, onnx_file
from avatar.task import Task

KINDS = ("teacher", "student", "onnx", "int8")
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
    predictions: list[int] = field(default_factory=list, repr=False)  # per measured example (not written)


# ---- measuring one model ----------------------------------------------------------------------------

def parameter_count(model_dir: str | os.PathLike[str]) -> int:
    """Parameters of a saved sequence classifier, counted on the meta device (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def model_gflops(model_dir: str | os.PathLike[str]) -> float | None:
    """Analytic GFLOPs of one forward pass at the model's full sequence length (``avatar.cost``)."""
    from avatar.cost import forward_flops
    from avatar.smt import ValueVars

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
        values = {key: config[key] for key in ("hidden_size", "num_hidden_layers", "intermediate_size")}
    except (OSError, KeyError, json.JSONDecodeError):
        return None
    values["max_sequence_length"] = min(int(config.get("max_position_embeddings", 514)) - 2, 512)
    values["position_embedding_type"] = config.get("position_embedding_type", "absolute")
    labels = len(config.get("id2label") or {0: 0, 1: 1})
    return int(forward_flops(ValueVars(values, labels))) / 1e9


def model_size_mb(model_dir: str | os.PathLike[str], backend: str) -> float:
    """fp32 parameter MiB for ``torch``; the exported file's MiB for ``onnx``/``int8``."""
    if backend == "torch":
        return parameter_count(model_dir) * 4 / MB
    path = onnx_file(model_dir, quantized=backend == "int8")
    if not path.is_file():
        raise AvatarError(f"missing {path}: run `python -m avatar.export {model_dir}` first")
    return path.stat().st_size / MB


def model_name(model_dir: str | os.PathLike[str]) -> str:
    """``runs/students/c03/student`` -> ``c03``: the folder that tells students apart."""
    folder = Path(model_dir).resolve()
    return folder.parent.name if folder.name in ("student", "model") else folder.name


def score(task: Task, predictions: np.ndarray, labels: Sequence[int | None]) -> dict[str, float]:
    """The task's metrics over the examples that have a gold label ({} when none has)."""
    import torch

    keep = [i for i, label in enumerate(labels) if label is not None]
    if not keep:
        return {}
    metrics = task.metrics()
    metrics.update(torch.as_tensor(predictions[keep]), torch.as_tensor([labels[i] for i in keep]))
    return {name: float(value) for name, value in metrics.compute().items()}


def measure_model(model_dir: str | os.PathLike[str], task: Task, backend: str = "torch",
                  n_examples: int = 100, split: str = "test", kind: str | None = None,
                  name: str | None = None, warmup: int = 2, threads: int | None = None) -> ReportRow:
    """Size, task metrics, batch-1 latency and energy of one saved model on up to ``n_examples``.

    ``model_dir`` is a folder with the Hugging Face model and its ``tokenizer.json`` (a
    student, or a teacher saved the same way). ``threads`` sets PyTorch's intra-op threads
    for the measurement (ONNX Runtime keeps its own default).
    """
    import torch

    from avatar.green import inference_workload
    from avatar.predict import Predictor

    if not Path(model_dir).is_dir():
        raise AvatarError(f"model folder not found: {model_dir}")
    kind = kind or ("student" if backend == "torch" else backend)
    if kind not in KINDS:
        raise AvatarError(f"unknown report kind {kind!r}; choose one of {', '.join(KINDS)}")
    examples = task.read_split(split)[: max(1, n_examples)]  # type: ignore[arg-type]
    if not examples:
        raise AvatarError(f"task {task.name!r} has no {split} examples to measure on")
    predictor = Predictor.load(model_dir, backend=backend)
    with torch_threads(threads):
        used_threads = torch.get_num_threads()
        result = inference_workload(predictor, [e.code for e in examples], batch_size=1, warmup=warmup,
                                    name=f"report-{kind}")
    assert result.outputs is not None
    predictions = result.outputs.argmax(axis=-1)
    metrics = score(task, predictions, [e.label for e in examples])
    energy, co2 = result.per_1000()
    label = name or model_name(model_dir)
    return ReportRow(
        name=label if kind in ("teacher", "student") else f"{label} ({kind})",
        kind=kind, size_mb=model_size_mb(model_dir, backend), metric_name=task.headline_metric,
        metric=metrics.get(task.headline_metric), latency_ms=result.latency_ms, energy_kwh_per_1k=energy,
        co2_g_per_1k=co2, estimated=result.measurement.estimated, n_examples=len(examples),
        backend=backend, split=split, threads=used_threads, gflops=model_gflops(model_dir),
        path=str(model_dir), metrics=metrics, labels=list(predictor.meta.labels),
        collapsed=len(examples) > 1 and len(set(predictions.tolist())) == 1, predictions=predictions.tolist(),
    )


def measure_architecture(architecture: Mapping[str, Any], task: Task, name: str, n_examples: int = 50,
                         split: str = "test", threads: int | None = None) -> ReportRow:
    """The cost row of a teacher known only by its architecture (the paper's logits files).

    Its model is built with random weights (they cost what trained ones do, as the latency
    and energy meters assume) and run at batch 1 on ``n_examples`` random sequences of its
    maximum length: size, latency and energy are measured, quality is unknown (n/a), so the
    ratios and the payback exist while agreement comes from ``distill.holdout``.
    """
    import torch

    from avatar.cost import forward_flops
    from avatar.green import inference_workload, random_sequences
    from avatar.smt import candidate_vars
    from avatar.space import Candidate
    from avatar.student import parameter_bytes, random_weight_model

    candidate = Candidate.from_dict(dict(architecture))
    with torch_threads(threads):
        used_threads = torch.get_num_threads()
        with random_weight_model(candidate, task.num_labels, seed=0, threads=used_threads) as model:
            inputs = random_sequences(model.config.vocab_size, int(candidate["max_sequence_length"]),
                                      max(1, n_examples))
            result = inference_workload(model, inputs, batch_size=1, warmup=1, name="report-teacher-cost")
            size_mb = parameter_bytes(model) / MB
    energy, co2 = result.per_1000()
    return ReportRow(
        name=f"{name} (cost: its architecture, random weights)", kind="teacher", size_mb=size_mb,
        metric_name=task.headline_metric, metric=None, latency_ms=result.latency_ms,
        energy_kwh_per_1k=energy, co2_g_per_1k=co2, estimated=result.measurement.estimated,
        n_examples=result.n, split=split, threads=used_threads,
        gflops=int(forward_flops(candidate_vars(candidate, task.num_labels))) / 1e9,
    )


# ---- writing the report -----------------------------------------------------------------------------

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


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def _bold_kind(source: str, estimated: bool) -> str:
    """``estimated by codecarbon ...`` -> ``**estimated** by codecarbon ...`` (prefixed when missing)."""
    kind = "estimated" if estimated else "measured"
    return f"**{kind}**{source[len(kind):]}" if source.startswith(kind) else f"**{kind}** ({source})"


def _default_names(labels: Sequence[str]) -> bool:
    """``0, 1, ...`` or transformers' ``LABEL_0, LABEL_1, ...``: names that say nothing."""
    return all(name in (str(i), f"LABEL_{i}") for i, name in enumerate(labels))


def label_notes(rows: Sequence[ReportRow]) -> list[str]:
    """Markdown lines on the classes, where they matter: named classes, or more than two.

    The names come from each model's ``config.json`` (``id2label``); a model whose names
    differ from the others' is called out, since its predictions mean other classes.
    """
    named = [row for row in rows if row.labels]
    if not named:
        return []
    common = Counter(tuple(row.labels) for row in named).most_common(1)[0][0]
    if len(common) <= 2 and _default_names(common) and all(tuple(r.labels) == common for r in named):
        return []
    classes = ", ".join(f"{i} = {name}" for i, name in enumerate(common))
    notes = [f"- Classes ({len(common)}, from the models' config.json `id2label`): {classes}."]
    if len(common) > 2:
        notes.append("- Precision, recall and F1 are macro averages over the classes; accuracy counts "
                     "examples.")
    for row in named:
        if tuple(row.labels) != common:
            notes.append(f"- {row.name} names its classes differently: {', '.join(row.labels)}.")
    return notes


def render_markdown(rows: Sequence[ReportRow], title: str, machine: dict[str, Any], source: str,
                    greening: dict[str, float] | None = None, notes: Sequence[str] = ()) -> str:
    """The table and the conditions it was measured under (machine, energy source, N, ``notes``)."""
    metric, split = rows[0].metric_name, rows[0].split
    split_n = max(r.n_examples for r in rows)
    estimated = any(r.estimated for r in rows)
    threads = sorted({r.threads for r in rows if r.threads}) or [machine.get("torch_threads", "?")]
    lines = [
        f"# {title}",
        "",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('logical_cpus', '?')} logical CPUs, "
        f"PyTorch threads {'/'.join(map(str, threads))}, ONNX Runtime default threads "
        f"({machine.get('platform', '')}).",
        f"- Energy and CO2 were {_bold_kind(source, estimated)}."
        + (" With no power sensor, energy follows run time here." if estimated else ""),
        f"- Each model ran up to {split_n} {split} examples at batch 1; latency is the median per example "
        "(tokenisation included); energy and CO2 are per 1,000 examples, extrapolated from those measured.",
        "- Ratios are teacher / model: how many times smaller, faster and less energy-hungry.",
        *(f"- {note}" for note in notes),
        *label_notes(rows),
        "",
        f"| model | kind | size MB | GFLOPs | {metric} ({split}) | latency ms (batch 1) | energy kWh / 1k "
        "| CO2 g / 1k | size ratio | latency ratio | energy ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, ratio in zip(rows, ratios(rows)):
        lines.append(
            f"| {row.name} | {row.kind} | {row.size_mb:.2f} | {_fmt(row.gflops, '.3g')} "
            f"| {_fmt(row.metric, '.4f')} "
            f"| {row.latency_ms:.2f} | {row.energy_kwh_per_1k:.3g} | {row.co2_g_per_1k:.3g} "
            f"| {_ratio(ratio['size'])} | {_ratio(ratio['latency'])} | {_ratio(ratio['energy'])} |"
        )
    agreeing = [row for row in rows if row.teacher_agreement is not None]
    if agreeing:
        lines += ["", "Agreement with the teacher's predictions on the same examples: "
                  + ", ".join(f"{row.name} {row.teacher_agreement:.2%}" for row in agreeing) + "."]
    held = [row for row in rows if row.holdout_agreement is not None]
    if held:
        lines += ["", "Agreement with the teacher on unlabeled examples held out of every student's "
                  "training (`distill.holdout`): "
                  + ", ".join(f"{row.name} {row.holdout_agreement:.2%}" for row in held) + "."]
    collapsed = [row.name for row in rows if row.collapsed]
    if collapsed:
        lines += ["", f"**Collapsed** (one predicted class for every example, chance-level quality): "
                  f"{', '.join(collapsed)}."]
    if greening:
        lines += ["", *greening_lines(rows, greening)]
    return "\n".join(lines) + "\n"


def greening_lines(rows: Sequence[ReportRow], greening: dict[str, float]) -> list[str]:
    """What the greening itself cost (surrogate and students' training energy) and when it pays back.

    Payback: the training energy divided by the energy each inference saves against the
    teacher (teacher's per-example energy minus the best student's).
    """
    spent = sum(greening.values())
    parts = ", ".join(f"{name.removesuffix('_kwh')} {value:.3g} kWh" for name, value in greening.items())
    lines = [f"- Greening cost (training energy, codecarbon): {spent:.3g} kWh ({parts})."]
    teacher = teacher_row(rows)
    students = [r for r in rows if r.kind == "student" and not r.collapsed]
    if teacher is None or not students or spent <= 0:
        return lines
    best = max(students, key=lambda r: r.metric if r.metric is not None else float("-inf"))
    saved = (teacher.energy_kwh_per_1k - best.energy_kwh_per_1k) / 1000.0
    if saved > 0:
        lines.append(f"- It pays back after about {spent / saved:,.0f} inferences with {best.name} "
                     "instead of the teacher.")
    return lines


def render_csv(rows: Sequence[ReportRow]) -> str:
    """One line per row: every field, the class names (``|``-joined), the ratios and the extra metrics."""
    extra = sorted({name for row in rows for name in row.metrics})
    base = [k for k in asdict(rows[0]) if k not in ("metrics", "labels", "predictions")]
    header = (base + ["labels"] + [f"{label}_ratio" for label, _ in RATIO_FIELDS]
              + [f"metric_{name}" for name in extra])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row, ratio in zip(rows, ratios(rows)):
        values = asdict(row)
        ratio_values = [ratio[label] for label, _ in RATIO_FIELDS]
        writer.writerow([values[k] for k in base] + ["|".join(row.labels)] + ratio_values
                        + [row.metrics.get(name) for name in extra])
    return buffer.getvalue()


def render_png(rows: Sequence[ReportRow]) -> bytes:
    """Size vs headline metric (log size) beside latency and energy bars (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"teacher": "tab:red", "student": "tab:blue", "onnx": "tab:green", "int8": "tab:purple"}
    names = [r.name for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    scatter = axes[0]
    for row in rows:
        if row.metric is not None:
            scatter.scatter(row.size_mb, row.metric, color=colours[row.kind], label=row.kind, s=40)
            scatter.annotate(row.name, (row.size_mb, row.metric), fontsize=7, xytext=(4, 3),
                             textcoords="offset points")
    scatter.set_xscale("log")
    scatter.set_xlabel("size (MB, log)")
    scatter.set_ylabel(f"{rows[0].metric_name} ({rows[0].split})")
    scatter.set_title("quality vs size")
    handles, labels = scatter.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        scatter.legend(unique.values(), unique.keys(), fontsize=8)
    for axis, attribute, title in ((axes[1], "latency_ms", "latency ms (batch 1)"),
                                   (axes[2], "energy_kwh_per_1k", "energy kWh / 1,000 examples")):
        axis.bar(range(len(rows)), [max(getattr(r, attribute), 1e-12) for r in rows],
                 color=[colours[r.kind] for r in rows])
        axis.set_yscale("log")
        axis.set_xticks(range(len(rows)), names, rotation=35, ha="right", fontsize=7)
        axis.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def render_pareto_png(
    front: Sequence[dict[str, Any]], objectives: Sequence[str], distilled: Sequence[bool]
) -> bytes:
    """Effectiveness against each of the next two objectives over the front; distilled members starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_name = objectives[0]
    x_names = list(objectives[1:3]) or [objectives[0]]
    fig, axes = plt.subplots(1, len(x_names), figsize=(6 * len(x_names), 4.5), squeeze=False)
    for axis, x_name in zip(axes[0], x_names):
        xs = [m["objectives"][x_name] for m in front]
        ys = [m["objectives"][y_name] for m in front]
        axis.scatter(xs, ys, color="tab:blue", s=25, label="Pareto front")
        marked = [(x, y) for x, y, d in zip(xs, ys, distilled) if d]
        if marked:
            axis.scatter(*zip(*marked), color="tab:red", marker="*", s=160, label="distilled")
        axis.set_xlabel(x_name)
        axis.set_ylabel(y_name)
        axis.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def build_report(rows: Sequence[ReportRow], out_dir: str | os.PathLike[str], title: str = "Avatar report",
                 machine: dict[str, Any] | None = None, source: str | None = None,
                 greening: dict[str, float] | None = None, notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` in ``out_dir`` (atomically); their paths.

    ``machine`` and ``source`` default to this machine and the running tracker's description.
    """
    from avatar.green import energy_source, machine_info

    if not rows:
        raise AvatarError("nothing to report: no models were measured")
    for row in rows:
        if row.kind not in KINDS:
            raise AvatarError(f"report row {row.name!r}: unknown kind {row.kind!r}")
    folder = Path(out_dir)
    paths = {"md": folder / "report.md", "csv": folder / "report.csv", "png": folder / "report.png"}
    markdown = render_markdown(rows, title, machine or machine_info(), source or energy_source(), greening,
                               notes)
    atomic_write_text(paths["md"], markdown)
    atomic_write_text(paths["csv"], render_csv(rows))
    atomic_write_bytes(paths["png"], render_png(rows))
    return paths


# ---- the stage ---------------------------------------------------------------------------------------

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
    folder: str | os.PathLike[str], task: Task, n: int, split: str, export: bool, threads: int | None = None
) -> list[ReportRow]:
    """The student's row, and with ``export`` its ONNX and int8 rows (exported when stale)."""
    from avatar.export import export_all

    rows = [measure_model(folder, task, "torch", n, split, kind="student", threads=threads)]
    rows[0].holdout_agreement = holdout_agreement(folder)
    if export:
        if not _is_exported(Path(folder)):
            with _quiet_root_logger():  # onnxruntime's quantiser logs every tensor at INFO
                export_all(folder, int8=True)
        for backend in ("onnx", "int8"):
            rows.append(measure_model(folder, task, backend, n, split, kind=backend, threads=threads))
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
) -> dict[str, str]:
    """The one report driver (``train.py stage=report`` and the end of a search).

    Measures the teacher (``teacher_dir``, when there is one) and each student side by
    side, writes ``report.md``/``.csv``/``.png``, and with a ``front`` also ``pareto.png``
    (distilled members starred). ``notes`` are extra lines under the conditions (where the
    training ran, for example). Without a teacher folder, ``teacher_architecture`` (the
    teacher plugin's) gives the teacher's cost row (``measure_architecture``).
    """
    run_dir = Path(run_dir)
    rows: list[ReportRow] = []
    if teacher_dir:
        if not Path(teacher_dir).is_dir():
            raise AvatarError(f"report.teacher: folder not found: {teacher_dir} "
                              "(a fine-tuned teacher saved with its tokenizer)")
        rows.append(measure_model(teacher_dir, task, "torch", options.examples, options.split, kind="teacher",
                                  threads=options.threads))
    elif teacher_architecture:
        log.info("report: measuring the cost of %s's architecture (random weights)", teacher_name)
        rows.append(measure_architecture(teacher_architecture, task, teacher_name, min(options.examples, 50),
                                         options.split, options.threads))
    else:
        log.info("report: no teacher model to measure (a predictions-file teacher, or none given)")
    folders = student_dirs(options.students, run_dir) if student_folders is None else list(student_folders)
    for folder in folders:
        rows.extend(student_rows(folder, task, options.examples, options.split, options.export,
                                 options.threads))
    if not rows:
        raise AvatarError(
            f"nothing to report: set report.teacher and/or report.students (no {DEFAULT_STUDENTS_GLOB} "
            f"under {run_dir})"
        )
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
