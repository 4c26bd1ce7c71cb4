"""``avatar clones <student> <paths...>``: likely clone pairs of a code base, scored by a pair student.

Why a command of its own: ``avatar scan`` gives one verdict per function, but a clone-detection
student judges pairs, and a code base has far too many pairs to score them all. The functions
are cut out as ``avatar scan`` cuts them (tree-sitter), a MinHash candidate step proposes each
function's few most similar others (``avatar.report.clones``), and only those pairs reach the
student. Rows are sorted, most probable clone first, so the top of the file is where to look.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from avatar.cli.errors import detach_stdout
from avatar.cli.scan import _IntermixedParser, add_reading_options, scan_language
from avatar.code.functions import Function, read_functions, source_files
from avatar.core.errors import AvatarError
from avatar.core.progress import progress_bar, stderr_is_terminal
from avatar.distill.folder import StudentMeta, read_student_meta
from avatar.report.clones import (
    FORMATS,
    NEIGHBOURS,
    candidate_pairs,
    check_options,
    clone_column,
    score_pairs,
    select,
    write_pairs,
)
from avatar.report.predict import Predictor


def parser() -> argparse.ArgumentParser:
    parser = _IntermixedParser(
        prog="avatar clones",
        description="Find likely clone pairs among the functions under the given files and folders with a "
                    "pair (clone-detection) student: candidates by MinHash similarity, then the student's "
                    "probability; one row per pair, most probable first.",
    )
    parser.add_argument("student_dir", help="the pair student folder (model, tokenizer and avatar.json)")
    parser.add_argument("paths", nargs="+", help="source files and folders (walked recursively)")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="output format (default: jsonl)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None, help="write here instead of stdout")
    parser.add_argument("--threshold", type=float, metavar="P", default=0.5,
                        help="report pairs whose clone probability is >= P (default: %(default)g)")
    parser.add_argument("--top", type=int, metavar="N", default=None,
                        help="report at most the N most probable pairs")
    parser.add_argument("--neighbours", type=int, metavar="K", default=NEIGHBOURS,
                        help="candidates per function: the student scores at most K pairs per function "
                             "(default: %(default)d; more finds more clones, slower)")
    add_reading_options(parser)
    return parser


def check_pair(meta: StudentMeta, student_dir: str) -> None:
    """A single-function student has no verdict on a pair: refuse it before any file is read."""
    if not meta.is_pair:
        task = f" (task {meta.task})" if meta.task else " (no avatar.json says it reads pairs)"
        raise AvatarError(f"student {student_dir} classifies single functions{task}; avatar clones needs "
                          "a pair student such as a clone-detection one")


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def collect(paths: list[str], language: str, max_file_mb: float, bars: bool) -> tuple[list[Function], int]:
    """Every function of ``language`` under ``paths`` in file order, and the number of files."""
    files = source_files(paths, language, warn=_warn)
    found: list[Function] = []
    with progress_bar("parsing", total=len(files), enabled=bars) as update:
        for done, (path, shown) in enumerate(files, start=1):
            found.extend(read_functions(path, language, max_bytes=int(max_file_mb * 2**20), warn=_warn,
                                        display=shown))
            update(done)
    return found, len(files)


def run(args: argparse.Namespace) -> int:
    check_options(args.threshold, args.top)
    if args.batch_size < 1:
        raise AvatarError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.neighbours < 1:
        raise AvatarError(f"--neighbours must be at least 1, got {args.neighbours}")
    if args.max_file_mb <= 0:
        raise AvatarError(f"--max-file-mb must be positive, got {args.max_file_mb}")
    meta = read_student_meta(args.student_dir)
    check_pair(meta, args.student_dir)
    language = scan_language(meta, args.student_dir, args.language)
    started = time.perf_counter()
    bars = stderr_is_terminal()  # elsewhere (a log, CI) the summary line alone, not the bars' last states
    functions, files = collect(args.paths, language, args.max_file_mb, bars)
    if len(functions) < 2:
        raise AvatarError(f"found {len(functions)} {language.upper()} function(s) in {files} file(s) under "
                          f"{' '.join(args.paths)}: clones need at least two")
    with progress_bar("candidates", total=len(functions), enabled=bars) as update:
        pairs = candidate_pairs([f.code for f in functions], neighbours=args.neighbours, progress=update)
    searching = time.perf_counter() - started
    predictor = Predictor.load(args.student_dir, backend=args.backend)
    started = time.perf_counter()
    with progress_bar("scoring pairs", total=len(pairs), enabled=bars) as update:
        probabilities = score_pairs(predictor, functions, pairs, batch_size=args.batch_size, progress=update)
    scoring = time.perf_counter() - started
    rows = select(functions, pairs, probabilities, threshold=args.threshold, top=args.top)
    try:
        written = write_pairs(rows, args.format, args.output, clone_column(meta.labels))
    except BrokenPipeError:  # `avatar clones ... | head`: the reader stopped reading, which is no error
        detach_stdout()
        return 0
    total = len(functions) * (len(functions) - 1) // 2
    where = f" to {os.fspath(Path(args.output))}" if args.output else ""
    print(f"scored {len(pairs):,} candidate pairs of {total:,} ({len(pairs) / total:.2%}) among "
          f"{len(functions):,} functions in {files:,} files: candidates {searching:.1f} s, scoring "
          f"{scoring:.1f} s ({len(pairs) / max(scoring, 1e-9):.0f} pairs/s); {written:,} pairs at "
          f"p >= {args.threshold:g}{where}", file=sys.stderr)
    return 0
