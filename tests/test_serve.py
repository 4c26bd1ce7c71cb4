"""``avatar serve``: real HTTP on 127.0.0.1 against real server processes (LitServe, uvicorn, a
spawned inference worker) with tiny students.

Two servers start once, side by side: a single-function student on the torch backend and a
pair student on ONNX. Each test asks them over HTTP; the module ends by sending both SIGTERM
and checking the graceful exit (143, one line, no traceback).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatar.cli.main import main
from tests.helpers import REPO, tiny_student

START_TIMEOUT_S = 120  # a cold torch import on a busy CI core; a laptop starts in a few seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _student(tmp: Path, name: str, meta: dict) -> Path:
    folder = tiny_student(tmp / name)
    labels = ["no", "yes"]
    (folder / "avatar.json").write_text(json.dumps({"max_length": 32, "labels": labels, **meta}))
    return folder


class Server:
    """``python -m avatar serve ...`` in a process of its own, its output kept in files."""

    def __init__(self, tmp: Path, student: Path, *options: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = tmp / f"{self.port}.out", tmp / f"{self.port}.err"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "avatar", "serve", str(student), "--port", str(self.port), *options],
                stdout=out, stderr=err, env=env, cwd=REPO)

    def wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.out.read_text().strip():
                return self.out.read_text()
            assert self.process.poll() is None, self.err.read_text()
            time.sleep(0.1)
        raise AssertionError(f"no start line after {START_TIMEOUT_S} s: {self.err.read_text()}")

    def post(self, body: object) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/predict", data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return response.status, response.read()

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, self.err.read_text()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    from avatar.report.export import export_all

    tmp = tmp_path_factory.mktemp("serve")
    single = _student(tmp, "single", {"task": "devign", "is_pair": False})
    pair = _student(tmp, "pair", {"task": "clone", "is_pair": True})
    export_all(pair, int8=False)
    started = {"single": Server(tmp, single, "--max-wait-ms", "300", "--max-batch-size", "16"),
               "pair": Server(tmp, pair, "--backend", "onnx")}
    try:
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        stops = {name: server.stop() for name, server in started.items()}
    for name, (code, err) in stops.items():
        assert code == 143, f"{name}: exit {code}: {err}"
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("terminated (SIGTERM)"), err


def test_the_start_line_names_the_url_the_student_and_the_backend(servers: dict[str, Server]) -> None:
    line = servers["single"].out.read_text().strip()
    assert len(line.splitlines()) == 1
    assert servers["single"].url in line and "student" in line and "backend torch" in line
    assert "backend onnx" in servers["pair"].out.read_text()


def test_one_request_gets_a_label_and_probabilities(servers: dict[str, Server]) -> None:
    status, body = servers["single"].post({"code": "int main(void) { return 0; }"})
    assert status == 200
    assert body["label"] in (0, 1) and body["label_name"] == ["no", "yes"][body["label"]]
    assert len(body["probabilities"]) == 2 and abs(sum(body["probabilities"]) - 1) < 1e-5
    status, listed = servers["single"].post({"inputs": [{"code": "int main(void) { return 0; }"},
                                                        {"code": "void f(char *s) { gets(s); }"}]})
    assert status == 200 and len(listed["results"]) == 2
    assert listed["results"][0]["probabilities"] == pytest.approx(body["probabilities"], abs=1e-5)
    assert servers["single"].get("/health") == (200, b"ok")


def test_concurrent_requests_are_batched_into_one_model_call(servers: dict[str, Server]) -> None:
    server, clients = servers["single"], 12
    barrier, answers = threading.Barrier(clients), []

    def ask(number: int) -> None:
        barrier.wait()
        answers.append(server.post({"code": f"int f{number}(void) {{ return {number}; }}"}))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in answers] == [200] * clients
    info = json.loads(server.get("/info")[1])
    assert info["task"] == "devign" and info["labels"] == ["no", "yes"] and info["is_pair"] is False
    assert info["stats"]["largest_batch"] > 1, info["stats"]
    assert info["stats"]["batches"] < info["stats"]["requests"]


def test_a_pair_student_reads_func1_and_func2(servers: dict[str, Server]) -> None:
    status, body = servers["pair"].post({"func1": "int main(void) { return 0; }",
                                         "func2": "void f(char *s) { gets(s); }"})
    assert status == 200 and len(body["probabilities"]) == 2
    status, body = servers["pair"].post({"code": "int main(void) { return 0; }"})
    assert status == 400 and "pairs of functions" in body["error"]


@pytest.mark.parametrize(("body", "expected"), [
    ({"func1": "int f(void);", "func2": "int g(void);"}, "single functions"),
    ({"source": "int f(void);"}, "missing field code"),
    ({"code": " \n\t"}, "empty"),
    ({"inputs": [{"code": "int f(void);"}, {"code": 7}]}, "inputs[1]: code must be a string"),
    (b"{not json", "not valid JSON"),
])
def test_a_bad_request_is_a_400_and_one_json_line(servers: dict[str, Server], body: object,
                                                   expected: str) -> None:
    status, answer = servers["single"].post(body)
    assert status == 400
    assert list(answer) == ["error"] and expected in answer["error"] and "\n" not in answer["error"]


def test_a_student_of_another_kind_is_refused_at_start(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pair = _student(tmp_path, "pair", {"task": "clone", "is_pair": True})
    assert main(["serve", str(pair), "--single"]) == 2
    assert main(["serve", str(pair), "--task", "devign"]) == 2
    assert main(["serve", str(pair), "--backend", "int8"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "reads pairs of functions" in lines[0] and "'clone', not 'devign'" in lines[1]
    assert "avatar export" in lines[2]


def test_a_taken_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    single = _student(tmp_path, "single", {"task": "devign", "is_pair": False})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(single), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Address already in use" in err
