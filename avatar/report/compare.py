"""``avatar compare <run dir or multirun dir>...``: several searches side by side, one table, one plot.

Why: a sweep (``search.py --multirun search.seed=1,2,3 constraints=...``) writes one run
directory per combination; the question is always the same (which setting gave the better
front, and the better student?). Each run contributes its ``pareto.json`` (the front and
per-generation hypervolume), ``students.json`` (distilled students, when ``distill.top_k``
> 0), ``report.csv`` (measured latency, when the report ran) and ``.hydra/overrides.yaml``
(what the run changed). The table has one row per run; the PNG overlays the fronts.

Hypervolume, two columns:

- ``hv (run)``: the last generation's hypervolume from ``pareto.json``. Each search
  measures it against its own reference point (a little worse than its generation 0), so
  it tracks progress within a run but is not comparable across runs.
- ``hv (common)``: recomputed here with moocore's ``hypervolume`` over every run that has the
  same objectives, in one shared frame: each objective in minimisation form (a ``max``
  objective negated) and scaled to [0, 1] by the minimum and maximum over all compared
  fronts; the reference point is 1.1 in every objective (the worst value plus 10% of the
  range, the search's own rule). Larger is better; the maximum is 1.1 ** objectives.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avatar.core.errors import AvatarError, DataError
from avatar.core.io import atomic_write_bytes, recorded_path
from avatar.report.figures import figure_png, pyplot
from avatar.report.rows import format_or_na

PARETO = "pareto.json"
REFERENCE = 1.1
"""The common reference point, per objective, in the [0, 1]-scaled minimisation frame."""


@dataclass
class Run:
    """One search's outputs, as read from its directory."""

    path: Path
    name: str
    pareto: dict[str, Any]
    overrides: list[str]
    students: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)  # student_dir -> measured latency
    common_hv: float | None = None

    @property
    def objectives(self) -> dict[str, str]:
        """Objective name -> ``min``/``max``, in the front's order."""
        declared = self.pareto.get("objectives")
        if isinstance(declared, dict) and declared:
            return {str(k): str(v) for k, v in declared.items()}
        front = self.pareto.get("front") or []
        names = front[0]["objectives"] if front else {}
        return {name: "max" if name == "effectiveness" else "min" for name in names}

    @property
    def front(self) -> list[dict[str, Any]]:
        return list(self.pareto.get("front") or [])

    @property
    def run_hv(self) -> float | None:
        values = self.pareto.get("hypervolume")
        if isinstance(values, list) and values:
            return float(values[-1])
        return float(values) if isinstance(values, int | float) else None


# ---- reading ------------------------------------------------------------------------------------------


def _natural(path: Path) -> list[Any]:
    """Sort key: ``multirun/.../10`` after ``.../9``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(paths: list[str]) -> list[Path]:
    """Run directories: each path holding ``pareto.json``, or every such directory below it."""
    runs: list[Path] = []
    for given in paths:
        folder = Path(given)
        if folder.is_file() and folder.name == PARETO:
            folder = folder.parent
        if not folder.is_dir():
            raise AvatarError(f"not a directory: {folder}")
        found = [folder] if (folder / PARETO).is_file() else sorted(
            (p.parent for p in folder.rglob(PARETO)), key=_natural
        )
        if not found:
            raise AvatarError(f"no {PARETO} in or below {folder}: is it a search run (search.py) directory?")
        runs.extend(run for run in found if run not in runs)
    return runs


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None


def _overrides(run: Path) -> list[str]:
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise DataError(f"cannot read {path}: {error}") from None
    return [str(v) for v in values] if isinstance(values, list) else []


def _latencies(run: Path) -> dict[str, float]:
    """Measured batch-1 latency of each student in ``report.csv`` (torch rows), by folder."""
    path = run / "report.csv"
    if not path.is_file():
        return {}
    out: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        if row.get("kind") == "student" and row.get("path") and row.get("latency_ms"):
            out[str(recorded_path(row["path"], run, must_exist=False).resolve())] = float(row["latency_ms"])
    return out


def read_run(path: Path, name: str) -> Run:
    pareto = _json(path / PARETO)
    if not isinstance(pareto, dict) or not isinstance(pareto.get("front"), list):
        raise DataError(f"{path / PARETO}: expected an object with a 'front' list (written by search.py)")
    students_path = path / "students.json"
    students = _json(students_path) if students_path.is_file() else []
    if not isinstance(students, list):
        raise DataError(f"{students_path}: expected a list of students")
    return Run(path, name, pareto, _overrides(path), students, _latencies(path))


def _names(paths: list[Path]) -> list[str]:
    """Short run names: each path relative to the runs' common folder (the folder name for one run)."""
    if len(paths) == 1:
        return [paths[0].name]
    resolved = [p.resolve() for p in paths]
    # the shared prefix only: a part that matches further down (two runs' `outputs`) is not shared
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    return [str(p.relative_to(common)) or p.name for p in resolved]


# ---- numbers ------------------------------------------------------------------------------------------


def _minimisation(run: Run, names: list[str]) -> np.ndarray:
    directions = run.objectives
    rows = [[(-1.0 if directions[n] == "max" else 1.0) * float(m["objectives"][n]) for n in names]
            for m in run.front]
    return np.asarray(rows, dtype=float).reshape(-1, len(names))


def common_hypervolumes(runs: list[Run]) -> None:
    """Set ``common_hv`` of every run with the same objectives as the first one (module docstring)."""
    import moocore

    if not runs:
        return
    key = list(runs[0].objectives.items())
    group = [run for run in runs if list(run.objectives.items()) == key and run.front]
    if not group:
        return
    names = [name for name, _ in key]
    points = [_minimisation(run, names) for run in group]
    union = np.vstack(points)
    low, span = union.min(axis=0), np.maximum(union.max(axis=0) - union.min(axis=0), 1e-12)
    reference = [REFERENCE] * len(names)
    for run, front in zip(group, points):
        run.common_hv = float(moocore.hypervolume((front - low) / span, ref=reference))


def best_student(run: Run) -> dict[str, Any] | None:
    """The student with the highest headline metric (test when measured, else validation)."""
    best, best_score = None, -np.inf
    for student in run.students:
        metric = student.get("headline_metric") or "accuracy"
        metrics = student.get("metrics") or {}
        score = metrics.get(f"test/{metric}", metrics.get(f"val/{metric}", student.get("headline")))
        if isinstance(score, int | float) and score > best_score:
            best, best_score = student, float(score)
    if best is None:
        return None
    metric = best.get("headline_metric") or "accuracy"
    split = "test" if f"test/{metric}" in (best.get("metrics") or {}) else "val"
    folder = best.get("student_dir")
    where = recorded_path(folder, run.path, must_exist=False) if folder else None  # relative to the run
    latency = run.latency_ms.get(str(where.resolve())) if where else None
    if latency is None:
        latency = (best.get("objectives") or {}).get("latency_ms")
    return {"name": Path(folder).parent.name if folder else str(best.get("front_index")),
            "metric": f"{split}/{metric}", "score": best_score, "size_mb": best.get("size_mb"),
            "latency_ms": latency}


# ---- output -------------------------------------------------------------------------------------------



def split_overrides(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """Overrides every run shares, and each run's own (what tells the runs apart)."""
    if len(runs) < 2:
        return [], [run.overrides for run in runs]
    shared = [o for o in runs[0].overrides if all(o in run.overrides for run in runs[1:])]
    return shared, [[o for o in run.overrides if o not in shared] for run in runs]


def render_table(runs: list[Run]) -> str:
    """A Markdown table, one row per run, after a line with the overrides all runs share."""
    shared, own = split_overrides(runs)
    lines = []
    if shared:
        lines.append(f"shared overrides: {' '.join(shared)}")
    lines += [
        "| run | overrides | front | hv (run) | hv (common) | best student | metric | size MB | latency ms |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for run, overrides in zip(runs, own):
        best = best_student(run)
        student = "| - | - | - | -"
        if best is not None:
            size, latency = format_or_na(best["size_mb"], ".2f"), format_or_na(best["latency_ms"], ".2f")
            student = f"| {best['name']} | {best['metric']} {best['score']:.4f} | {size} | {latency}"
        run_hv, common_hv = format_or_na(run.run_hv, ".4g"), format_or_na(run.common_hv, ".4g")
        lines.append(f"| {run.name} | {' '.join(overrides) or '-'} | {len(run.front)} "
                     f"| {run_hv} | {common_hv} {student} |")
    lines.append("hv (common): moocore hypervolume of each front, objectives in minimisation form scaled to "
                 f"[0, 1] over all fronts, reference {REFERENCE} per objective")
    return "\n".join(lines)


def render_png(runs: list[Run]) -> bytes:
    """The fronts overlaid: the first objective against each of the next two, one colour per run."""
    plt = pyplot()

    names = list(runs[0].objectives)
    y_name = names[0]
    x_names = names[1:3] or names[:1]
    _, own = split_overrides(runs)
    fig, axes = plt.subplots(1, len(x_names), figsize=(6 * len(x_names), 4.5), squeeze=False)
    for axis, x_name in zip(axes[0], x_names):
        for run, overrides in zip(runs, own):
            members = [m for m in run.front if x_name in m["objectives"] and y_name in m["objectives"]]
            if not members:
                continue
            xs = [m["objectives"][x_name] for m in members]
            ys = [m["objectives"][y_name] for m in members]
            label = run.name + (f" ({' '.join(overrides)})" if overrides else "")
            axis.scatter(xs, ys, s=22, alpha=0.8, label=label)
        axis.set_xlabel(x_name)
        axis.set_ylabel(y_name)
        axis.legend(fontsize=7)
    fig.suptitle("Pareto fronts")
    fig.tight_layout()
    return figure_png(fig)


def compare(paths: list[str], png: str | None = None) -> tuple[str, Path]:
    """Read the runs under ``paths``; the table, and the PNG's path once written."""
    found = find_runs(paths)
    runs = [read_run(path, name) for path, name in zip(found, _names(found))]
    common_hypervolumes(runs)
    if png is None:
        only = Path(paths[0])
        png = str((only if len(paths) == 1 and only.is_dir() else Path.cwd()) / "compare.png")
    target = Path(png)
    atomic_write_bytes(target, render_png(runs))
    return render_table(runs), target
