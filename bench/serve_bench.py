"""Benchmark: ``avatar serve`` throughput and latency at 1, 8 and 32 concurrent clients, torch vs int8 ONNX.

Starts the real server (``python -m avatar serve``) once per backend on a copy of the student
(exported with ``avatar.report.export.export_all`` when the copy has no ONNX model), then for
each client count runs that many threads for ``--seconds``, each on its own keep-alive
connection, posting real BigCloneBench test pairs (``$AVATAR_DATA/bigclonebench``; synthetic
Java pairs when that is absent) and timing every request. Prints a markdown table: requests/s,
p50/p99 latency and the mean number of requests the server grouped into one model call
(from ``/info``). Clients and server share the CPUs the command is given (``taskset``).

Run: ``taskset -c 0 .venv/bin/python bench/serve_bench.py [student] --seconds 20``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar.distill.folder import onnx_file, read_student_meta  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STUDENT = Path("/root/.cache/avatar/bench/robustness/codebert-context-baseline/student")


def real_pairs(limit: int) -> list[tuple[str, str]] | None:
    """BigCloneBench test pairs through the clone task's own reader, or None without the data."""
    if not (Path(os.environ.get("AVATAR_DATA", "")) / "bigclonebench").is_dir():
        return None
    from avatar.core.registry import TASKS

    return [example.code for example in TASKS.create("clone").read_split("test")[:limit]]


def synthetic_pairs(limit: int) -> list[tuple[str, str]]:
    body = "int total = 0; for (int i = 0; i < n; i++) {{ total += values[i] * {k}; }} return total;"
    return [(f"int sum{i}(int[] values, int n) {{ {body.format(k=i)} }}",
             f"int add{i}(int[] xs, int n) {{ {body.format(k=i + 1)} }}") for i in range(limit)]


def bodies(pairs: list[tuple[str, str]], is_pair: bool) -> list[bytes]:
    if is_pair:
        return [json.dumps({"func1": a, "func2": b}).encode() for a, b in pairs]
    return [json.dumps({"code": a}).encode() for a, _ in pairs]


class Server:
    def __init__(self, student: Path, backend: str, max_batch_size: int, max_wait_ms: float) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [sys.executable, "-m", "avatar", "serve", str(student), "--backend", backend,
                   "--port", str(self.port), "--max-batch-size", str(max_batch_size),
                   "--max-wait-ms", str(max_wait_ms)]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        started = time.perf_counter()
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise SystemExit(f"the server did not start (exit {self.process.wait()})")
        self.start_s = time.perf_counter() - started
        print(f"# {line.strip()} (ready in {self.start_s:.1f} s)", file=sys.stderr)

    def stats(self) -> dict[str, int]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/info")
        return json.loads(connection.getresponse().read())["stats"]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def load(port: int, payloads: list[bytes], clients: int, seconds: float) -> tuple[list[float], int]:
    """``clients`` threads posting for ``seconds``: every latency (s) and the number of failures."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        index = number
        while time.perf_counter() < deadline:
            payload = payloads[index % len(payloads)]
            index += clients
            started = time.perf_counter()
            connection.request("POST", "/predict", body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                latencies[number].append(time.perf_counter() - started)
            else:
                failures[number] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [value for row in latencies for value in row], sum(failures)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student", type=Path, nargs="?", default=DEFAULT_STUDENT)
    parser.add_argument("--backends", default="torch,int8")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20.0, help="per cell (backend x clients)")
    parser.add_argument("--pairs", type=int, default=400, help="distinct test inputs cycled through")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    args = parser.parse_args()

    meta = read_student_meta(args.student)
    pairs = real_pairs(args.pairs)
    source = "BigCloneBench test pairs" if pairs else "synthetic Java pairs (no $AVATAR_DATA/bigclonebench)"
    payloads = bodies(pairs or synthetic_pairs(args.pairs), meta.is_pair)
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        student = Path(shutil.copytree(args.student, Path(tmp) / "student"))  # the original stays as it is
        if any(b != "torch" for b in backends) and not onnx_file(student, quantized=True).is_file():
            from avatar.report.export import export_all

            export_all(student, int8=True)
        rows = []
        for backend in backends:
            server = Server(student, backend, args.max_batch_size, args.max_wait_ms)
            try:
                load(server.port, payloads[:4], 1, 1.0)  # warm-up: first calls allocate
                for clients in (int(c) for c in args.clients.split(",")):
                    before = server.stats()
                    started = time.perf_counter()
                    latencies, failures = load(server.port, payloads, clients, args.seconds)
                    wall = time.perf_counter() - started
                    after = server.stats()
                    calls = max(1, after["batches"] - before["batches"])
                    grouped = (after["requests"] - before["requests"]) / calls
                    rows.append((backend, clients, len(latencies) / wall, percentile(latencies, 0.5) * 1000,
                                 percentile(latencies, 0.99) * 1000, grouped, failures, server.start_s))
            finally:
                server.stop()

    print(f"student: {args.student} (task {meta.task}); inputs: {source}; {args.seconds:g} s per cell; "
          f"--max-batch-size {args.max_batch_size} --max-wait-ms {args.max_wait_ms:g}; "
          f"CPUs: {len(os.sched_getaffinity(0))}")
    print("| backend | clients | requests/s | p50 ms | p99 ms | requests per model call | errors | start s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend, clients, rate, p50, p99, grouped, failures, start in rows:
        print(f"| {backend} | {clients} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {grouped:.1f} | {failures} "
              f"| {start:.1f} |")
    if statistics.fmean(r[6] for r in rows):
        print("some requests failed: see the errors column", file=sys.stderr)


if __name__ == "__main__":
    main()
