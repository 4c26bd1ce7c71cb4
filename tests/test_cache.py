"""The cache under concurrent runs and damage: each entry computed once, a corrupt one rebuilt."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avatar.core.io import append_jsonl, cache_lock, read_jsonl
from avatar.core.registry import TASKS, TEACHERS
from avatar.distill.tokenizer import TOKENIZER_FORMAT, cached_tokenizer
from avatar.teach.teacher import TeacherContext, teacher_knowledge

CORPUS = ["int main(void) { return 0; }", "static int add(int a, int b) { return a + b; }"] * 5


def _corrupt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [message for message in messages if "is corrupt" in message]


def _knowledge_setup(tmp_path: Path):  # noqa: ANN202 - (task, teacher, context)
    np.save(tmp_path / "logits.npy", np.arange(24, dtype=np.float32).reshape(12, 2))
    task = TASKS.create("demo", size=12)
    teacher = TEACHERS.create("predictions", path=str(tmp_path / "logits.npy"))
    return task, teacher, TeacherContext(tmp_path / "cache", tmp_path, {})


def test_truncated_knowledge_is_reported_deleted_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task, teacher, context = _knowledge_setup(tmp_path)
    first, from_cache, _ = teacher_knowledge(task, teacher, context)
    assert not from_cache
    [entry] = (tmp_path / "cache" / "knowledge").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # a half-written copy, a full disk
    with caplog.at_level(logging.WARNING, logger="avatar"):
        again, from_cache, _ = teacher_knowledge(task, teacher, context)
    assert not from_cache  # rebuilt, not misread
    np.testing.assert_array_equal(again.logits, first.logits)
    [warning] = _corrupt_warnings(caplog)
    assert warning.startswith(f"cache entry {entry} is corrupt (") and warning.endswith("); rebuilding")
    assert teacher_knowledge(task, teacher, context)[1]  # the rebuilt entry is read back


def test_unreadable_tokenizer_is_reported_deleted_and_retrained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def provider() -> list[str]:
        calls.append(1)
        return CORPUS

    first = cached_tokenizer("Word", 100, provider, tmp_path, "demo-k")
    entry = tmp_path / "demo-k" / f"Word_100_v{TOKENIZER_FORMAT}"
    text = (entry / "tokenizer.json").read_text()
    (entry / "tokenizer.json").write_text(text[: len(text) // 2])
    with caplog.at_level(logging.WARNING, logger="avatar"):
        second = cached_tokenizer("Word", 100, provider, tmp_path, "demo-k")
    assert len(calls) == 2
    assert second(CORPUS[1])["input_ids"] == first(CORPUS[1])["input_ids"]
    [warning] = _corrupt_warnings(caplog)
    assert warning.startswith(f"cache entry {entry} is corrupt (") and warning.endswith("); rebuilding")
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name, f"{entry.name}.lock"]


TRAIN_SLOWLY = """
import sys, time
from pathlib import Path
from avatar.distill.tokenizer import cached_tokenizer

def provider():
    Path(sys.argv[2]).write_text("started")
    time.sleep(3)
    return ["int main(void) { return 0; }"] * 5

cached_tokenizer("Word", 100, provider, sys.argv[1], "demo-k")
"""


def test_a_concurrent_miss_waits_and_reads_the_first_ones_entry(tmp_path: Path) -> None:
    started = tmp_path / "started"
    first = subprocess.Popen([sys.executable, "-c", TRAIN_SLOWLY, str(tmp_path / "cache"), str(started)])
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first process did not start"
            time.sleep(0.1)

        def must_not_train() -> list[str]:
            raise AssertionError("the second process trained the entry again")

        tokenizer = cached_tokenizer("Word", 100, must_not_train, tmp_path / "cache", "demo-k")
        assert tokenizer.convert_tokens_to_ids("main") > 4
    finally:
        assert first.wait(timeout=120) == 0


def test_cache_lock_excludes_another_process(tmp_path: Path) -> None:
    probe = (
        "import fcntl, sys\n"
        "handle = open(sys.argv[1], 'a')\n"
        "try:\n    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n    sys.exit(3)\n"
    )
    entry = tmp_path / "entry.npz"
    with cache_lock(entry) as lock_path:
        assert lock_path == tmp_path / "entry.npz.lock"
        assert subprocess.run([sys.executable, "-c", probe, str(lock_path)]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(lock_path)]).returncode == 0


def test_an_append_after_a_torn_line_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps({"key": "a"}) + "\n" + '{"key": "b", "met')  # a writer killed mid-line
    assert read_jsonl(path, tolerate_torn_tail=True) == [{"key": "a"}]
    with caplog.at_level(logging.WARNING, logger="avatar"):
        append_jsonl(path, {"key": "c"})
    assert read_jsonl(path) == [{"key": "a"}, {"key": "c"}]
    assert "dropped a torn last line" in caplog.text


def test_damaged_surrogate_runs_are_redone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avatar.plugins.indicators.surrogate import _read_runs

    path = tmp_path / "runs.jsonl"
    path.write_text('{"key": "a", "metric": 0.5}\n{"key": \n{"key": "c", "metric": 0.7}\n')
    with caplog.at_level(logging.WARNING, logger="avatar"):
        assert _read_runs(path) == {}
    assert not path.exists()
    [warning] = _corrupt_warnings(caplog)
    assert "runs.jsonl:2: malformed JSON" in warning
    path.write_text('{"key": "a", "metric": 0.5}\n{"key": "b", "met')
    assert list(_read_runs(path)) == ["a"]  # a torn last line only: the runs before it stand
