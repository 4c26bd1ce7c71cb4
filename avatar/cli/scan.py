"""``avatar scan <student> <paths...>``: classify every function of a code base (or of a diff).

Why a command of its own: ``avatar predict`` classifies snippets a user already cut out; a
code base has to be cut into functions first (tree-sitter, ``avatar.code.functions``), each
verdict has to point back at a file and its lines, and a review wants only the functions a
change touched (``--diff REV``) in a format review tools read (``--format sarif``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from avatar import __version__
from avatar.cli.errors import detach_stdout
from avatar.code.functions import (
    EXTENSIONS,
    MAX_FILE_BYTES,
    Function,
    check_scan_language,
    read_functions,
    source_files,
)
from avatar.code.gitdiff import changes_since
from avatar.core.errors import AvatarError
from avatar.core.progress import progress_bar
from avatar.core.registry import TASKS
from avatar.distill.folder import StudentMeta, read_student_meta
from avatar.report.predict import BACKENDS, Predictor
from avatar.report.scan import FORMATS, check_options, classify, open_writer

EXIT_FINDINGS = 1


class _IntermixedParser(argparse.ArgumentParser):
    """Options may stand between the paths (``scan st a.c --format csv b.c``), as tools that append
    file names (pre-commit, xargs) and people both write them."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)


def add_reading_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that reads source trees through a student (scan, clones)."""
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--language", choices=sorted(EXTENSIONS), default=None,
                        help="the code's language (default: the language of the student's task)")
    parser.add_argument("--max-file-mb", type=float, default=MAX_FILE_BYTES / 2**20,
                        help="skip larger files with a warning (default: %(default)g)")


def parser() -> argparse.ArgumentParser:
    parser = _IntermixedParser(
        prog="avatar scan",
        description="Classify every function under the given files and folders with a single-function "
                    "student (e.g. vulnerability prediction): one row per function, or SARIF.",
    )
    parser.add_argument("student_dir", help="the student folder (model, tokenizer and avatar.json)")
    parser.add_argument("paths", nargs="+", help="source files and folders (walked recursively)")
    parser.add_argument("--diff", metavar="REV", default=None,
                        help="only functions whose lines changed since git revision REV (e.g. origin/main)")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="output format (default: jsonl)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None, help="write here instead of stdout")
    parser.add_argument("--threshold", type=float, metavar="P", default=None,
                        help="report a function when a label other than the first has probability >= P "
                             "(default: the most probable label)")
    add_reading_options(parser)
    parser.add_argument("--root", metavar="DIR", default=None,
                        help="SARIF file URIs are relative to DIR (default: the current folder)")
    parser.add_argument("--fail-on-findings", action="store_true",
                        help=f"exit {EXIT_FINDINGS} when a function gets a label other than the first "
                             "(for pre-commit and CI gates)")
    return parser


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def scan_language(meta: StudentMeta, student_dir: str, language: str | None) -> str:
    """``--language``, else the language of the task the student was distilled for: recorded in
    its ``avatar.json``, or (older students) the registered task's, which imports every plugin."""
    if language is not None:
        return check_scan_language(language)
    if meta.language is not None:
        return check_scan_language(meta.language)
    if meta.task is None:
        raise AvatarError(f"student {student_dir} names no task in avatar.json: pass --language "
                          f"({' or '.join(EXTENSIONS)})")
    try:
        task_language = TASKS.get(meta.task).language
    except AvatarError as error:
        raise AvatarError(f"{error}; pass --language to scan with student {student_dir} anyway") from None
    return check_scan_language(str(task_language))


def check_single(meta: StudentMeta, student_dir: str) -> None:
    """A pair student (clone detection) has no verdict for one function: refuse it up front."""
    if meta.is_pair:
        raise AvatarError(f"student {student_dir} classifies pairs of functions (task {meta.task}); "
                          "avatar scan needs a single-function student such as a vulnerability one")


def collect(args: argparse.Namespace, language: str) -> tuple[list[tuple[Path, Function]], int]:
    """The functions to classify (every function of the paths, or those ``--diff`` touches) and
    the number of files they were looked for in."""
    files = source_files(args.paths, language, warn=_warn)
    changes = changes_since([Path(p) for p in args.paths], args.diff) if args.diff is not None else None
    if changes is not None:
        files = [(path, shown) for path, shown in files if path in changes.files]
    max_bytes = int(args.max_file_mb * 2**20)
    found: list[tuple[Path, Function]] = []
    with progress_bar("parsing", total=len(files)) as update:
        for done, (path, shown) in enumerate(files, start=1):
            for function in read_functions(path, language, max_bytes=max_bytes, warn=_warn, display=shown):
                if changes is None or changes.touches(path, function.start_line, function.end_line):
                    found.append((path, function))
            update(done)
    return found, len(files)


def run(args: argparse.Namespace) -> int:
    check_options(args.batch_size, args.threshold)
    if args.max_file_mb <= 0:
        raise AvatarError(f"--max-file-mb must be positive, got {args.max_file_mb}")
    root = Path(args.root) if args.root is not None else Path.cwd()
    if not root.is_dir():
        raise AvatarError(f"--root: folder not found: {root}")
    meta = read_student_meta(args.student_dir)
    check_single(meta, args.student_dir)
    language = scan_language(meta, args.student_dir, args.language)
    started = time.perf_counter()
    functions, files = collect(args, language)
    parsing = time.perf_counter() - started
    predictor = Predictor.load(args.student_dir, backend=args.backend)
    started = time.perf_counter()
    labels = [predictor.label_name(i) for i in range(len(meta.labels))]
    properties = {"student": os.fspath(Path(args.student_dir).resolve()), "task": meta.task,
                  "language": language, "backend": args.backend, "threshold": args.threshold,
                  "diff": args.diff}
    writer = open_writer(args.format, args.output, labels, root, __version__, properties)
    flagged: Counter[str] = Counter()
    try:
        with progress_bar("classifying", total=len(functions)) as update:
            for rows in classify(predictor, functions, batch_size=args.batch_size, threshold=args.threshold):
                writer.write(rows)
                flagged.update(row.label_name for row in rows if row.label != 0)
                update(writer.count)
    except BrokenPipeError:  # `avatar scan ... | head`: the reader stopped reading, which is no error
        writer.abort()
        detach_stdout()
        return 0
    except BaseException:
        writer.abort()  # jsonl/csv keep the rows written; no SARIF log that looks complete
        raise
    writer.close()
    seconds = parsing + time.perf_counter() - started  # the model's loading left out: it is paid once
    found = ", ".join(f"{count} {name}" for name, count in sorted(flagged.items())) or f"all {labels[0]}"
    print(f"scanned {_count(len(functions), 'function')} in {_count(files, 'file')} in {seconds:.1f} s "
          f"({len(functions) / max(seconds, 1e-9):.0f} functions/s): {found}", file=sys.stderr)
    return EXIT_FINDINGS if args.fail_on_findings and flagged else 0
