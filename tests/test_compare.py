"""``avatar compare``: run folders in, one table and one PNG out; the shared hypervolume frame.

Run folders are written here in the formats search.py writes (``pareto.json``,
``students.json``, ``report.csv``, ``.hydra/overrides.yaml``), small enough to check the
numbers by hand. The end-to-end test on a real two-seed multirun is in test_cli_search.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from avatar.cli.main import run_command
from avatar.core.errors import AvatarError
from avatar.report.compare import compare, find_runs

compare_main = functools.partial(run_command, "compare")

OBJECTIVES = {"effectiveness": "max", "size_mb": "min"}


def _run(folder: Path, points: list[tuple[float, float]], overrides: list[str],
         students: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True)
    front = [{"config": {}, "objectives": {"effectiveness": e, "size_mb": s}} for e, s in points]
    pareto = {"front": front, "hypervolume": [0.1, 0.2], "objectives": OBJECTIVES, "task": "demo"}
    (folder / "pareto.json").write_text(json.dumps(pareto))
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if students is not None:
        (folder / "students.json").write_text(json.dumps(students))
    return folder


def _student(folder: Path, name: str, test_f1: float, size: float) -> dict:
    return {"front_index": 0, "headline_metric": "f1", "headline": 0.5, "size_mb": size,
            "metrics": {"val/f1": 0.5, "test/f1": test_f1},
            "student_dir": str(folder / "students" / name / "student"), "objectives": {}}


def test_table_png_and_the_common_hypervolume(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    first = _run(sweep / "0", [(1.0, 2.0)], ["search.seed=1", "logger=none"])
    students = [_student(sweep / "1", "a", 0.6, 1.5), _student(sweep / "1", "b", 0.7, 2.5)]
    second = _run(sweep / "1", [(0.0, 1.0), (0.5, 1.5)], ["search.seed=2", "logger=none"], students)
    (second / "report.csv").write_text(
        "name,kind,path,latency_ms\n"
        f"b,student,{second / 'students' / 'b' / 'student'},3.25\n"
        f"b (onnx),onnx,{second / 'students' / 'b' / 'student'},1.0\n"
    )
    assert find_runs([str(sweep)]) == [first, second]
    table, png = compare([str(sweep)])
    lines = table.splitlines()
    assert lines[0] == "shared overrides: logger=none"
    # minimisation frame: effectiveness -> -e; union ranges e in [0, 1], size in [1, 2].
    # run 0: one point (-1 -> 0, 2 -> 1): box (1.1 - 0) x (1.1 - 1) = 0.11
    # run 1: (0 -> 1, 1 -> 0) and (-0.5 -> 0.5, 1.5 -> 0.5): 0.1 x 1.1 + 0.5 x 0.6 = 0.41
    assert lines[3] == "| 0 | search.seed=1 | 1 | 0.2 | 0.11 | - | - | - | - |"
    assert lines[4] == "| 1 | search.seed=2 | 2 | 0.2 | 0.41 | b | test/f1 0.7000 | 2.50 | 3.25 |"
    assert png == sweep / "compare.png" and png.read_bytes()[:4] == b"\x89PNG"


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert compare_main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no pareto.json in or below {tmp_path / 'empty'}: is it a search run (search.py) directory?"
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pareto.json").write_text("{")
    with pytest.raises(AvatarError, match=r"cannot read .*broken/pareto.json"):
        compare([str(broken)])


def test_runs_from_different_folders_get_names_relative_to_their_shared_prefix(tmp_path: Path) -> None:
    """multirun/<day>/<time>/0 beside outputs/<day>/<time>: the same day and time deeper down are
    not a shared folder (it used to raise "is not in the subpath of")."""
    from avatar.report.compare import _names

    first = tmp_path / "multirun" / "2026-12-06" / "09-00-00" / "0"
    second = tmp_path / "outputs" / "2026-12-06" / "09-00-00"
    assert _names([first, second]) == ["multirun/2026-12-06/09-00-00/0", "outputs/2026-12-06/09-00-00"]
