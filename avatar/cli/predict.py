"""``avatar predict <student> <input>``: one JSON line per snippet (label, label name, probabilities)."""

from __future__ import annotations

import argparse
import json

from avatar.distill.folder import check_student_fits
from avatar.report.predict import BACKENDS, Predictor, read_inputs


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar predict", description="Classify code with a student.")
    parser.add_argument("student_dir", help="folder written by save_pretrained (model + tokenizer)")
    parser.add_argument("input", help="a code file (one snippet), a .jsonl file (field func), or - for stdin")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--pair", action="store_true",
                        help="jsonl lines hold pairs (func1, func2); implied by is_pair in avatar.json")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def run(args: argparse.Namespace) -> int:
    predictor = Predictor.load(args.student_dir, backend=args.backend)
    if args.pair:
        check_student_fits(predictor.meta, args.student_dir, is_pair=True)
    snippets = read_inputs(args.input, pair=args.pair or predictor.is_pair)
    results = predictor.predict(snippets, batch_size=args.batch_size)
    for result in results:
        print(json.dumps({"label": result.label, "label_name": predictor.label_name(result.label),
                          "probabilities": result.probabilities}))
    return 0
