"""``avatar serve``: a student behind an HTTP endpoint that batches concurrent requests.

Why LitServe (Lightning AI's ``litserve``): dynamic batching is built in (``max_batch_size``,
``batch_timeout``: requests that arrive within the wait are grouped into one ``predict`` call),
it is plain FastAPI + uvicorn underneath, it comes from the makers of Lightning, which Avatar
already trains with, and it starts quickly: about 9 s to the first answer with the int8 backend
on one busy core here (the torch backend adds torch's import). Ray Serve (``ray[serve]``;
``ray`` is pinned for ``executor=ray``) has the same batching (``@serve.batch``) but first
starts a Ray cluster (GCS, raylet, dashboard, proxy and replica actors): far more processes
and start-up than a 3 MB model needs. A FastAPI app with a third-party batching helper is what
LitServe already is, with a smaller, less maintained helper.

One LitServe trait shapes this module: an exception in ``decode_request`` fails every request
of its batch, so bodies are validated by pydantic in the HTTP process (``SingleBody``,
``PairBody``), before they are queued, and a bad one is a 400 of its own.

Shape: the HTTP process (uvicorn, forked) validates the JSON body and queues it; one
inference worker (spawned, so torch is only ever imported there) loads the student with
``avatar.report.predict.Predictor`` (backends torch, onnx, int8) and answers each batch with
one call. Counters shared between the two (requests, batches, largest batch) are on ``/info``.
"""

# No ``from __future__ import annotations``: LitServe hands ``decode_request``'s annotation to
# FastAPI as the body type, and a string annotation would not resolve in LitServe's module.
import multiprocessing
import signal
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError

from avatar.core.errors import AvatarError
from avatar.core.text import has_code
from avatar.distill.folder import (
    TOKENIZER_NAME,
    StudentMeta,
    check_student_dir,
    check_student_fits,
    onnx_file,
    read_student_meta,
    weights_file,
)
from avatar.report.inputs import Snippet

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds to
MAX_INPUTS = 1024
"""Inputs in one request's ``"inputs"`` list: more is a bulk job for ``avatar predict``."""


def _bad(message: str) -> PydanticCustomError:
    return PydanticCustomError("avatar_request", message)


def _code(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{field} must be a string of code, got {type(value).__name__}")
    if not has_code(value):
        raise _bad(f"{field} is empty: there is no code to classify")
    return value


def _one(data: Any, is_pair: bool, where: str) -> Snippet:
    """One input: ``{"code": ...}`` for a single-function student, ``{"func1", "func2"}`` for a pair one."""
    if not isinstance(data, dict):
        raise _bad(f"{where}expected a JSON object, got {type(data).__name__}")
    if is_pair:
        if "code" in data and "func1" not in data:
            raise _bad(f"{where}this student classifies pairs of functions: send func1 and func2, not code")
        missing = [field for field in ("func1", "func2") if field not in data]
        if missing:
            raise _bad(f"{where}missing field {' and '.join(missing)} (a pair student reads func1 and func2)")
        return (_code(data["func1"], f"{where}func1"), _code(data["func2"], f"{where}func2"))
    if "func1" in data or "func2" in data:
        raise _bad(f"{where}this student classifies single functions: send code, not func1/func2")
    if "code" not in data:
        raise _bad(f"{where}missing field code")
    return _code(data["code"], f"{where}code")


def parse_body(data: Any, is_pair: bool) -> dict[str, Any]:
    """The request's inputs, or one line saying what is wrong with it (raised before it is queued)."""
    if isinstance(data, dict) and "inputs" in data:
        inputs = data["inputs"]
        if not isinstance(inputs, list) or not inputs:
            raise _bad("inputs must be a non-empty list of objects")
        if len(inputs) > MAX_INPUTS:
            raise _bad(f"inputs holds {len(inputs)} items; at most {MAX_INPUTS} per request "
                       "(use avatar predict for bulk files)")
        items = [_one(item, is_pair, f"inputs[{i}]: ") for i, item in enumerate(inputs)]
        return {"items": items, "listed": True}
    return {"items": [_one(data, is_pair, "")], "listed": False}


class SingleBody(BaseModel):
    """``{"code": "..."}`` or ``{"inputs": [{"code": "..."}, ...]}``, checked in the HTTP process."""

    items: list[str]
    listed: bool

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        return parse_body(data, is_pair=False)


class PairBody(BaseModel):
    """``{"func1": "...", "func2": "..."}`` or ``{"inputs": [{"func1", "func2"}, ...]}``."""

    items: list[tuple[str, str]]
    listed: bool

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        return parse_body(data, is_pair=True)


def check_servable(student_dir: str, backend: str, task: str | None = None,
                   expect_pair: bool | None = None) -> StudentMeta:
    """The student's metadata, or one line before anything starts: not a student, trained for
    another task or input kind than asked (issue 20), or missing the files its backend loads."""
    folder = check_student_dir(student_dir)
    meta = read_student_meta(folder)
    check_student_fits(meta, folder, task=task, is_pair=expect_pair)
    if not (folder / TOKENIZER_NAME).is_file():
        raise AvatarError(f"no {TOKENIZER_NAME} in {folder}: not a servable student")
    if backend == "torch" and weights_file(folder) is None:
        raise AvatarError(f"no student weights in {folder}")
    if backend != "torch" and not onnx_file(folder, quantized=backend == "int8").is_file():
        raise AvatarError(f"missing {onnx_file(folder, quantized=backend == 'int8')}: "
                          f"run `avatar export {folder}` first (or --backend torch)")
    return meta


class StudentAPI(ls.LitAPI):
    """Single-function student. ``decode_request``'s annotation is the body FastAPI validates."""

    def __init__(self, student_dir: str, backend: str, meta: StudentMeta, max_batch_size: int,
                 max_wait_s: float) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=max_wait_s, api_path="/predict")
        self.student_dir, self.backend, self.meta = student_dir, backend, meta
        spawn = multiprocessing.get_context("spawn")  # the worker is spawned: these travel with it
        self.counters = {name: spawn.Value("q", 0) for name in ("requests", "batches", "largest_batch")}
        self.predictor: Any = None

    def setup(self, device: str) -> None:
        from avatar.report.predict import Predictor

        # The parent stops this worker on Ctrl-C; the terminal's SIGINT reaches it too and would
        # print a second traceback from inside the batching loop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.predictor = Predictor.load(self.student_dir, backend=self.backend)

    def decode_request(self, request: SingleBody) -> SingleBody:  # type: ignore[override]
        return request

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs

    def predict(self, x: Any) -> Any:
        """All inputs of the grouped requests in one ``Predictor`` call, split back per request."""
        bodies = x if isinstance(x, list) else [x]
        items = [item for body in bodies for item in body.items]
        results = self.predictor.predict(items, batch_size=max(len(items), 1))
        self._count(len(bodies))
        outputs, start = [], 0
        for body in bodies:
            outputs.append((body.listed, results[start:start + len(body.items)]))
            start += len(body.items)
        return outputs if isinstance(x, list) else outputs[0]

    def _count(self, grouped: int) -> None:
        with self.counters["requests"].get_lock():
            self.counters["requests"].value += grouped
            self.counters["batches"].value += 1
            self.counters["largest_batch"].value = max(self.counters["largest_batch"].value, grouped)

    def encode_response(self, output: Any) -> dict[str, Any]:
        listed, results = output
        rows = [{"label": r.label, "label_name": self.predictor.label_name(r.label),
                 "probabilities": r.probabilities} for r in results]
        return {"results": rows} if listed else rows[0]

    def info(self) -> dict[str, Any]:
        """``/info``: what the student is for, and how the batching went so far."""
        meta = self.meta
        return {"student": str(Path(self.student_dir).resolve()), "backend": self.backend, "task": meta.task,
                "is_pair": meta.is_pair, "labels": meta.labels, "language": meta.language,
                "max_length": meta.max_length, "max_batch_size": self.max_batch_size,
                "max_wait_ms": self.batch_timeout * 1000,
                "stats": {name: value.value for name, value in self.counters.items()}}


class PairStudentAPI(StudentAPI):
    """Pair student (clone detection): the body is ``func1``/``func2``."""

    def decode_request(self, request: PairBody) -> PairBody:  # type: ignore[override]
        return request


def _one_line_error(request: Request, error: Exception) -> JSONResponse:
    """A bad body is 400 and one JSON line ``{"error": "..."}``, never FastAPI's nested list."""
    problems = error.errors() if isinstance(error, RequestValidationError) else []
    first = problems[0] if problems else {}
    kind, message = first.get("type"), str(first.get("msg", error))
    if kind == "json_invalid":
        message = "the request body is not valid JSON"
    elif kind == "missing":
        message = 'the request body is missing: send JSON such as {"code": "..."}'
    return JSONResponse({"error": message}, status_code=400)


def build_server(api: StudentAPI) -> ls.LitServer:
    """LitServer with one CPU worker; ``/info`` is Avatar's (LitServe's own moves to /litserve/info)."""
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1,
                          info_path="/litserve/info", disable_openapi_url=True)
    server.app.add_exception_handler(RequestValidationError, _one_line_error)
    server.app.add_api_route("/info", api.info, methods=["GET"])
    return server


def url_of(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    return f"http://{shown}:{port}"


def announce_when_ready(url: str, line: str, stop: threading.Event,
                        say: Callable[[str], None] = print) -> threading.Thread:
    """Print ``line`` once ``/health`` answers 200: the model is loaded and the port serves."""

    def wait() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        say(line)
                        return
            except OSError:
                pass
            stop.wait(0.1)

    thread = threading.Thread(target=wait, name="avatar-serve-ready", daemon=True)
    thread.start()
    return thread


def check_port(host: str, port: int) -> None:
    """One line when the port is taken: uvicorn would log it and ``sys.exit(1)`` after the worker started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise AvatarError(f"cannot listen on {host}:{port}: {error.strerror or error} "
                              "(another server there? pick another --port)") from None


def serve(server: ls.LitServer, host: str, port: int, log_level: str) -> None:
    """Run until SIGINT/SIGTERM (LitServe's graceful shutdown runs in either case)."""
    if host not in HOSTS:
        raise AvatarError(f"--host must be one of {', '.join(HOSTS)} (LitServe binds only those), got {host}")
    if not 1024 <= port <= 65535:
        raise AvatarError(f"--port must be from 1024 to 65535, got {port}")
    check_port(host, port)
    try:
        server.run(host=host, port=port, log_level=log_level, generate_client_file=False)
    except RuntimeError as error:
        if "workers failed to start" not in str(error):
            raise
        raise AvatarError("the inference worker could not load the student: its log is above") from None
    finally:
        for worker in getattr(server, "inference_workers", []):  # a signal during start-up
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)

