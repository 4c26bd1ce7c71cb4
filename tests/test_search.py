"""The search (NSGA-II, NSGA-III, SPEA2): feasible, deterministic, resumable, non-dominated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avatar.core.errors import AvatarError
from avatar.core.io import read_jsonl
from avatar.core.registry import CONSTRAINTS
from avatar.search.evolve import ALGORITHMS, SearchSettings, hypervolume, run_search
from avatar.search.objectives import MeterContext, Objectives
from avatar.search.smt import Pruner
from tests.helpers import load_space


def _run(run_dir: Path, generations: int = 4, seed: int = 3, progress=None, algorithm: str = "nsga2"):
    space = load_space("tiny")
    constraints = [CONSTRAINTS.create("size", max_mb=0.3), CONSTRAINTS.create("heads")]
    pruner = Pruner(space, constraints, 2, seed=seed)
    objectives = Objectives.from_config("flops", ["size_mb", "gflops"])
    context = MeterContext(space, 2, str(run_dir))
    settings = SearchSettings(population=12, generations=generations, seed=seed, algorithm=algorithm)
    return run_search(space, pruner, objectives, context, settings, run_dir, progress=progress), pruner


def _dominates(a: dict, b: dict, directions: dict) -> bool:
    better = [(a[k] >= b[k]) if d == "max" else (a[k] <= b[k]) for k, d in directions.items()]
    strictly = [(a[k] > b[k]) if d == "max" else (a[k] < b[k]) for k, d in directions.items()]
    return all(better) and any(strictly)


def test_front_is_feasible_and_non_dominated(tmp_path: Path) -> None:
    result, pruner = _run(tmp_path)
    directions = {"effectiveness": "max", "size_mb": "min", "gflops": "min"}
    front = [m["objectives"] for m in result.front]
    assert front
    for member in result.front:
        assert pruner.is_feasible(pruner.space.validate(member["config"]))
        assert member["objectives"]["size_mb"] <= 0.3
    for a in front:
        assert not any(_dominates(b, a, directions) for b in front)
    records = read_jsonl(tmp_path / "candidates.jsonl")
    assert len(records) == result.evaluations
    assert len({r["key"] for r in records}) == len(records)  # nothing evaluated twice
    assert all(pruner.is_feasible(pruner.space.validate(r["config"])) for r in records)
    assert len(result.hypervolumes) == 5


def test_same_seed_same_front(tmp_path: Path) -> None:
    first, _ = _run(tmp_path / "a")
    second, _ = _run(tmp_path / "b")
    assert first.front == second.front
    assert first.hypervolumes == second.hypervolumes


def test_killed_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    reference, _ = _run(tmp_path / "whole")

    def kill_at_generation_2(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "killed", progress=kill_at_generation_2)
    checkpoint = json.loads((tmp_path / "killed" / "search_checkpoint.json").read_text())
    assert checkpoint["generation"] == 2
    evaluated_before = len(read_jsonl(tmp_path / "killed" / "candidates.jsonl"))

    resumed, _ = _run(tmp_path / "killed")
    assert resumed.front == reference.front
    assert resumed.hypervolumes == reference.hypervolumes
    records = read_jsonl(tmp_path / "killed" / "candidates.jsonl")
    assert len({r["key"] for r in records}) == len(records) > evaluated_before
    assert resumed.evaluations == reference.evaluations


def test_torn_candidates_line_is_tolerated(tmp_path: Path) -> None:
    _run(tmp_path, generations=1)
    path = tmp_path / "candidates.jsonl"
    path.write_text(path.read_text() + '{"generation": 1, "key": "torn')
    resumed, _ = _run(tmp_path, generations=2)
    assert resumed.front


@pytest.mark.parametrize("algorithm", ["nsga3", "spea2"])
def test_other_algorithms_are_deterministic_and_resume(tmp_path: Path, algorithm: str) -> None:
    first, pruner = _run(tmp_path / "a", generations=3, algorithm=algorithm)
    second, _ = _run(tmp_path / "b", generations=3, algorithm=algorithm)
    assert first.front and first.front == second.front
    assert first.hypervolumes == second.hypervolumes
    assert all(pruner.is_feasible(pruner.space.validate(m["config"])) for m in first.front)
    checkpoint = json.loads((tmp_path / "a" / "search_checkpoint.json").read_text())
    assert checkpoint["algorithm"] == algorithm

    def kill_at_generation_1(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "killed", generations=3, algorithm=algorithm, progress=kill_at_generation_1)
    resumed, _ = _run(tmp_path / "killed", generations=3, algorithm=algorithm)
    assert resumed.front == first.front
    assert resumed.hypervolumes == first.hypervolumes
    assert resumed.evaluations == first.evaluations


def test_resuming_under_another_algorithm_is_one_line(tmp_path: Path) -> None:
    _run(tmp_path, generations=1)
    with pytest.raises(AvatarError, match="belongs to a nsga2 search, not search.algorithm=spea2") as error:
        _run(tmp_path, generations=2, algorithm="spea2")
    assert "\n" not in str(error.value)


def test_unknown_algorithm_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(AvatarError) as error:
        SearchSettings(algorithm="moead")
    message = str(error.value)
    assert "\n" not in message
    assert all(name in message for name in ALGORITHMS) and "'moead'" in message


def test_hypervolume_matches_a_hand_computed_front() -> None:
    # minimise both: the staircase under (1, 3), (2, 2), (3, 1) up to (4, 4) is 3 + 2 + 1 = 6 unit squares;
    # a dominated point and one beyond the reference add nothing
    points = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [5.0, 0.5]]
    assert hypervolume(points, [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume([[0.5, 0.5]], [1.0, 2.0]) == pytest.approx(0.75)
