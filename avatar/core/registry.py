"""Plugin registries: one place where every extension point is named.

Why a registry: users pick tasks, teachers, constraints, meters, effectiveness indicators,
executors, distillation losses and code transforms by name from the command line
(``task=vuln``); these eight registries are every extension point Avatar has. A decorator registers a
plugin; ``create``/``get``/``build`` look it up and an unknown name fails with one line
that lists the known names.

Discovery: every plugin package, Avatar's own built-ins included, joins through the
``avatar.plugins`` entry-point group (ours: ``builtin = "avatar.plugins"`` in
pyproject.toml). Each entry point names a module (or callable) that is imported, and
importing it runs its ``@REGISTRY.register`` decorators. So this module, the lowest of
the package, imports no plugin itself (as timm's registry never imports the models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from avatar.core.errors import AvatarError

T = TypeVar("T")

ENTRY_POINT_GROUP = "avatar.plugins"


class UnknownPluginError(AvatarError, KeyError):
    """Raised when a plugin name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of plugins of one kind (tasks, teachers, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@TASKS.register("vuln")`` over a class or factory function.

        A class gets ``name`` set to the registered name: the name is written once, here.
        """

        def decorator(obj: T) -> T:
            existing = self._items.get(name)
            if existing is not None and existing is not obj:
                qualname = getattr(existing, "__qualname__", repr(existing))
                raise ValueError(f"{self.kind} plugin {name!r} is already registered by {qualname}")
            self._items[name] = obj
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]  # the one place a plugin's name is written
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The plugin registered under ``name``; one clear line if there is none."""
        load_plugins()
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "(none: is avatar installed? pip install -e .)"
            plural = f"{self.kind}es" if self.kind.endswith("s") else f"{self.kind}s"
            raise UnknownPluginError(f"unknown {self.kind} {name!r}; known {plural}: {known}")
        return self._items[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the plugin: call the registered class or factory with ``kwargs``."""
        factory = self.get(name)
        return factory(**kwargs)  # type: ignore[operator]

    def build(self, spec: Mapping[str, Any] | str, where: str | None = None) -> Any:
        """``{name: size, max_mb: 3}`` or ``"size"`` -> the plugin; bad options are one line.

        ``where``: the spec's config key (``indicator``), so an unknown option's line says how
        to remove it on the command line.
        """
        if isinstance(spec, str):
            return self.create(spec)
        options = dict(spec)
        name = options.pop("name", None)
        if not name:
            raise AvatarError(f"{self.kind} entry without a name: {dict(spec)}")
        unknown, accepted = self._unknown_options(name, options)
        if unknown:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no options"
            message = f"{self.kind} {name!r} has no option {', '.join(unknown)} ({takes})"
            if where:
                remove = " ".join(f"~{where}.{key}" for key in unknown)
                message += f"; options an experiment set for another {self.kind} go with {remove}"
            raise AvatarError(message)
        try:
            return self.create(name, **options)
        except (TypeError, ValueError) as error:  # a value the plugin refuses
            raise AvatarError(f"{self.kind} {name!r}: bad options {options}: {error}") from None

    def _unknown_options(self, name: str, options: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """The ``options`` the plugin's signature has no parameter for, and the ones it has.

        Why here: Python's own message ("takes no arguments") names neither the option nor where
        it came from: ``experiment=demo indicator=flops`` hands the flops indicator the
        surrogate's options that the experiment set.
        """
        import inspect

        try:
            parameters = inspect.signature(self.get(name)).parameters.values()  # type: ignore[arg-type]
        except (TypeError, ValueError):  # a builtin without a signature: let the call decide
            return [], []
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return [], []
        accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return [key for key in options if key not in accepted], accepted

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items


TASKS: Registry[Any] = Registry("task")
TEACHERS: Registry[Any] = Registry("teacher")
CONSTRAINTS: Registry[Any] = Registry("constraint")
METERS: Registry[Any] = Registry("meter")
INDICATORS: Registry[Any] = Registry("indicator")
EXECUTORS: Registry[Any] = Registry("executor")
LOSSES: Registry[Any] = Registry("loss")
TRANSFORMS: Registry[Any] = Registry("transform")

_loaded = False


def load_plugins() -> None:
    """Import every ``avatar.plugins`` entry point (the built-ins are one), once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
        except Exception as error:  # a broken third-party plugin must not hide the rest
            raise AvatarError(
                f"plugin entry point {entry_point.name!r} ({entry_point.value}) failed to load: {error}"
            ) from error
        if callable(loaded) and not isinstance(loaded, type):
            loaded()
