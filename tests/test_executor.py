"""Executors: the local map, Ray's map (results, retries, errors) and a whole search on a local
2-CPU Ray giving the same answers as the local executor."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from avatar import stages
from avatar.core.errors import AvatarError
from avatar.core.registry import EXECUTORS
from avatar.run.executor import LocalExecutor, RayExecutor

REPO = Path(__file__).resolve().parents[1]
ray = pytest.importorskip("ray")


def scaled(unit: int, factor: int) -> tuple[int, int]:
    import torch

    return unit * factor, torch.get_num_threads()


def dies_once(unit: str, marker_dir: str) -> str:
    """Kill this worker process the first time a unit runs: Ray must retry it elsewhere."""
    marker = Path(marker_dir) / unit
    if not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    return unit


def always_dies(unit: int) -> int:
    os._exit(1)


def refuses(unit: int) -> int:
    raise AvatarError(f"unit {unit} refuses")


@pytest.fixture(scope="module")
def local_ray():
    """One 2-CPU Ray for the module (started once: about 5 s); executors reuse it and leave it up."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    RayExecutor(num_cpus=2, object_store_mb=200)._connect()  # the local Ray a run starts
    yield
    ray.shutdown()


def test_local_map_runs_in_order_with_its_threads() -> None:
    import torch

    before = torch.get_num_threads()
    results = list(LocalExecutor(threads=1).map(scaled, [1, 2, 3], {"factor": 10}))
    assert results == [(0, (10, 1)), (1, (20, 1)), (2, (30, 1))]
    assert torch.get_num_threads() == before


def test_unknown_executor_lists_the_known_ones() -> None:
    with pytest.raises(AvatarError, match="local, ray"):
        EXECUTORS.build({"name": "dask"})
    with pytest.raises(AvatarError, match="cpus_per_run"):
        EXECUTORS.build({"name": "ray", "cpus_per_run": 0})


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def listening(process) -> list[str]:
    """The addresses a process listens on (TCP), as ``ip:port``."""
    import psutil

    try:
        sockets = process.net_connections(kind="tcp")
    except psutil.Error:  # gone meanwhile
        return []
    return [f"{s.laddr.ip}:{s.laddr.port}" for s in sockets if s.status == psutil.CONN_LISTEN]


def test_a_local_ray_listens_on_the_loopback_only(local_ray) -> None:
    """GCS, raylet, agents and workers of the local Ray a run starts: no port beyond 127.0.0.1."""
    import psutil

    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    names = {p.name() for p in processes}
    assert {"gcs_server", "raylet"} <= names  # the Ray this test started is really there
    ports = {f"{p.name()} {address}" for p in processes for address in listening(p)}
    assert ports
    assert not {port for port in ports if port.split()[1].rsplit(":", 1)[0] not in LOOPBACK}, ports
    assert ray.util.get_node_ip_address() == "127.0.0.1"


def test_a_gpu_request_on_a_cluster_without_gpus_fails_at_once(local_ray) -> None:
    with pytest.raises(AvatarError, match=r"gpus_per_run=0.25 but the Ray cluster has no GPU .*CPU 2, GPU 0"):
        RayExecutor(gpus_per_run=0.25)._check_resources(ray.cluster_resources())


def test_ray_map_returns_every_result_with_shared_objects(local_ray) -> None:
    executor = RayExecutor(cpus_per_run=1)
    results = dict(executor.map(scaled, list(range(5)), {"factor": 3}))
    assert results == {i: (3 * i, 1) for i in range(5)}  # one torch thread per CPU asked
    assert executor.workers == 2
    executor.close()
    assert ray.is_initialized()  # a Ray the executor did not start is left running


def test_ray_starts_the_costliest_units_first(local_ray) -> None:
    """One unit at a time (2 CPUs each on a 2-CPU Ray): completion order is start order."""
    executor = RayExecutor(cpus_per_run=2)
    order = [index for index, _ in executor.map(scaled, [1, 2, 3], {"factor": 1}, costs=[1.0, 3.0, 2.0])]
    assert order == [1, 2, 0]


def test_ray_retries_a_unit_whose_worker_died(local_ray, tmp_path: Path) -> None:
    results = dict(RayExecutor(retries=1).map(dies_once, ["a", "b"], {"marker_dir": str(tmp_path)}))
    assert results == {0: "a", 1: "b"}


def test_ray_worker_that_always_dies_is_one_line(local_ray) -> None:
    with pytest.raises(AvatarError, match="unit 0 was lost on Ray after 1 retries"):
        list(RayExecutor(retries=1).map(always_dies, [1]))


def test_ray_unit_error_reaches_the_driver_as_itself(local_ray) -> None:
    with pytest.raises(AvatarError, match="unit 1 refuses"):
        list(RayExecutor().map(refuses, [1]))


def _search(run_dir: Path, cache: Path, *overrides: str) -> dict:
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("search", overrides=[
            "experiment=demo", "indicator.samples=3", "indicator.max_steps=20", "search.population=6",
            "search.generations=2", "trainer.max_epochs=1", "teacher.trainer.max_epochs=2",
            "report.examples=10", "report.export=false", "logger=none", f"paths.cache={cache}", *overrides,
        ])
    return stages.search(cfg, run_dir)


def test_search_on_ray_gives_the_local_answers(local_ray, tmp_path: Path) -> None:
    """Same seed, one thread per run on both sides: the same brief runs, front and students."""
    local = _search(tmp_path / "local", tmp_path / "cache-local", "executor.threads=1")
    # the ray run reuses the teacher's cached knowledge but not the surrogate's runs: it computes them
    shutil.copytree(tmp_path / "cache-local", tmp_path / "cache-ray",
                    ignore=lambda folder, names: ["surrogate"] if "surrogate" in names else [])
    on_ray = _search(tmp_path / "ray", tmp_path / "cache-ray", "executor=ray", "executor.cpus_per_run=1")

    def runs(result_dir: Path) -> list:
        return [(r["key"], r["metric"], r["val_loss"]) for r in
                json.loads((result_dir / "surrogate.json").read_text())["runs"]]

    assert runs(tmp_path / "ray") == runs(tmp_path / "local")
    assert on_ray["front"] == local["front"]
    assert [s["candidate"] for s in on_ray["students"]] == [s["candidate"] for s in local["students"]]
    for ours, theirs in zip(on_ray["students"], local["students"]):
        assert ours["metrics"] == pytest.approx(theirs["metrics"], abs=1e-6)
    assert "trained on ray (2 at a time" in (tmp_path / "ray" / "report.md").read_text()


@pytest.mark.slow
def test_driver_killed_during_ray_brief_runs_resumes_without_recomputing(tmp_path: Path) -> None:
    """kill -9 the driver once a brief run is recorded; the same command redoes only the rest."""
    import signal
    import subprocess
    import time

    import numpy as np

    from avatar.plugins.tasks.demo import DemoTask

    gold = np.array([e.label for e in DemoTask(size=200).read_split("unlabel_train")])
    logits = tmp_path / "gold.npy"
    np.save(logits, (np.eye(2)[gold] * 6 - 3).astype(np.float32))
    command = [
        sys.executable, "search.py", "experiment=demo", "task.size=200", "teacher=predictions",
        f"teacher.path={logits}", "teacher.kind=logits", "indicator.samples=6", "indicator.max_steps=60",
        "search.population=6", "search.generations=1", "distill.top_k=0", "logger=none", "executor=ray",
        "executor.num_cpus=2", f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    runs: list[Path] = []
    while time.monotonic() < deadline and first.poll() is None and not runs:
        runs = [p for p in (tmp_path / "cache").glob("surrogate/*/runs.jsonl") if p.read_text().strip()]
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert runs, "no brief run was recorded before the deadline"
    before = runs[0].read_text().splitlines()
    assert 1 <= len(before) < 6

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"({len(before)} cached)" in again.stdout + again.stderr
    after = runs[0].read_text().splitlines()
    assert after[: len(before)] == before  # what finished stands, untouched
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == 6  # nothing computed twice


@pytest.mark.slow
def test_nothing_of_a_local_ray_outlives_its_driver_killed_by_sigkill(tmp_path: Path) -> None:
    """kill -9 of a driver whose executor started Ray: every Ray process of it ends.

    Ray's dashboard and runtime-env agents notice the raylet's death within 2 s, then try to
    report it to a GCS that died too, for Ray's fixed 60 s: hence the 120 s allowed here.
    """
    import signal
    import subprocess

    import psutil

    driver = (
        "from avatar.run.executor import RayExecutor\n"
        "import time\n"
        "with RayExecutor(num_cpus=1) as executor:\n"
        "    print(list(executor.map(abs, [-1])), flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "[(0, 1)]"
    ray_processes = psutil.Process(process.pid).children(recursive=True)
    assert {"gcs_server", "raylet"} <= {p.name() for p in ray_processes}
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    gone, alive = psutil.wait_procs(ray_processes, timeout=120)
    assert not alive, [f"{p.pid} {p.name()}" for p in alive]
