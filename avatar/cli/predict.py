"""``avatar predict <student> <input>``: one JSON line per snippet (index, line, label, label name,
probabilities), written as it is predicted.

Why streaming and ``--output``: a 100k-line jsonl takes minutes; its results appear chunk by
chunk (a progress bar on a terminal's stderr), and with ``--output FILE`` a killed run is run
again with the same FILE to go on after the last complete line instead of starting over.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from avatar.cli.errors import detach_stdout
from avatar.core.errors import AvatarError
from avatar.core.progress import progress_bar, stderr_is_terminal
from avatar.distill.folder import check_student_fits
from avatar.report.inputs import Inputs, open_inputs
from avatar.report.predict import BACKENDS, Predictor
from avatar.report.stream import predicted_lines, resume_output


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar predict", description="Classify code with a student.")
    parser.add_argument("student_dir", help="folder written by save_pretrained (model + tokenizer)")
    parser.add_argument("input", help="a code file (one snippet), a .jsonl file (field func), or - for stdin")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--pair", action="store_true",
                        help="jsonl lines hold pairs (func1, func2); implied by is_pair in avatar.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="append the JSON lines to FILE as they are predicted; run again with the same "
                             "FILE to resume after its last complete line")
    return parser


def _skip_done(output: str | None, inputs: Inputs) -> int:
    """How many inputs ``--output`` already holds results for (0 without it), said on stderr."""
    if output is None:
        return 0
    resume = resume_output(output, inputs.name, inputs.total)
    message = resume.message(output, inputs.total)
    if message is not None:
        print(message, file=sys.stderr)
    return resume.done


@contextmanager
def _open_output(output: str | None) -> Iterator[IO[str]]:
    """``--output`` opened for appending (resumed runs add to it), else stdout, left open."""
    if output is None:
        yield sys.stdout
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a", encoding="utf-8", newline="") as handle:
        yield handle


def _show_bar(inputs: Inputs, output: str | None) -> bool:
    """A bar for more than one input, on a terminal's stderr, when the results do not scroll
    through that same terminal (a bar redrawn between result lines garbles both)."""
    several = inputs.total is None or inputs.total > 1
    return several and stderr_is_terminal() and (output is not None or not sys.stdout.isatty())


def _write_all(predictor: Predictor, inputs: Inputs, args: argparse.Namespace, skip: int) -> None:
    """Predict the inputs after the ``skip`` first, writing and flushing each chunk's lines."""
    with _open_output(args.output) as out, progress_bar(
        "predicting", inputs.total, completed=skip, enabled=_show_bar(inputs, args.output)
    ) as update:
        done = skip
        for lines in predicted_lines(predictor, inputs.records(skip), batch_size=args.batch_size):
            out.writelines(lines)
            out.flush()
            done += len(lines)
            update(done)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise AvatarError(f"--batch-size must be at least 1, got {args.batch_size}")
    predictor = Predictor.load(args.student_dir, backend=args.backend)
    if args.pair:
        check_student_fits(predictor.meta, args.student_dir, is_pair=True)
    inputs = open_inputs(args.input, pair=args.pair or predictor.is_pair)
    skip = _skip_done(args.output, inputs)
    try:
        _write_all(predictor, inputs, args, skip)
    except BrokenPipeError:  # `avatar predict ... | head`: the reader stopped reading, which is no error
        detach_stdout()
    return 0
