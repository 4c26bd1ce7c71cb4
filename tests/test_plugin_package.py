"""The plugin package of docs/plugins.md, built from the page alone, and its author's mistakes.

Every code block of the page titled ``avatar-codelang/...`` is written to a folder, the
data file gets balanced three-class snippets (``tests.helpers.codelang_records``), and the
package is pip-installed (offline, ``--target``) beside this checkout. Then, as a user
would: ``avatar check-task codelang`` must print the page's table, the page's teacher,
meter and data-root variant must work, and each mistake of the page's "Common mistakes"
must end in exactly the line the page shows, exit code 2, no traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import CODELANG_LABELS, codelang_records

DOC = REPO / "docs" / "plugins.md"
PACKAGE = "avatar-codelang/"


def fenced_blocks() -> list[tuple[str, str]]:
    """Every fenced code block of docs/plugins.md, in order: (info string, text)."""
    blocks: list[tuple[str, str]] = []
    info: str | None = None
    lines: list[str] = []
    for line in DOC.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("```"):
            if info is None:
                info, lines = line[3:].strip(), []
            else:
                blocks.append((info, "".join(lines)))
                info = None
        elif info is not None:
            lines.append(line)
    return blocks


def doc_blocks() -> dict[str, str]:
    """Titled code blocks (```python title="..."): title -> text."""
    titled = (re.fullmatch(r'\w+ title="([^"]+)"', info) for info, _ in fenced_blocks())
    return {match.group(1): body for match, (_, body) in zip(titled, fenced_blocks()) if match}


def plain_blocks() -> list[str]:
    """Blocks without a language: program output."""
    return [body.strip() for info, body in fenced_blocks() if not info]


def doc_error_lines() -> list[str]:
    """The ``error: ...`` lines the page promises."""
    return [body for body in plain_blocks() if body.startswith("error: ")]


def doc_line(*parts: str) -> str:
    """The page's one error line that holds every one of ``parts``."""
    [line] = [line for line in doc_error_lines() if all(part in line for part in parts)]
    return line


def known_options_elided(line: str) -> str:
    """The line with its list of known options elided: other installed plugins may join it."""
    return re.sub(r"known (\w+) options: [^;]*;", r"known \1 options: ...;", line)


def _data_file(site: Path) -> Path:
    return site / "avatar_codelang" / "data" / "snippets.jsonl"


def _write_records(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's package, pip-installed into a folder of its own (its dist-info included)."""
    root = tmp_path_factory.mktemp("codelang")
    blocks = {title[len(PACKAGE):]: body for title, body in doc_blocks().items() if title.startswith(PACKAGE)}
    needed = {"pyproject.toml", "avatar_codelang/task.py", "avatar_codelang/configs/task/codelang.yaml"}
    assert needed <= set(blocks)
    source = root / "src"
    for name, body in blocks.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(body, encoding="utf-8")
    (source / "avatar_codelang" / "data").mkdir()
    _write_records(_data_file(source), codelang_records())
    target = root / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--quiet", "--target", str(target), str(source)]
    subprocess.run(install, check=True, capture_output=True, text=True, timeout=180)
    for shipped in ("data/snippets.jsonl", "configs/task/codelang.yaml", "configs/teacher/keywords.yaml"):
        assert (target / "avatar_codelang" / shipped).is_file(), f"the wheel lacks {shipped}"
    return target


def _copy(site: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    return copy


def _env(site: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
            "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


SCRIPT = r'''
import json, sys, tempfile
from pathlib import Path

import yaml

from avatar.cli.main import main
from avatar.task.contract import check_task
from avatar.core.errors import AvatarError
from avatar.search.objectives import MeterContext
from avatar.core.registry import METERS, TASKS, TEACHERS
from avatar.distill.student import build_model
from avatar.task.base import Example
from avatar.teach.teacher import TeacherContext, teacher_knowledge
from tests.helpers import load_space

out = {}
print("CHECK-TASK RC", main(["check-task", "codelang"]))
import avatar_codelang
package = Path(avatar_codelang.__file__).parent
task = TASKS.create("codelang")
spec = yaml.safe_load((package / "configs" / "teacher" / "keywords.yaml").read_text())
teacher = TEACHERS.build(spec)
tmp = Path(tempfile.mkdtemp())
knowledge, _, _ = teacher_knowledge(task, teacher, TeacherContext(tmp / "cache", tmp / "run", {}))
out["teacher"] = [list(knowledge.logits.shape), knowledge.gold_agreement()]

space = load_space("tiny")
candidate = space.candidate([0] * len(space.dimensions))
context = MeterContext(space, 3, str(tmp))
measured = METERS.create("params_k").measure(candidate, context)
expected = sum(p.numel() for p in build_model(candidate, 3).parameters()) / 1000
out["meter"] = [measured, expected, len(json.loads((tmp / "params_cache.json").read_text()))]

exec(compile(sys.argv[1], "variant", "exec"), {})
root = tmp / "data" / "codelang"
root.mkdir(parents=True)
for split in ("label_train", "unlabel_train", "valid", "test"):
    rows = [Example(r["code"], r["label"]) for r in (json.loads(line) for line in
            (package / "data" / "snippets.jsonl").read_text().splitlines()) if r["split"] == split]
    lines = [json.dumps({"code": e.code, "label": e.label}) for e in rows]
    (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
summary = check_task(TASKS.create("codelang_files", data_dir=str(tmp / "data")), "codelang_files")
out["variant"] = {split: s.examples for split, s in summary.splits.items()}

def message(task):
    try:
        check_task(task, "codelang")
    except AvatarError as error:
        return f"error: {error}"

cls = TASKS.get("codelang")
out["label_names"] = message(type("T", (cls,), {"label_names": ("python", "java")})())
def without_ids(self, split):
    return [Example(e.code, e.label) for e in cls.read_split(self, split)]
no_ids = type("T", (cls,), {"read_split": without_ids})
out["no_ids"] = message(no_ids())
data = package / "data" / "snippets.jsonl"
lines = data.read_text().splitlines()
record = json.loads(lines[0]); del record["split"]
data.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
out["read_split_bug"] = message(cls())
print("RESULT " + json.dumps(out))
'''


def test_the_docs_package_task_teacher_meter_and_variant(site: Path, tmp_path: Path) -> None:
    copy = _copy(site, tmp_path)  # the script edits its data file last
    variant = doc_blocks()["variant: data from the data root"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, variant], cwd=REPO, env=_env(copy, tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    stdout = done.stdout.splitlines()
    table = "\n".join(stdout[: stdout.index("CHECK-TASK RC 0")])
    documented = [body for body in plain_blocks() if body.startswith("task codelang:")]
    assert documented == [table.strip()], f"docs/plugins.md shows another check-task table than:\n{table}"
    result = json.loads(stdout[-1].removeprefix("RESULT "))
    shape, agreement = result["teacher"]
    assert shape == [30, 3] and agreement >= 0.9, "the keywords teacher should nearly know the toy task"
    measured, expected, entries = result["meter"]
    assert measured == pytest.approx(expected) and entries == 1
    assert result["variant"] == {"label_train": 30, "unlabel_train": 30, "valid": 15, "test": 15}
    assert result["label_names"] == doc_line("label_names has 2 names")
    assert result["no_ids"] == doc_line("id '' is used")
    assert result["read_split_bug"] == doc_line("read_split raised")


def _labels_as_names(site: Path) -> None:
    records = codelang_records()
    _write_records(_data_file(site), [{**r, "label": CODELANG_LABELS[r["label"]]} for r in records])


def _too_few_labels(site: Path) -> None:
    path = site / "avatar_codelang" / "task.py"
    text = path.read_text().replace("num_labels = 3", "num_labels = 2")
    path.write_text(re.sub(r"\n    label_names = .*\n", "\n", text))


def _no_valid_split(site: Path) -> None:
    _write_records(_data_file(site), [r for r in codelang_records() if r["split"] != "valid"])


def _misspelt_group(site: Path) -> None:
    [entry_points] = site.glob("avatar_codelang-*.dist-info/entry_points.txt")
    entry_points.write_text(entry_points.read_text().replace("[avatar.plugins]", "[avatar.plugin]"))


def _yaml_not_shipped(site: Path) -> None:
    (site / "avatar_codelang" / "configs" / "task" / "codelang.yaml").unlink()


MISTAKES: list[tuple[Callable[[Path], None], str]] = [
    (_labels_as_names, "label is 'python' (str)"),
    (_too_few_labels, "label is 2; expected an int in 0..1"),
    (_no_valid_split, "split 'valid': read_split returned no examples"),
    (_misspelt_group, "entry points were found in group 'avatar.plugin'"),
    (_yaml_not_shipped, "task 'codelang' is registered, but"),
]


@pytest.mark.parametrize("mistake, documented", MISTAKES, ids=[m.__name__.strip("_") for m, _ in MISTAKES])
def test_each_mistake_ends_in_the_documented_line(
    mistake: Callable[[Path], None], documented: str, site: Path, tmp_path: Path
) -> None:
    """``search.py task=codelang`` (the surrogate reads the data) stops before any teacher work."""
    copy = _copy(site, tmp_path)
    mistake(copy)
    done = subprocess.run(
        [sys.executable, "search.py", "task=codelang", "teacher=scratch", "logger=none",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, env=_env(copy, tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    expected = doc_line(documented)
    assert known_options_elided(line) == known_options_elided(expected), "docs/plugins.md shows another line"
    assert not (tmp_path / "cache" / "teachers").exists(), "no teacher work before the check"


@pytest.mark.slow
def test_search_distils_a_named_student_with_the_docs_package(site: Path, tmp_path: Path) -> None:
    """The page's task, teacher and meter in one search: a student whose classes carry the names."""
    from avatar.cli.main import run_command
    predict_main = functools.partial(run_command, 'predict')

    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "search.py", "task=codelang", "teacher=keywords", "indicator=flops",
         "distill.top_k=1", "space=tiny", "constraints=size1mb",
         "meters.items=[{name: size_mb}, {name: params_k}]",
         "search.population=8", "search.generations=2", "count_feasible=false", "trainer.max_steps=30",
         "report.examples=15", "report.export=false", "logger=none", f"hydra.run.dir={run_dir}"],
        cwd=REPO, env=_env(site, tmp_path), capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pareto = json.loads((run_dir / "pareto.json").read_text())
    assert set(pareto["objectives"]) == {"effectiveness", "size_mb", "params_k"}
    [student] = json.loads((run_dir / "students.json").read_text())
    folder = run_dir / student["student_dir"]  # relative to the run directory
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "python", "1": "java", "2": "c"}
    assert "0 = python, 1 = java, 2 = c" in (run_dir / "report.md").read_text()
    snippet = tmp_path / "snippet.java"
    snippet.write_text("public static int twice(int a) {\n    System.out.println(a);\n    return a * 2;\n}\n")
    assert predict_main([str(folder), str(snippet)]) == 0


# ---- the check of config-group options, before Hydra (in process) --------------------------------------


def _choices(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from avatar.cli.preflight import check_config_choices

    with pytest.raises(SystemExit) as exit_info:
        check_config_choices(list(argv), REPO / "configs")
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    return line


def test_an_unknown_option_of_any_group_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _choices(capsys, "constraints=size5mb") == (
        "error: no config constraints/size5mb (constraints=size5mb); known constraints options: "
        "size10mb, size1mb, size3mb, size3mb_flops, size3mb_memory"
    )
    line = _choices(capsys, "--multirun", "teacher=codebert,codebrt")
    assert line.startswith("error: no config teacher/codebrt (teacher=codebert,codebrt); known teacher")
    assert "no installed package registers teacher 'codebrt'" in line and "'avatar.plugins' group" in line


def test_known_options_and_other_overrides_pass(capsys: pytest.CaptureFixture[str]) -> None:
    from avatar.cli.preflight import check_config_choices

    argv = ["--multirun", "task=demo,vuln", "teacher=scratch", "+experiment=demo", "task.name=x",
            "search.seed=1,2", "hydra.run.dir=/tmp/x", "task=choice(demo,vuln)", "indicator=null"]
    check_config_choices(argv, REPO / "configs")
    assert capsys.readouterr().err == ""


def test_a_time_budget_on_the_command_line_passes_the_preflight(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: the preflight checked trainer keys with a dummy value 0, and a real
    ``trainer.max_time=00:00:15:00`` failed as "got 0" before Hydra parsed it."""
    from avatar.cli.preflight import check_trainer_overrides

    check_trainer_overrides(["trainer.max_time=00:00:15:00", "teacher.trainer.max_time=00:01:00:00",
                             "trainer.max_epochs=-1"])
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit):
        check_trainer_overrides(["trainer.max_tim=00:00:15:00"])
    assert "trainer.max_tim is not a lightning.Trainer option" in capsys.readouterr().err
