"""Which lines changed since a git revision: ``avatar scan --diff REV`` scans only those functions.

Why line ranges and not whole files: a review (or a pre-commit hook) asks about the code a
change touched; a one-line fix in a 300-function file should classify one function, not 300.
``git diff -U0 REV`` gives the changed lines of the working tree against ``REV`` (commits,
staged and unstaged edits alike); files git does not track yet (and does not ignore) are new
as a whole. Deleted lines mark the lines on both sides of the cut, so a function that only
lost lines still counts as changed.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from avatar.core.errors import AvatarError
from avatar.core.io import first_line

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Changes:
    """Changed lines per file (resolved absolute paths); ``None`` means the whole file is new."""

    files: dict[Path, list[tuple[int, int]] | None] = field(default_factory=dict)

    def touches(self, path: Path, start_line: int, end_line: int) -> bool:
        """Whether lines ``start_line``..``end_line`` (1-based, inclusive) of ``path`` changed."""
        if path not in self.files:
            return False
        ranges = self.files[path]
        return ranges is None or any(start <= end_line and start_line <= end for start, end in ranges)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise AvatarError("--diff needs git, and git is not on PATH")
    return subprocess.run(["git", "-C", os.fspath(root), "-c", "core.quotepath=off", *args],
                          capture_output=True, check=False)


def repository_root(path: Path) -> Path:
    """The top folder of the git work tree holding ``path``, or one line saying there is none."""
    folder = path if path.is_dir() else path.parent
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise AvatarError(f"--diff: {path} is not in a git repository")
    return Path(os.fsdecode(done.stdout.strip())).resolve()


def _unquote(raw: bytes) -> bytes:
    """A path as git prints it: C-quoted (``"a\\tb.c"``) when it holds unusual bytes."""
    if raw.startswith(b'"') and raw.endswith(b'"'):
        return codecs.escape_decode(raw[1:-1])[0]
    return raw


def parse_unified_diff(text: bytes, root: Path) -> dict[Path, list[tuple[int, int]]]:
    """Changed line ranges of the new side of a ``git diff -U0`` with ``b/`` destination prefixes."""
    files: dict[Path, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] | None = None
    for line in text.splitlines():
        if line.startswith(b"+++ "):
            target = _unquote(line[4:].rstrip(b"\t"))
            current = None
            if target.startswith(b"b/"):
                current = files.setdefault((root / os.fsdecode(target[2:])).resolve(), [])
        elif current is not None and (match := _HUNK.match(line)):
            start = int(match.group(1))
            count = 1 if match.group(2) is None else int(match.group(2))
            # count 0: lines deleted after line `start`; mark both neighbours of the cut.
            current.append((start, start + count - 1) if count else (max(start, 1), start + 1))
    return files


def changes_since(paths: list[Path], revision: str) -> Changes:
    """The changes of every repository holding one of ``paths`` since ``revision``.

    A path outside a git work tree, or a revision that repository does not know, is a
    one-line ``AvatarError``.
    """
    if not revision or revision.startswith("-"):
        raise AvatarError(f"--diff: {revision!r} is not a git revision")
    changes = Changes()
    for root in dict.fromkeys(repository_root(path) for path in paths):
        known = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        if known.returncode != 0:
            raise AvatarError(f"--diff: unknown revision {revision!r} in the git repository {root}")
        diff = _git(root, "diff", "-U0", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/",
                    revision, "--")
        if diff.returncode != 0:
            raise AvatarError(f"--diff: git diff {revision} failed in {root}: "
                              f"{first_line(diff.stderr.decode(errors='replace'))}")
        changes.files.update(parse_unified_diff(diff.stdout, root))
        untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
        for name in untracked.stdout.split(b"\0") if untracked.returncode == 0 else []:
            if name:
                changes.files[(root / os.fsdecode(name)).resolve()] = None
    return changes
