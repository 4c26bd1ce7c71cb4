"""``avatar push <student> <user/name>``: publish a student on the Hugging Face Hub (model card included)."""

from __future__ import annotations

import argparse

from avatar.report.publish import plan_push, push


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar push",
                                     description="Upload a student to the Hugging Face Hub.")
    parser.add_argument("student_dir", help="a student folder (students/<key>/student)")
    parser.add_argument("repo_id",
                        help="the Hub repository, <user or organisation>/<name> (created if needed)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--token", default=None, help="a Hub token (default: your login, or HF_TOKEN)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded, and stop")
    return parser


def run(args: argparse.Namespace) -> int:
    plan = plan_push(args.student_dir, args.repo_id, private=args.private)
    if args.dry_run:
        print(f"would push {len(plan.files)} files of {plan.folder} to {plan.repo_id}:")
        for name in plan.files:
            print(f"  {name}")
        return 0
    print(f"pushed {plan.folder} to {push(plan, token=args.token)}")
    return 0
