"""``avatar compare <runs>``: one table of the runs' best students, one PNG of their fronts."""

from __future__ import annotations

import argparse

from avatar.report.compare import compare


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar compare",
                                     description="Compare search runs: one table, one PNG of the fronts.")
    parser.add_argument("runs", nargs="+", help="run directories (with pareto.json) or a multirun directory")
    parser.add_argument("--png", default=None,
                        help="where to write the plot (default: <the one directory given>/compare.png, "
                             "else ./compare.png)")
    return parser


def run(args: argparse.Namespace) -> int:
    table, target = compare(args.runs, args.png)
    print(table)
    print(f"fronts: {target}")
    return 0
