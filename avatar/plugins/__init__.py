"""Avatar's built-in plugins, one module each under a folder per kind.

Importing this package (the ``builtin`` entry point of the ``avatar.plugins`` group)
imports every module below it, and their ``@REGISTRY.register`` decorators register the
plugins: a new built-in is one new file, with no import list to keep.
"""

import importlib
import pkgutil


def _import_all() -> None:
    # built-ins that live beside their base class (the fine-tuning needs ``hard``; a run
    # needs ``local``), registered like every plugin
    for name in ("avatar.learn.losses", "avatar.run.executor"):
        importlib.import_module(name)
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)


_import_all()
