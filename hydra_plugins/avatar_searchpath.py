"""Lets installed Avatar plugin packages ship their own Hydra configs.

For each ``avatar.plugins`` entry point, the top-level package it names is searched for
a ``configs/`` folder; found folders join Hydra's config search path, so a package that
ships ``configs/task/snippet_kind.yaml`` is usable as ``task=snippet_kind`` with no edit
to Avatar. Imports stay light: Hydra loads this module on every start.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def plugin_config_dirs() -> list[Path]:
    folders: list[Path] = []
    for entry_point in metadata.entry_points(group="avatar.plugins"):
        package = entry_point.value.split(":")[0].split(".")[0]
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / "configs"
            if folder.is_dir() and folder not in folders:
                folders.append(folder)
    return folders


class AvatarPluginSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in plugin_config_dirs():
            search_path.append(provider="avatar-plugin", path=f"file://{folder}")
