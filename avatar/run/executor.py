"""Where independent units of heavy work run: in this process (``local``) or on Ray (``ray``).

Why an executor: the surrogate's brief distillations and the final students are
independent of each other, a map. On a laptop they run one after another in this process,
as they always did; on a many-core machine, a GPU node or a cluster, Ray runs several at
once (``executor=ray``). Nothing here schedules work itself: Ray Core does, with its own
resource accounting (``cpus_per_run``, fractional ``gpus_per_run``) and task retries.

The contract, the same for both executors:

- a unit of work is self-contained: a module-level function and plain, picklable
  arguments (a candidate, settings, a Lightning budget). Large objects every unit shares
  (the task with its data, the teacher's knowledge) go in ``shared``: Ray stores them once
  in its object store, not once per unit. No Hydra config ever reaches a worker.
- ``map`` yields ``(index, result)`` as each unit finishes, in completion order. The
  driver, the process that called it, records each result at once (a cache line, a
  ``students.json``): it alone writes run files, caches and wandb, and a driver killed
  mid-map loses only the units still in flight. A rerun skips what was recorded.
- a worker that dies (killed, out of memory) is retried by Ray (``retries``); an error
  raised by the unit itself is not retried and reaches the driver as that error.
- measured meters (latency, energy) never run inside a map: ``map`` returns only once
  every unit has finished, so nothing shares the machine while the driver measures.
"""

from __future__ import annotations

import logging
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError
from avatar.core.registry import EXECUTORS

log = logging.getLogger("avatar")


Function = Callable[..., Any]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (``None``: leave torch's default)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Executor(ABC):
    """Runs ``function(unit, **shared)`` for every unit; see the module docstring for the contract."""

    name: str = "executor"

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many units run at the same time."""

    @abstractmethod
    def map(
        self,
        function: Function,
        units: Sequence[Any],
        shared: Mapping[str, Any] | None = None,
        costs: Sequence[float] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """``(index into units, result)`` for each unit, as each finishes.

        ``costs`` (optional, any unit: relative estimates) let an executor that runs several
        at once start the longest first, so one long unit does not start last and leave
        the other workers idle while it runs (longest-processing-time-first scheduling).
        """

    def describe(self) -> str:
        return f"{self.name} ({self.workers} at a time)"

    def close(self) -> None:  # noqa: B027  (optional hook: only Ray has something to release)
        """Release what the executor started (a local Ray)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _loopback_only() -> Iterator[None]:
    """A local Ray that listens on 127.0.0.1 only, as a laptop's work should.

    Why this switch: Ray 2.60 turns a requested loopback address (``_node_ip_address``) into
    the machine's reachable one, and its GCS, raylet and workers then listen on every
    interface. The one setting that keeps a Ray node on the loopback is the one Ray uses on
    macOS and Windows: ``ENABLE_RAY_CLUSTER`` off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``),
    read once at import. It only decides the node's own address, so it is set around
    ``ray.init`` and restored: a cluster joined later is not affected.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _private_token() -> None:
    """Ray's cluster token guards a cluster, and Ray 2.60 writes ``~/.ray/auth_token``
    readable by every user: make it 0600."""
    token = Path.home() / ".ray" / "auth_token"
    try:
        if token.is_file() and token.stat().st_mode & 0o077:
            token.chmod(0o600)
            log.info("ray: made %s readable by its owner only", token)
    except OSError as error:  # another user's file, a read-only home: say so, do not stop the run
        log.warning("ray: could not make %s private: %s", token, error)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Today's behaviour: one unit after another, in this process.

    ``threads`` sets torch's threads per unit (``None``: torch's default, every core), so a
    local run can be compared with a Ray run of the same threads per unit.
    """


    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and int(threads) < 1:
            raise AvatarError(f"executor.threads must be at least 1 or null, got {threads}")
        self.threads = int(threads) if threads is not None else None

    @property
    def workers(self) -> int:
        return 1

    def map(self, function: Function, units: Sequence[Any], shared: Mapping[str, Any] | None = None,
            costs: Sequence[float] | None = None) -> Iterator[tuple[int, Any]]:
        for index, unit in enumerate(units):  # in order: one at a time, the order costs nothing
            with torch_threads(self.threads):
                result = function(unit, **(shared or {}))
            yield index, result


def _run_unit(function: Function, unit: Any, shared: Mapping[str, Any], threads: int) -> Any:
    """A Ray task's body: the unit under the threads its CPUs allow (Ray also sets OMP_NUM_THREADS)."""
    with torch_threads(threads):
        return function(unit, **shared)


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Ray Core tasks: a local Ray on this machine (``address=None``) or an existing cluster.

    ``address``: ``None`` starts a local Ray with ``num_cpus``/``num_gpus`` (default: all of
    the machine's), ``auto`` joins the cluster this machine belongs to, ``ray://host:10001``
    a remote one. Each unit asks for ``cpus_per_run`` CPUs (its torch threads) and
    ``gpus_per_run`` GPUs, fractional so several 3 MB students share one GPU. Ray starts
    lazily, at the first map with work to do, so a run whose units are all cached pays
    nothing; a Ray this executor started is shut down by ``close``, one that was already
    running (``ray.init`` by the caller) is left alone.
    """


    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        retries: int = 2,
        object_store_mb: int | None = None,
    ) -> None:
        if cpus_per_run <= 0:
            raise AvatarError(f"executor.cpus_per_run must be positive, got {cpus_per_run}")
        if gpus_per_run < 0:
            raise AvatarError(f"executor.gpus_per_run must be >= 0, got {gpus_per_run}")
        if retries < 0:
            raise AvatarError(f"executor.retries must be >= 0, got {retries}")
        if address is not None and num_cpus is not None:
            raise AvatarError(
                "executor.num_cpus sizes a local Ray; an existing cluster (executor.address) has its own"
            )
        try:
            import ray  # noqa: F401
        except ImportError:
            raise AvatarError(
                "executor=ray needs Ray: pip install 'ray==2.60.0' (make setup installs it)"
            ) from None
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.cpus_per_run = float(cpus_per_run)
        self.gpus_per_run = float(gpus_per_run)
        self.retries = int(retries)
        self.object_store_mb = object_store_mb
        self.started_ray = False
        self.startup_seconds: float | None = None

    # -- the cluster
    def _connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        started = time.perf_counter()
        options: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": True, "logging_level": logging.WARNING,
        }
        if self.address is None:
            options["num_cpus"] = self.num_cpus
            options["num_gpus"] = self.num_gpus
            if self.object_store_mb:
                options["object_store_memory"] = int(self.object_store_mb) * 1024**2
        else:
            options["address"] = self.address
        try:
            with _loopback_only() if self.address is None else nullcontext():
                ray.init(**options)
        except ConnectionError as error:
            raise AvatarError(
                f"executor=ray: cannot reach the Ray cluster at {self.address}: {error}"
            ) from None
        self.started_ray = True
        self.startup_seconds = time.perf_counter() - started
        self._check_resources(ray.cluster_resources())
        _private_token()
        where = "a local Ray" if self.address is None else f"the Ray cluster at {self.address}"
        log.info("ray: connected to %s in %.1f s: %s", where, self.startup_seconds, self.describe())

    def _check_resources(self, resources: Mapping[str, float]) -> None:
        """One line, at once, for a request no node can meet: Ray would wait for it forever."""
        seen = f"CPU {resources.get('CPU', 0):g}, GPU {resources.get('GPU', 0):g}"
        if self.gpus_per_run and resources.get("GPU", 0) < self.gpus_per_run:
            raise AvatarError(f"executor.gpus_per_run={self.gpus_per_run:g} but the Ray cluster has no GPU "
                              f"to give (resources: {seen}); set executor.gpus_per_run=0")
        if resources.get("CPU", 0) < self.cpus_per_run:
            raise AvatarError(f"executor.cpus_per_run={self.cpus_per_run:g} is more than the Ray cluster has "
                              f"(resources: {seen})")

    @property
    def workers(self) -> int:
        """Units that fit at once on the cluster's CPUs (and GPUs, when units ask for them)."""
        import ray

        if not ray.is_initialized():
            cpus = self.num_cpus or os.cpu_count() or 1
            return max(1, math.floor(cpus / self.cpus_per_run))
        resources = ray.cluster_resources()
        fits = math.floor(resources.get("CPU", 1) / self.cpus_per_run)
        if self.gpus_per_run:
            fits = min(fits, math.floor(resources.get("GPU", 0) / self.gpus_per_run))
        return max(1, fits)

    def describe(self) -> str:
        gpus = f", {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""
        return f"ray ({self.workers} at a time, {self.cpus_per_run:g} CPU{gpus} per run)"

    # -- the map
    def map(self, function: Function, units: Sequence[Any], shared: Mapping[str, Any] | None = None,
            costs: Sequence[float] | None = None) -> Iterator[tuple[int, Any]]:
        if not units:
            return
        import ray

        self._connect()
        shared_refs = {name: ray.put(value) for name, value in (shared or {}).items()}
        remote = ray.remote(_run_unit).options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.retries,
            retry_exceptions=False,
        )
        threads = max(1, math.ceil(self.cpus_per_run))
        # a dict of ObjectRefs is resolved inside the worker: fetch each shared object there
        order = range(len(units))
        if costs is not None:  # Ray starts queued tasks of one shape in the order they were submitted
            order = sorted(order, key=lambda i: -costs[i])
        pending = {remote.remote(function, units[i], _Shared(shared_refs), threads): i for i in order}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    yield index, self._result(ref, index)
        finally:
            for ref in pending:  # the driver stopped early (an error, Ctrl-C): stop the rest
                ray.cancel(ref, force=True)

    def _result(self, ref: Any, index: int) -> Any:
        """The unit's result; its own error as itself; a lost worker as one line."""
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError:
            raise  # the unit's own exception (an AvatarError stays one)
        except ray.exceptions.RayError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise AvatarError(
                f"unit {index} was lost on Ray after {self.retries} retries "
                f"({type(error).__name__}: {first}); if workers run out of memory, raise "
                "executor.cpus_per_run or lower executor.num_cpus"
            ) from None

    def close(self) -> None:
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False


class _Shared(Mapping[str, Any]):
    """The shared objects' references, fetched from Ray's object store on first use in the worker.

    Why not pass the references themselves: Ray resolves only top-level ``ObjectRef``
    arguments; one nested in a dict would reach the function unresolved.
    """

    def __init__(self, refs: Mapping[str, Any]) -> None:
        self.refs = dict(refs)
        self.values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.values:
            import ray

            self.values[name] = ray.get(self.refs[name])
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __getstate__(self) -> dict[str, Any]:
        return {"refs": self.refs, "values": {}}
