"""``avatar predict`` streams its results and resumes an ``--output`` file a kill left behind.

One untrained tiny student (``tests.helpers.tiny_student``, a second to build) serves the
module: what is tested is the stream and the file, not the predictions. ``--batch-size 1``
where files are compared byte for byte: a resumed run forms other batches than an
uninterrupted one, and padding a snippet to another length may move a logit's last bit.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from avatar.cli.main import run_command
from avatar.core.text import has_code
from tests.helpers import tiny_student

predict_main = functools.partial(run_command, "predict")
SNIPPETS = ["int main(void) { return 0; }", "void f(char *s) { gets(s); }", "int g(int a) { return a; }",
            "void h(void) { }", "int k(char *s) { return s[0]; }", "int m(void) { return 1; }",
            "void n(char *d) { gets(d); }"]


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_student(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """Seven records with a blank line after the second: line numbers and indices differ."""
    lines = [json.dumps({"func": code}) for code in SNIPPETS]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")
    return path


def _run(student: Path, *args: str) -> int:
    return predict_main([str(student), *map(str, args), "--batch-size", "1"])


def test_results_carry_index_and_line_and_stdout_matches_output(
    student: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert _run(student, data, "-o", out) == 0
    assert capsys.readouterr().err == ""  # a fresh file: no resume line, and no bar off a terminal
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(7))
    assert [r["line"] for r in records] == [1, 2, 4, 5, 6, 7, 8]
    assert _run(student, data) == 0
    assert capsys.readouterr().out == out.read_text()


def test_rerun_resumes_after_a_torn_line_and_ends_with_the_uninterrupted_output(
    student: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "full.jsonl"
    assert _run(student, data, "-o", full) == 0
    lines = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    torn = lines[3][: len(lines[3]) // 2]
    partial.write_bytes(b"".join(lines[:3]) + torn)  # a kill in the middle of the 4th line
    capsys.readouterr()
    assert _run(student, data, "-o", partial) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"resuming: 3 of 7 already in {partial} (dropped a torn last line of {len(torn)} bytes)"]
    assert partial.read_bytes() == full.read_bytes()
    assert _run(student, data, "-o", partial) == 0  # nothing left to do
    assert capsys.readouterr().err.splitlines() == [f"resuming: 7 of 7 already in {partial}"]
    assert partial.read_bytes() == full.read_bytes()


def test_a_bad_line_stops_the_stream_after_the_chunks_before_it_and_a_rerun_goes_on(
    student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Chunks are 4 batches: with batch size 1, line 10's error comes after 8 results were written."""
    lines = [json.dumps({"func": SNIPPETS[i % len(SNIPPETS)]}) for i in range(12)]
    data, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    data.write_text("\n".join([*lines[:9], "{not json", *lines[10:]]) + "\n")
    assert _run(student, data, "-o", out) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {data}:10: malformed JSON (Expecting property "
                                                    "name enclosed in double quotes)"]
    assert len(out.read_text().splitlines()) == 8
    data.write_text("\n".join(lines) + "\n")
    assert _run(student, data, "-o", out) == 0
    assert capsys.readouterr().err.splitlines() == [f"resuming: 8 of 12 already in {out}"]
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == list(range(12))


def test_an_output_file_of_something_else_is_refused_in_one_line(
    student: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    assert _run(student, data, "-o", out) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: {out}:1: not a result line of avatar predict for input 0, "
                                         "so the run cannot resume from this file; pass another --output or "
                                         "remove it"]
    assert out.read_text() == "my notes\n"  # left as it was


@pytest.mark.parametrize("text, expected", [
    ("int f();", True), ("é", True), ("\ufffd", True), ("", False), (" \t\r\n", False),
    ("\x00\x01\n", False), ("\ufeff\u200b\u2028\xa0\x1b", False),
])
def test_has_code_means_a_visible_character(text: str, expected: bool) -> None:
    assert has_code(text) is expected
