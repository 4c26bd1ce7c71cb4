"""Registries: unknown names list the known ones; plugins come from entry points too."""

from __future__ import annotations

import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import CONSTRAINTS, INDICATORS, METERS, TASKS, Registry, UnknownPluginError
from avatar.search.space import Dimension, Space


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownPluginError) as error:
        CONSTRAINTS.get("sizee")
    message = str(error.value)
    assert message == "unknown constraint 'sizee'; known constraints: flops, heads, size"
    assert isinstance(error.value, AvatarError)


def test_builtins_are_registered() -> None:
    assert {"vuln", "clone", "demo"} <= set(TASKS.names())
    assert {"size_mb", "gflops", "latency_ms"} <= set(METERS.names())
    assert "flops" in INDICATORS.names()


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
