"""A task plugin by name, built and checked the one way every entry point builds it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avatar.core.registry import TASKS
from avatar.task.base import Task
from avatar.task.contract import check_task


def build_task(name: str, options: Mapping[str, Any], read_data: bool = True) -> Task:
    """The task registered as ``name`` with ``options``, held to the task contract.

    ``check_task`` reads every split once, so a broken task fails in one line before any
    teacher work; ``read_data=False`` checks only its attributes (a run that never reads
    the data). A ``data_dir`` of None means the data root (``$AVATAR_DATA``).
    """
    task = TASKS.build({"name": name, **options}, where="task")
    check_task(task, registered_name=name, read_data=read_data)
    return task
