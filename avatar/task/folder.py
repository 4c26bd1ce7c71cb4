"""Where the task data lives, and one-line errors when it is not there.

The real datasets are not shipped with Avatar (they are CodeXGLUE's, under C-UDA). A
user points at them with the ``paths.data=`` config key or the ``AVATAR_DATA``
environment variable; when neither is set, or a file is missing, the run stops with one
line that says what to set and where the data comes from, instead of a traceback deep
inside a reader.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from avatar.core.errors import DataError
from avatar.task.base import Example, Task

ENV_VAR = "AVATAR_DATA"
CODEXGLUE_URL = "https://github.com/microsoft/CodeXGLUE"


def resolve_data_root(configured: str | os.PathLike[str] | None) -> Path:
    """The data root: ``configured`` if given, else ``$AVATAR_DATA``; it must be a directory.

    An empty string counts as unset, because config systems write "" for "no value".
    """
    if configured is not None and str(configured) != "":
        root, origin = Path(configured).expanduser(), "paths.data"
    elif os.environ.get(ENV_VAR):
        root, origin = Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    else:
        raise DataError(
            f"no data directory: set paths.data=<dir> or the {ENV_VAR} environment variable to a folder "
            f"holding devign/ and bigclonebench/ (CodeXGLUE Defect-detection and "
            f"Clone-detection-BigCloneBench data, from {CODEXGLUE_URL})"
        )
    if not root.is_dir():
        raise DataError(
            f"data directory {root} (from {origin}) does not exist; it should hold the CodeXGLUE data "
            f"(devign/, bigclonebench/) from {CODEXGLUE_URL}"
        )
    return root


def resolve_task_dir(data_dir: str | os.PathLike[str] | None, subdir: str, markers: tuple[str, ...]) -> Path:
    """A task's own folder: ``<root>/<subdir>``, or ``data_dir`` itself.

    ``data_dir`` may name the task folder directly (it holds one of ``markers``) or the
    data root above it (it holds ``subdir``), so both ``paths.data`` and a per-task
    override work without the user knowing which one the task expects.
    """
    if data_dir is None or str(data_dir) == "":
        return resolve_data_root(None) / subdir
    given = Path(data_dir).expanduser()
    if any((given / marker).exists() for marker in markers):
        return given
    if (given / subdir).is_dir():
        return given / subdir
    if not given.is_dir():
        raise DataError(f"data directory {given} does not exist; get the data from {CODEXGLUE_URL}")
    return given


def require_file(path: Path, hint: str) -> Path:
    """``path`` if it is a file; otherwise a ``DataError`` naming it and how to get it."""
    if not path.is_file():
        raise DataError(f"missing data file {path}: {hint}")
    return path


def record_location(path: Path, index: int) -> str:
    """``file:line`` of the ``index``-th (0-based) record that ``iter_jsonl`` yields.

    ``iter_jsonl`` skips blank lines and does not report line numbers, so a validation
    error re-reads the file to name the exact line. Only called on the error path.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    seen = -1
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == index:
                    return f"{path}:{number}"
    return f"{path}:?"


class FolderTask(Task):
    """A task whose split files live in one folder: ``<data root>/<folder>`` or ``data_dir``.

    The folder is resolved on first use, so building the task (the search needs only its
    label count) requires no data; parsed splits are kept per instance.
    """

    folder: str = ""  # subfolder of the data root
    markers: tuple[str, ...] = ()  # files that identify the folder itself

    def __init__(self, data_dir: str | None = None, limit: int | None = None, seed: int = 42) -> None:
        super().__init__(data_dir=data_dir, limit=limit, seed=seed)
        self._dir: Path | None = None
        self._cache: dict[str, list[Example]] = {}

    @property
    def directory(self) -> Path:
        if self._dir is None:
            self._dir = resolve_task_dir(self.data_dir, self.folder, self.markers)
        return self._dir
