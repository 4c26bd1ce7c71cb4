"""``avatar clones``: a tiny Java code base with a planted renamed copy, real tree-sitter, real MinHash
(datasketch) and a tiny saved pair student (``tests.helpers.tiny_student`` with a clone ``avatar.json``)."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path

import pytest

from avatar.cli.main import run_command
from avatar.report.clones import candidate_pairs, shingles, tokens
from tests.helpers import tiny_student

clones_main = functools.partial(run_command, "clones")

ORIGINAL = """\
    static long checksum(byte[] data, int offset, int length) {
        long sum = 17;
        for (int i = offset; i < offset + length; i++) {
            sum = sum * 31 + (data[i] & 0xff);
            if (sum > 1000000007L) { sum %= 1000000007L; }
        }
        return sum;
    }
"""
RENAMED = """\
    static long digest(byte[] bytes, int start, int count) {
        long total = 17;
        for (int k = start; k < start + count; k++) {
            total = total * 31 + (bytes[k] & 0xff);
            if (total > 1000000007L) { total %= 1000000007L; }
        }
        return total;
    }
"""
OTHERS = [
    """    public String greet(String name) { return "Hello, " + name + "!"; }\n""",
    """    void copy(java.io.InputStream in, java.io.OutputStream out) throws java.io.IOException {
        byte[] buffer = new byte[4096];
        int read;
        while ((read = in.read(buffer)) != -1) { out.write(buffer, 0, read); }
    }\n""",
    """    static int max(int[] values) {
        int best = Integer.MIN_VALUE;
        for (int v : values) best = Math.max(best, v);
        return best;
    }\n""",
    """    boolean isEmpty(java.util.List<String> items) { return items == null || items.isEmpty(); }\n""",
    """    java.util.Map<String, Integer> count(String[] words) {
        java.util.Map<String, Integer> counts = new java.util.HashMap<>();
        for (String w : words) counts.merge(w, 1, Integer::sum);
        return counts;
    }\n""",
]


@pytest.fixture(scope="module")
def pair_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tiny_student(tmp_path_factory.mktemp("pair"))
    (folder / "avatar.json").write_text(json.dumps(
        {"task": "clone", "is_pair": True, "language": "java", "max_length": 32, "labels": ["0", "1"]}))
    return folder


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "util").mkdir(parents=True)
    (root / "Hashing.java").write_text("class Hashing {\n" + ORIGINAL + OTHERS[0] + OTHERS[1] + "}\n")
    misc = "class Misc {\n" + OTHERS[2] + OTHERS[3] + RENAMED + OTHERS[4] + "}\n"
    (root / "util" / "Misc.java").write_text(misc)
    return root


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_names_abstracted_shingles_match_a_renamed_copy() -> None:
    assert tokens('x = "a b" + 0x1f;') == ["x", "=", '"a b"', "+", "0x1f", ";"]
    assert tokens('x = "a b" + 0x1f;', abstract_names=True) == ["ID", "=", "LIT", "+", "LIT", ";"]
    assert shingles(ORIGINAL, abstract_names=True) == shingles(RENAMED, abstract_names=True)
    assert shingles("f", 3) == {b"f"} and shingles("", 3) == set()


def test_candidate_step_proposes_the_planted_clone() -> None:
    codes = [ORIGINAL, *OTHERS, RENAMED]
    pairs = candidate_pairs(codes, neighbours=1)
    assert (0, len(codes) - 1) in pairs
    assert all(i < j for i, j in pairs) and pairs == sorted(set(pairs))
    assert len(pairs) <= len(codes)  # at most n * neighbours pairs, not n(n-1)/2


def test_jsonl_rows_sorted_with_the_planted_pair(pair_student: Path, project: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert clones_main([str(pair_student), str(project), "--threshold", "0", "--neighbours", "1"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert rows and all(list(row) == ["file1", "line1", "function1", "file2", "line2", "function2", "p_1"]
                        for row in rows)
    probabilities = [row["p_1"] for row in rows]
    assert probabilities == sorted(probabilities, reverse=True) and all(0 <= p <= 1 for p in probabilities)
    planted = {(row["function1"], row["function2"]) for row in rows}
    assert ("Hashing.checksum", "Misc.digest") in planted
    row = next(r for r in rows if r["function2"] == "Misc.digest" and r["function1"] == "Hashing.checksum")
    assert (Path(row["file1"]).name, row["line1"], Path(row["file2"]).parts[-2:], row["line2"]) == (
        "Hashing.java", 2, ("util", "Misc.java"), 8)
    summary = captured.err.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith(f"scored {len(rows)} candidate pairs of 21 ")


def test_csv_top_and_threshold(pair_student: Path, project: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "clones.csv"
    assert clones_main([str(pair_student), str(project), "--format", "csv", "--threshold", "0",
                        "--top", "2", "-o", str(out)]) == 0
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert table[0] == ["file1", "line1", "function1", "file2", "line2", "function2", "p_1"]
    assert len(table) == 3 and float(table[1][6]) >= float(table[2][6])
    assert "2 pairs at p >= 0" in capsys.readouterr().err
    assert clones_main([str(pair_student), str(project), "--threshold", "1", "-o", str(out)]) == 0
    assert out.read_text() == ""  # an untrained student is never certain: no pair reaches p = 1


def test_single_function_student_is_refused(pair_student: Path, project: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    single = tmp_path / "single"
    single.mkdir()
    for file in pair_student.iterdir():
        (single / file.name).write_bytes(file.read_bytes())
    (single / "avatar.json").write_text(json.dumps({"task": "vuln", "is_pair": False, "labels": ["0", "1"]}))
    assert clones_main([str(single), str(project)]) == 2
    assert "classifies single functions (task vuln)" in error_line(capsys)


def test_bad_paths_and_options_are_one_line(pair_student: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert clones_main([str(pair_student), str(tmp_path / "missing")]) == 2
    assert "path not found" in error_line(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert clones_main([str(pair_student), str(empty)]) == 2
    assert "found 0 JAVA function(s) in 0 file(s)" in error_line(capsys)
    assert clones_main([str(pair_student), str(empty), "--threshold", "2"]) == 2
    assert "--threshold" in error_line(capsys)
    assert clones_main([str(pair_student), str(empty), "--top", "0"]) == 2
    assert "--top" in error_line(capsys)
