"""Checks that must run before Hydra starts: Hydra creates the run directory itself and
reports a failure there as a multi-line traceback, so an unwritable ``hydra.run.dir``
is caught here and reported in one line."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from avatar.cli.errors import EXIT_USER_ERROR


def _writable(directory: Path) -> str | None:
    """``None`` when ``directory`` can be created and written (root ignores permission bits,
    so this really creates it and a probe file); else the reason."""
    created = next((d for d in [*reversed(directory.parents), directory] if not d.exists()), None)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as error:
        return error.strerror or type(error).__name__
    finally:
        if created is not None:  # Hydra creates it when the run starts; a run that fails first leaves none
            shutil.rmtree(created, ignore_errors=True)
    return None


def check_output_dir(argv: list[str]) -> None:
    """Exit 2 with one line when ``hydra.run.dir=`` / ``hydra.sweep.dir=`` cannot be written."""
    for argument in argv:
        for key in ("hydra.run.dir=", "hydra.sweep.dir="):
            if argument.startswith(key):
                directory = Path(argument[len(key) :]).expanduser()
                reason = _writable(directory)
                if reason is not None:
                    print(f"error: output directory {directory} is not writable ({reason})", file=sys.stderr)
                    sys.exit(EXIT_USER_ERROR)


def check_trainer_overrides(argv: list[str]) -> None:
    """Exit 2 with one line when a ``trainer.<key>=`` override names no ``lightning.Trainer`` keyword.

    Hydra would refuse it with a multi-line "not in struct" message (configs/trainer lists
    every keyword, so a valid one needs no ``+``); this names the known keywords instead.
    """
    keys = []
    for argument in argv:
        name = argument.split("=", 1)[0].lstrip("+~")
        for prefix in ("trainer.", "teacher.trainer."):
            if name.startswith(prefix) and "." not in name[len(prefix):]:
                keys.append((prefix.rstrip("."), name[len(prefix):]))
    if not keys:
        return
    from avatar.core.errors import AvatarError
    from avatar.learn.training import check_trainer_options

    try:
        for where, key in keys:
            check_trainer_options({key: None}, where)  # the name only: Hydra parses the value
    except AvatarError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
PLUGIN_GROUPS = {"task": "TASKS", "teacher": "TEACHERS"}
"""Config groups whose options plugin packages may ship (``<package>/configs/<group>/<name>.yaml``)."""


def _config_folders(config_dir: Path, extra: Sequence[Path] = ()) -> list[Path]:
    """Where Hydra looks for options: ``--config-dir`` folders, Avatar's, every plugin package's."""
    from hydra_plugins.avatar_searchpath import plugin_config_dirs

    return [*extra, config_dir, *plugin_config_dirs()]


def _known_options(group: str, config_dir: Path, extra: Sequence[Path] = ()) -> list[str]:
    """Option names of ``group``: Avatar's ``configs/<group>/*.yaml``, a ``--config-dir``'s and every
    plugin package's."""
    folders = _config_folders(config_dir, extra)
    return sorted({path.stem for folder in folders for path in (folder / group).glob("*.yaml")})


def extra_config_dirs(argv: list[str]) -> list[Path]:
    """The folders given with ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``."""
    found = []
    for index, argument in enumerate(argv):
        if argument in ("--config-dir", "-cd") and index + 1 < len(argv):
            found.append(Path(argv[index + 1]).expanduser())
        elif argument.startswith("--config-dir="):
            found.append(Path(argument.split("=", 1)[1]).expanduser())
    return found


def check_yaml_syntax(argv: list[str], config_dir: Path, extra: Sequence[Path] = ()) -> None:
    """Exit 2 with ``file:line:column: problem`` when a chosen option's yaml does not parse.

    Hydra would print a 95-line traceback and leave an empty run directory behind.
    """
    import yaml

    for argument in argv:
        key, sep, value = argument.lstrip("+").partition("=")
        if not sep or argument.startswith("-") or "." in key:
            continue
        for name in (v.strip() for v in value.split(",")):
            for folder in _config_folders(config_dir, extra):
                path = folder / key / f"{name}.yaml"
                if not path.is_file():
                    continue
                try:
                    yaml.safe_load(path.read_text(encoding="utf-8"))
                except yaml.YAMLError as error:
                    mark = getattr(error, "problem_mark", None)
                    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
                    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
                    print(f"error: {where}: not valid YAML ({problem})", file=sys.stderr)
                    sys.exit(EXIT_USER_ERROR)
                break


def _misspelt_groups() -> list[str]:
    """Entry-point groups that look like ``avatar.plugins`` but are not (``avatar.plugin``, ...)."""
    import difflib
    from importlib import metadata

    from avatar.core.registry import ENTRY_POINT_GROUP

    def letters(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    wanted = letters(ENTRY_POINT_GROUP)
    groups = {ep.group for dist in metadata.distributions() for ep in dist.entry_points}
    return sorted(
        group for group in groups
        if group != ENTRY_POINT_GROUP and difflib.SequenceMatcher(None, letters(group), wanted).ratio() > 0.8
    )


def _plugin_hint(group: str, name: str) -> str:
    """Why a plugin's config may be missing: the entry point, its group, where the yaml lives."""
    from avatar.core import registry
    from avatar.core.errors import AvatarError

    hints = []
    try:
        registered = name in getattr(registry, PLUGIN_GROUPS[group])
    except AvatarError:  # a plugin that fails to import says so itself at run time
        registered = False
    if registered:
        hints.append(f"{group} {name!r} is registered, but its package ships no configs/{group}/{name}.yaml")
    else:
        hints.append(f"no installed package registers {group} {name!r}")
    misspelt = _misspelt_groups()
    if misspelt:
        hints.append(f"entry points were found in group {', '.join(map(repr, misspelt))}: "
                     f"it must be '{registry.ENTRY_POINT_GROUP}'")
    hints.append(f"a plugin package declares an entry point in the '{registry.ENTRY_POINT_GROUP}' group and "
                 f"ships configs/{group}/{name}.yaml inside its top-level package (package data), then is "
                 "pip-installed")
    return "; ".join(hints)


def check_config_choices(argv: list[str], config_dir: Path, extra: Sequence[Path] = ()) -> None:
    """Exit 2 with one line when an override such as ``task=codelang`` names no config option.

    Why here: Hydra reports a missing option as a multi-line "Could not find" block that
    says nothing of plugins. For ``task`` and ``teacher`` the line also says why a plugin
    package's option may be missing. Sweeps (``task=a,b``) are checked option by option.
    """
    for argument in argv:
        key, sep, value = argument.lstrip("+").partition("=")
        groups = [folder / key for folder in (config_dir, *extra)]
        if not sep or argument.startswith("-") or "." in key or not any(g.is_dir() for g in groups):
            continue
        if any(c in value for c in "()[]{}*$"):  # sweep functions and interpolations: Hydra's business
            continue
        known = _known_options(key, config_dir, extra)
        for name in (v.strip() for v in value.split(",")):
            if name in ("", "null") or name in known:
                continue
            message = f"no config {key}/{name} ({argument}); known {key} options: {', '.join(known)}"
            if key in PLUGIN_GROUPS:
                message += f"; {_plugin_hint(key, name)}"
            print(f"error: {message}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)


def preflight(argv: list[str], config_dir: Path) -> None:
    """Everything the entry points check before Hydra starts (each failure: one line, exit 2)."""
    extra = extra_config_dirs(argv)
    check_config_choices(argv, config_dir, extra)
    check_yaml_syntax(argv, config_dir, extra)
    check_output_dir(argv)
    check_trainer_overrides(argv)
