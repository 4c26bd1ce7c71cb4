"""Shared test settings: offline hubs, offline wandb, a private cache, the real data root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("AVATAR_DATA", str((REPO.parent / "shared" / "data").resolve()))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATAR_CACHE", str(tmp_path_factory.getbasetemp() / "avatar_cache"))


def data_root() -> Path:
    return Path(os.environ["AVATAR_DATA"])


def require_data(*parts: str) -> Path:
    """The real data path, or skip with the reason."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set AVATAR_DATA to the shared data root)")
    return path
