"""``python search.py`` end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

from avatar.cost import MB
from tests.conftest import REPO


def _search(*overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "search.py", *overrides], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_search_cli_writes_a_valid_front(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = _search(
        "task=vuln", "teacher=graphcodebert", "indicator=flops", "distill.top_k=0", "search.population=12",
        "search.generations=3", "search.seed=7", "count_feasible=false", f"hydra.run.dir={run_dir}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pareto = json.loads((run_dir / "pareto.json").read_text())
    assert pareto["front"]
    for member in pareto["front"]:
        with torch.device("meta"):
            model = RobertaForSequenceClassification(RobertaConfig(**member["model_config"]))
        size = sum(p.numel() for p in model.parameters()) * 4 / MB
        assert size <= 3.0
        assert abs(size - member["objectives"]["size_mb"]) < 1e-9
    lines = (run_dir / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == pareto["evaluations"]
    assert list((run_dir / "wandb").glob("offline-run-*")), "wandb offline run missing"


def test_search_cli_unknown_plugin_is_one_line(tmp_path: Path) -> None:
    done = _search("indicator=flops", "indicator.name=nope", "distill.top_k=0", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    expected = "error: unknown indicator 'nope'; known indicators: flops, surrogate"
    assert done.stderr.strip().splitlines()[-1] == expected
