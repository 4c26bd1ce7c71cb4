"""``avatar check-task <name>``: a task plugin against the task contract, and what its data holds."""

from __future__ import annotations

import argparse

from avatar.task.build import build_task
from avatar.task.contract import check_task


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar check-task",
        description="Check a task plugin against the task contract and print what its data holds.",
    )
    parser.add_argument("name", help="the task's registered name (task=<name>)")
    parser.add_argument("--data-dir", default=None,
                        help="the task's data_dir (default: the data root, paths.data / $AVATAR_DATA)")
    parser.add_argument("--limit", type=int, default=None, help="read at most N examples per split")
    parser.add_argument("--seed", type=int, default=None, help="the task's seed option, if it has one")
    return parser


def run(args: argparse.Namespace) -> int:
    options = {"data_dir": args.data_dir, "limit": args.limit}
    if args.seed is not None:
        options["seed"] = args.seed
    task = build_task(args.name, options)
    print(check_task(task, registered_name=args.name).table())
    return 0
