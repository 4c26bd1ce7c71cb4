"""``python search.py`` end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

from avatar.cli.main import main as cli_main
from avatar.search.cost import MB
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
    expected = "error: unknown indicator 'nope'; known indicators: budget_examples, flops, snip, surrogate"
    assert done.stderr.strip().splitlines()[-1] == expected


def test_multirun_writes_one_run_dir_per_seed_and_avatar_compare_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _search(
        "--multirun", "search.seed=1,2", "indicator=flops", "distill.top_k=0", "logger=none",
        "search.population=8", "search.generations=2", "count_feasible=false", f"hydra.sweep.dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fronts = [json.loads((tmp_path / str(n) / "pareto.json").read_text()) for n in (0, 1)]
    assert [f["seed"] for f in fronts] == [1, 2]

    assert cli_main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("shared overrides: indicator=flops distill.top_k=0 logger=none")
    rows = [line for line in out if line.startswith(("| 0 |", "| 1 |"))]
    assert [row.split(" | ")[1] for row in rows] == ["search.seed=1", "search.seed=2"]
    for row, front in zip(rows, fronts):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert int(cells[2]) == len(front["front"])
        assert float(cells[3]) == pytest.approx(front["hypervolume"][-1], rel=1e-3)
        assert 0 < float(cells[4]) <= 1.1 ** len(front["objectives"])
    assert out[-1] == f"fronts: {tmp_path / 'compare.png'}"
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
