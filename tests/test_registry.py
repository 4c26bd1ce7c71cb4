"""Registries: unknown names list the known ones; plugins come from entry points too."""

from __future__ import annotations

import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import (
    CONSTRAINTS,
    EXECUTORS,
    INDICATORS,
    LOSSES,
    METERS,
    TASKS,
    TEACHERS,
    TRANSFORMS,
    Registry,
    UnknownPluginError,
)
from avatar.search.space import Dimension, Space


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownPluginError) as error:
        CONSTRAINTS.get("sizee")
    message = str(error.value)
    assert message == "unknown constraint 'sizee'; known constraints: flops, heads, size, train_memory"
    assert isinstance(error.value, AvatarError)


def test_builtins_are_registered() -> None:
    assert {"vuln", "clone", "demo"} <= set(TASKS.names())
    assert {"size_mb", "gflops", "latency_ms"} <= set(METERS.names())
    assert "flops" in INDICATORS.names()


def test_every_extension_point_is_a_registry_of_one_module() -> None:
    import avatar.core.registry as registry

    kinds = {value.kind for value in vars(registry).values() if isinstance(value, Registry)}
    assert kinds == {"task", "teacher", "constraint", "meter", "indicator", "executor", "loss", "transform"}
    assert {"local", "ray"} <= set(EXECUTORS.names()) and {"kl", "hard", "kl_cosine"} <= set(LOSSES.names())
    assert TRANSFORMS.kind == "transform"


def test_register_sets_the_name_once() -> None:
    """The decorator writes a class's ``name``: no second attribute to keep in step."""
    for registry in (TASKS, TEACHERS, METERS, INDICATORS, EXECUTORS, LOSSES):
        for name in registry.names():
            plugin = registry.get(name)
            if isinstance(plugin, type):
                assert plugin.name == name, (registry.kind, name)


def test_builtin_plugins_are_found_by_walking_the_package() -> None:
    """No hand-kept import list: each kind's ``__init__`` holds only its docstring."""
    from tests.conftest import REPO

    for init in (REPO / "avatar" / "plugins").glob("*/__init__.py"):
        lines = init.read_text(encoding="utf-8").splitlines()
        assert not [line for line in lines if line.startswith(("import ", "from "))], init


def test_register_and_create() -> None:
    registry: Registry = Registry("widget")

    @registry.register("blue")
    class Blue:
        def __init__(self, shade: int = 1) -> None:
            self.shade = shade

    assert registry.create("blue", shade=3).shade == 3
    with pytest.raises(ValueError):
        registry.register("blue")(object)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "x", "choices": []}, "dimension 'x' has no values"),
        ({"name": "x"}, "needs 'choices'"),
        ({"name": "x", "low": 3, "high": 1, "step": 1}, "dimension 'x' has no values"),
        ({"name": "x", "choices": [1, 1]}, "repeats a value"),
    ],
)
def test_bad_space_dimension(spec: dict, message: str) -> None:
    with pytest.raises(AvatarError, match=message):
        Space.from_config([spec])


def test_float_ranges_are_exact() -> None:
    dimension = Dimension.from_spec({"name": "p", "low": 0.2, "high": 0.5, "step": 0.1})
    assert dimension.choices == (0.2, 0.3, 0.4, 0.5)
