"""Test helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path

import yaml

from avatar.space import Space

REPO = Path(__file__).resolve().parents[1]


def load_space(name: str) -> Space:
    text = (REPO / "configs" / "space" / f"{name}.yaml").read_text()
    return Space.from_config(yaml.safe_load(text)["dimensions"])
