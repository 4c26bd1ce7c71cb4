"""Writing a report: ``report.md`` (the table and its conditions), ``report.csv`` and the PNGs."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_bytes, atomic_write_text, portable_path
from avatar.report.figures import figure_png, pyplot
from avatar.report.rows import (
    KINDS,
    RATIO_FIELDS,
    ReportRow,
    format_latency,
    format_or_na,
    ratios,
    teacher_row,
)


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


def load_notes(rows: Sequence[ReportRow]) -> list[str]:
    """A bold line naming the rows measured while the CPUs they could use were busy (none: no line)."""
    loaded = [row.name for row in rows if row.loaded]
    if not loaded:
        return []
    return [f"- **Measured on a loaded machine** (their threads waited for a CPU while they ran): "
            f"{', '.join(loaded)}. Their latency and energy are unreliable; rerun on an idle machine."]


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
        f"- Each model ran up to {split_n} {split} examples at batch 1; latency is the median ms per example "
        "[its interquartile range] (tokenisation included); energy and CO2 are per 1,000 examples, "
        "extrapolated from those measured.",
        "- Ratios are teacher / model: how many times smaller, faster and less energy-hungry.",
        *(f"- {note}" for note in notes),
        *label_notes(rows),
        *load_notes(rows),
        "",
        f"| model | kind | size MB | GFLOPs | {metric} ({split}) | latency ms (batch 1) [IQR] "
        "| energy kWh / 1k | CO2 g / 1k | size ratio | latency ratio | energy ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, ratio in zip(rows, ratios(rows)):
        lines.append(
            f"| {row.name} | {row.kind} | {row.size_mb:.2f} | {format_or_na(row.gflops, '.3g')} "
            f"| {format_or_na(row.metric, '.4f')} "
            f"| {format_latency(row)} | {row.energy_kwh_per_1k:.3g} | {row.co2_g_per_1k:.3g} "
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
    robust = [row for row in rows if row.flips is not None]
    if robust:
        lines += ["", "Flips (robustness): measured examples whose predicted label changes when the "
                  "functions' names, parameters and locals are renamed (the same metamorphic copy for "
                  "every model; fewer is better): "
                  + ", ".join(f"{row.name} {row.flips} of {row.flip_examples}" for row in robust) + "."]
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


def render_csv(rows: Sequence[ReportRow], folder: str | os.PathLike[str] | None = None) -> str:
    """One line per row: every field, the class names (``|``-joined), the ratios and the extra metrics.

    With ``folder`` (where the CSV goes), each model's ``path`` is relative to it when
    inside (``portable_path``): a moved run directory's report still names its own students.
    """
    extra = sorted({name for row in rows for name in row.metrics})
    base = [k for k in asdict(rows[0]) if k not in ("metrics", "labels", "predictions")]
    header = (base + ["labels"] + [f"{label}_ratio" for label, _ in RATIO_FIELDS]
              + [f"metric_{name}" for name in extra])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row, ratio in zip(rows, ratios(rows)):
        values = asdict(row)
        if folder is not None and values["path"]:
            values["path"] = portable_path(values["path"], folder)
        ratio_values = [ratio[label] for label, _ in RATIO_FIELDS]
        writer.writerow([values[k] for k in base] + ["|".join(row.labels)] + ratio_values
                        + [row.metrics.get(name) for name in extra])
    return buffer.getvalue()


def render_png(rows: Sequence[ReportRow]) -> bytes:
    """Size vs headline metric (log size) beside latency and energy bars (log scale)."""
    plt = pyplot()

    colours = {"teacher": "tab:red", "student": "tab:blue", "onnx": "tab:green", "int8": "tab:purple",
               "baseline": "tab:gray"}
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
    return figure_png(fig)


def render_pareto_png(
    front: Sequence[dict[str, Any]], objectives: Sequence[str], distilled: Sequence[bool]
) -> bytes:
    """Effectiveness against each of the next two objectives over the front; distilled members starred."""
    plt = pyplot()

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
    return figure_png(fig)


def build_report(rows: Sequence[ReportRow], out_dir: str | os.PathLike[str], title: str = "Avatar report",
                 machine: dict[str, Any] | None = None, source: str | None = None,
                 greening: dict[str, float] | None = None, notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` in ``out_dir`` (atomically); their paths.

    ``machine`` and ``source`` default to this machine and the running tracker's description.
    """
    from avatar.run.green import energy_source, machine_info

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
    atomic_write_text(paths["csv"], render_csv(rows, folder))
    atomic_write_bytes(paths["png"], render_png(rows))
    return paths
