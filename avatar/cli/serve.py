"""``avatar serve <student>``: classify code over HTTP, concurrent requests batched into one model call.

Why a server when ``avatar predict`` exists: an editor plugin, a review bot or a CI job asks
about one function at a time, and paying the model's load (seconds) per question wastes more
than the answer costs; the server loads it once. Batching (LitServe, see
``avatar.report.serve``) groups the requests that arrive within ``--max-wait-ms`` so a burst
costs one forward pass, not one per request.

Binds to 127.0.0.1 unless told otherwise: the endpoint has no authentication. SIGINT and
SIGTERM shut it down (workers stopped, port released) and exit 130 / 143 like every Avatar
command.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from types import FrameType

from avatar.cli.errors import Terminated
from avatar.core.errors import AvatarError
from avatar.report.predict import BACKENDS


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar serve",
        description="Serve a student over HTTP: POST /predict, GET /health, GET /info.",
    )
    parser.add_argument("student_dir", help="the student folder (model, tokenizer and avatar.json)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="127.0.0.1 (default: this machine only), 0.0.0.0 or :: (every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="onnx/int8 need `avatar export <student>` first and load without torch")
    parser.add_argument("--max-batch-size", type=int, default=32,
                        help="most requests grouped into one model call (1: no batching)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0,
                        help="how long the first request of a batch waits for others (default: 10)")
    parser.add_argument("--task", default=None,
                        help="refuse to start unless the student was distilled for this task (avatar.json)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--pair", dest="expect_pair", action="store_true", default=None,
                      help="refuse to start unless the student reads pairs of functions")
    kind.add_argument("--single", dest="expect_pair", action="store_false",
                      help="refuse to start unless the student reads single functions")
    parser.add_argument("--log-level", choices=("warning", "info", "debug"), default="warning")
    return parser


class _StopSignal:
    """Records SIGINT/SIGTERM and raises in the main thread, where LitServe waits.

    Why not ``report_errors``' own watch: LitServe catches the ``KeyboardInterrupt`` to shut
    down gracefully and then returns normally, which would exit 0. The signal is remembered
    here and raised again once the shutdown is done, so the exit code is 130 or 143.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pid = os.getpid()
        self._previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        for number in self._previous:
            signal.signal(number, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            # uvicorn's process, forked from this one, re-raises the signal it shut down on; the
            # parent stops it anyway, so the inherited handler does nothing there.
            return
        self.signum = signum
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    def restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)

    def raise_again(self) -> None:
        if self.signum is not None:
            raise Terminated if self.signum == signal.SIGTERM else KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    try:
        from avatar.report.serve import (
            PairStudentAPI,
            StudentAPI,
            announce_when_ready,
            build_server,
            check_servable,
            serve,
            url_of,
        )
    except ModuleNotFoundError as error:
        if error.name not in ("litserve", "fastapi", "uvicorn"):
            raise
        raise AvatarError(f"avatar serve needs {error.name}: pip install 'avatar[serve]'") from None

    if args.max_batch_size < 1:
        raise AvatarError(f"--max-batch-size must be at least 1, got {args.max_batch_size}")
    if args.max_wait_ms < 0:
        raise AvatarError(f"--max-wait-ms must be 0 or more, got {args.max_wait_ms}")
    meta = check_servable(args.student_dir, args.backend, task=args.task, expect_pair=args.expect_pair)
    api_class = PairStudentAPI if meta.is_pair else StudentAPI
    api = api_class(args.student_dir, args.backend, meta, args.max_batch_size, args.max_wait_ms / 1000)
    server = build_server(api)
    url = url_of(args.host, args.port)
    kind = "pairs of functions" if meta.is_pair else "single functions"
    line = (f"serving {args.student_dir} (task {meta.task or 'unknown'}, {kind}, backend {args.backend}) "
            f"at {url}/predict; Ctrl-C to stop")
    ready = threading.Event()
    stop = _StopSignal()
    try:
        announce_when_ready(url, line, ready, say=lambda text: print(text, flush=True))
        serve(server, args.host, args.port, args.log_level)
    finally:
        ready.set()
        stop.restore()
    stop.raise_again()
    return 0
