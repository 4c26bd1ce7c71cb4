"""``avatar <command>``: the console commands, each a module of this package with ``parser()`` and
``run(args)``; every error reaches the user through ``errors.exit_code`` (one line, exit 2)."""

from __future__ import annotations

import importlib
import sys

from avatar import __version__
from avatar.cli.errors import EXIT_USER_ERROR, exit_code

COMMANDS = {
    "check-task": "avatar.cli.check_task",
    "clones": "avatar.cli.clones",
    "compare": "avatar.cli.compare",
    "export": "avatar.cli.export",
    "predict": "avatar.cli.predict",
    "push": "avatar.cli.push",
    "scan": "avatar.cli.scan",
    "serve": "avatar.cli.serve",
}
USAGE = (f"usage: avatar {{{','.join(COMMANDS)}}} ... | avatar --version  "
         "(search and train: python search.py / train.py)")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        print(f"avatar {__version__}")
        return 0
    if not args or args[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if args else sys.stdout)
        return EXIT_USER_ERROR
    return run_command(args[0], args[1:])


def run_command(name: str, argv: list[str]) -> int:
    """Parse ``argv`` with the command's parser and run it under the one error-to-exit-code path."""
    module = importlib.import_module(COMMANDS[name])
    try:
        args = module.parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USER_ERROR
    return exit_code(lambda: module.run(args))


if __name__ == "__main__":
    sys.exit(main())
