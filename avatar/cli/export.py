"""``avatar export <student>``: ONNX and its int8 copy, each path printed with its size."""

from __future__ import annotations

import argparse

from avatar.report.export import export_onnx, quantize_int8


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar export", description="Export a student folder to ONNX.")
    parser.add_argument("student_dir", help="folder written by save_pretrained (model + tokenizer)")
    parser.add_argument("--no-int8", action="store_true", help="skip the dynamic int8 quantised copy")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    return parser


def run(args: argparse.Namespace) -> int:
    paths = {"onnx": export_onnx(args.student_dir, opset=args.opset)}
    if not args.no_int8:
        paths["int8"] = quantize_int8(paths["onnx"])
    for kind, path in paths.items():
        print(f"{kind}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
