"""The generated ``demo`` task and the example third-party task package.

The demo task must be reproducible (it stands in for a dataset), balanced, hard enough
that no single token gives the label away, and easy enough that a bag-of-tokens linear
model learns it. The example package must register its task through the
``avatar.plugins`` entry point once pip-installed, with no edit to Avatar.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from avatar.core.registry import TASKS
from avatar.plugins.tasks.demo import DemoTask
from avatar.task.base import SPLITS, Example

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "avatar-task-example"
TOKEN = r"[A-Za-z_]\w*|\d+|->|[<>=!]=|&&|\|\||[^\sA-Za-z_0-9]"


def tokens(code: str) -> set[str]:
    return set(re.findall(TOKEN, code))


def all_examples(task: DemoTask) -> list[Example]:
    return [example for split in SPLITS for example in task.read_split(split)]


def test_registered_with_its_metadata() -> None:
    assert TASKS.get("demo") is DemoTask
    task = DemoTask()
    assert (task.language, task.headline_metric, task.num_labels, task.is_pair) == ("c", "accuracy", 2, False)


def test_split_sizes_and_balance() -> None:
    task = DemoTask(data_dir="/ignored")
    expected = {"label_train": 400, "unlabel_train": 400, "valid": 100, "test": 100}
    for split, size in expected.items():
        examples = task.read_split(split)
        assert len(examples) == size
        assert Counter(e.label for e in examples) == {0: size // 2, 1: size // 2}
        assert all(isinstance(e.code, str) and e.code.count("{") == e.code.count("}") for e in examples)
    small = DemoTask(size=40, limit=7)
    assert [len(small.read_split(s)) for s in SPLITS] == [7, 7, 7, 7]
    assert [len(DemoTask(size=40).read_split(s)) for s in SPLITS] == [40, 40, 10, 10]


def test_no_function_is_shared_between_splits() -> None:
    codes = [e.code for e in all_examples(DemoTask())]
    assert len(set(codes)) == len(codes)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = DemoTask(seed=7), DemoTask(seed=7), DemoTask(seed=8)
    for split in SPLITS:
        assert first.read_split(split) == again.read_split(split)
        assert first.fingerprint(split) != other.fingerprint(split)


def test_no_single_token_separates_the_labels() -> None:
    examples = all_examples(DemoTask())
    token_sets = [tokens(str(e.code)) for e in examples]
    vocabulary = set().union(*token_sets)
    best = 0.0
    for token in vocabulary:
        hits = sum((token in found) == bool(e.label) for found, e in zip(token_sets, examples))
        best = max(best, hits / len(examples), 1 - hits / len(examples))
    assert best < 0.8, f"one token predicts {best:.0%} of the labels"
    dangerous = {"strcpy", "sprintf", "memcpy", "strcat"}
    for name in dangerous:  # the "dangerous" calls occur in safe functions too
        assert any(name in found and e.label == 0 for found, e in zip(token_sets, examples)), name


def test_learnable_by_a_bag_of_tokens_model() -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    task = DemoTask()
    train, test = task.read_split("label_train"), task.read_split("test")
    vectorizer = CountVectorizer(token_pattern=TOKEN, lowercase=False)
    features = vectorizer.fit_transform([str(e.code) for e in train])
    model = LogisticRegression(max_iter=2000).fit(features, [e.label for e in train])
    accuracy = model.score(vectorizer.transform([str(e.code) for e in test]), [e.label for e in test])
    assert accuracy > 0.7


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package pip-installed (offline) into a folder of its own.

    A ``--target`` install keeps the dist-info, so ``importlib.metadata`` finds the entry
    point through ``PYTHONPATH`` without touching the environment.
    """
    tmp_path = tmp_path_factory.mktemp("example")
    source = tmp_path / "src"  # pip builds in tree: copy so the checkout gets no build/ or egg-info
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--quiet", "--target", str(target), str(source)]
    subprocess.run(install, check=True, capture_output=True, text=True, timeout=180)
    assert (target / "avatar_task_example" / "data" / "snippets.jsonl").is_file()
    assert (target / "avatar_task_example" / "configs" / "task" / "snippet_kind.yaml").is_file()
    return target


@pytest.fixture(scope="module")
def fresh_process(example_site: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One fresh interpreter (cold imports cost seconds) with the example package installed.

    It prints the demo task's test fingerprint under another PYTHONHASHSEED, then what it
    sees of ``snippet_kind``.
    """
    tmp_path = tmp_path_factory.mktemp("fresh")
    target = example_site
    script = (
        "from avatar.plugins.tasks.demo import DemoTask\n"
        "from avatar.core.registry import TASKS\n"
        "print(DemoTask(seed=3).fingerprint('test'))\n"
        "t = TASKS.create('snippet_kind')\n"
        "splits = ('label_train', 'unlabel_train', 'valid', 'test')\n"
        "sizes = [len(t.read_split(s)) for s in splits]\n"
        "print(t.language, *sizes, sum(e.label for e in t.read_split('test')))\n"
        "from avatar.task.contract import check_task\n"
        "print(*check_task(t, 'snippet_kind').label_names)\n"
    )
    paths = os.pathsep.join([str(target), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": paths, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_identical_in_another_process(fresh_process: list[str]) -> None:
    """No salted ``hash()`` anywhere: a fresh interpreter with another hash seed agrees."""
    assert fresh_process[0] == DemoTask(seed=3).fingerprint("test")


def test_example_package_registers_through_its_entry_point(fresh_process: list[str]) -> None:
    assert fresh_process[1].split() == ["java", "16", "16", "8", "8", "4"]
    assert fresh_process[2].split() == ["loop", "recursive"], "the example keeps the task contract"


def test_search_runs_with_the_installed_plugin_task(example_site: Path, tmp_path: Path) -> None:
    """``task=snippet_kind`` resolves through the package's own config (Hydra search path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(example_site), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "search.py", "task=snippet_kind", "indicator=flops", "distill.top_k=0",
         "logger=none", "search.population=8", "search.generations=2", "count_feasible=false",
         f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pareto = json.loads((tmp_path / "pareto.json").read_text())
    assert pareto["task"] == "snippet_kind" and pareto["front"]


def test_unknown_plugin_without_the_package() -> None:
    """Without the install, the example task is not visible in this process."""
    if "snippet_kind" in TASKS:
        pytest.skip("avatar-task-example is installed in this environment")
    with pytest.raises(KeyError, match="snippet_kind"):
        TASKS.get("snippet_kind")
