"""Objectives: meters and the effectiveness indicator turn a candidate into numbers.

A ``Meter`` is a plugin that measures one number with a direction (``min`` or ``max``):
cheap meters compute from the configuration (size, FLOPs), measuring meters build the
model and time it (latency, energy), caching per candidate. An ``EffectivenessIndicator``
predicts how good a student of that configuration would be; it is the objective that
the paper optimises against the costs. ``Objectives`` puts them in one fixed order that
the search, the logs and ``pareto.json`` share.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_json
from avatar.run.executor import Executor
from avatar.search.smt import Pruner
from avatar.search.space import Candidate, Dimension, Space, model_config
from avatar.task.base import Task
from avatar.teach.teacher import Knowledge

log = logging.getLogger("avatar")

Direction = Literal["min", "max"]
EFFECTIVENESS = "effectiveness"
MEASUREMENT_FORMAT = 2
"""Version of the measurements kept by ``RunDirCache``: bump it when a meter measures differently."""


@dataclass
class MeterContext:
    """What meters and indicators may need beyond the candidate: objects, never a config.

    ``knowledge`` is a provider: calling it returns the teacher's knowledge, computed once
    per command by the configuration layer and only when a plugin asks (``indicator=flops``
    with no students needs no teacher). ``trainer`` holds the machine's Lightning options
    (accelerator, devices ...) for plugins that train (the surrogate's brief runs), and
    ``student_seconds`` the students' budget when it is a time, so an indicator can predict what
    a candidate reaches in it;
    ``executor`` is where such plugins run their independent units (``avatar.run.executor``;
    ``None``: in this process).
    """

    space: Space
    num_labels: int
    run_dir: str | None = None
    task: Task | None = None
    pruner: Pruner | None = None
    cache_dir: Path | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    knowledge: Callable[[], Knowledge] | None = None
    executor: Executor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    student_seconds: float | None = None  # the students' wall-clock budget (trainer.max_time), if a time
    # the students train on batches grouped by length (distill.group_by_length): brief runs that
    # stand for them do too, so their throughput is the students'
    student_group_by_length: bool = False
    student_canonical_names: bool = False  # and read canonical names (distill.canonical_names): so do they

    def model_config(self, candidate: Candidate) -> dict[str, Any]:
        return model_config(candidate, self.num_labels)

    def teacher_knowledge(self) -> Knowledge:
        if self.knowledge is None:
            raise AvatarError("this objective needs the teacher's knowledge, and no teacher was configured")
        return self.knowledge()
    def cache_key(self, candidate: Candidate, per_architecture: bool = False, **settings: Any) -> str:
        """A ``RunDirCache`` key: the candidate (or with ``per_architecture`` only what inference
        depends on, ``Candidate.architecture_key``), the number of labels (the classifier head is
        part of the measured model), the meter's ``settings`` and ``MEASUREMENT_FORMAT``."""
        options = "|".join(f"{name}={settings[name]}" for name in sorted(settings))
        what = candidate.architecture_key() if per_architecture else candidate.key()
        return f"{what}|num_labels={self.num_labels}|{options}|format={MEASUREMENT_FORMAT}"


class RunDirCache:
    """Measurements kept per run directory: in memory, and in ``<run_dir>/<file_name>``.

    Measuring meters cost seconds per candidate: a resumed search must not measure a
    candidate again, and meters that read one workload (energy and CO2) share its entry.
    Keys must name every setting that changes the measurement: ``MeterContext.cache_key``
    builds them.
    """

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.memory: dict[tuple[str, str], Any] = {}
        self.loaded: set[str] = set()

    def get(self, run_dir: str | None, key: str, compute: Callable[[], Any]) -> Any:
        folder = run_dir or ""
        path = Path(folder) / self.file_name if folder else None
        if path is not None and folder not in self.loaded:
            self.loaded.add(folder)
            if path.exists():
                for stored_key, value in json.loads(path.read_text()).items():
                    self.memory.setdefault((folder, stored_key), value)
        if (folder, key) not in self.memory:
            self.memory[(folder, key)] = compute()
            if path is not None:
                atomic_write_json(path, {k: v for (d, k), v in self.memory.items() if d == folder})
        return self.memory[(folder, key)]

    def clear(self) -> None:
        self.memory.clear()
        self.loaded.clear()


class Meter(ABC):
    """One objective measured on a candidate. Register with ``@METERS.register(name)``."""

    name: str = ""
    direction: Direction = "min"

    @abstractmethod
    def measure(self, candidate: Candidate, context: MeterContext) -> float: ...


class MeasuredMeter(Meter):
    """A meter that builds the candidate's model and measures it on this machine.

    Measured at most once per (candidate, settings) and run directory: the value is kept
    in ``cache`` (a subclass's ``RunDirCache``), keyed by the candidate and every public
    attribute of the meter (its settings). Subclasses implement ``_measure``.
    """

    cache: RunDirCache
    # An inference measurement depends on the architecture alone: measured once per
    # architecture, whatever the learning rate, batch size or dropout. A meter of training
    # (throughput at the candidate's batch size) sets this False.
    per_architecture: bool = True

    def settings(self) -> dict[str, Any]:
        """What changes the measurement besides the candidate: the meter's public attributes."""
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}

    def measured(self, candidate: Candidate, context: MeterContext) -> Any:
        key = context.cache_key(candidate, per_architecture=self.per_architecture, **self.settings())
        return self.cache.get(context.run_dir, key, lambda: self._measure(candidate, context))

    def measure(self, candidate: Candidate, context: MeterContext) -> float:
        return float(self.measured(candidate, context))

    @abstractmethod
    def _measure(self, candidate: Candidate, context: MeterContext) -> Any: ...


class EffectivenessIndicator(ABC):
    """Predicts a student's effectiveness (higher is better) from its configuration."""

    name: str = ""
    # Whether ``prepare`` reads the teacher's knowledge (``context.teacher_knowledge()``) and so
    # the task's data (the surrogate distils students); a search with an indicator that does
    # not, and no students to distil, needs no teacher and never reads the data.
    needs_knowledge: bool = False

    def prepare(self, context: MeterContext) -> None:  # noqa: B027  (optional hook)
        """Expensive set-up (the surrogate distils and fits here); called once per search."""

    @abstractmethod
    def predict(self, candidate: Candidate, context: MeterContext) -> float: ...

    @property
    def fixed_choices(self) -> dict[str, Any]:
        """Dimensions the indicator measures at one value whatever the candidate's (the surrogate's
        brief runs all train at one learning rate): the search holds them there."""
        return {}

    @property
    def extra_objectives(self) -> list[tuple[str, Direction]]:
        """Further predicted objectives, after effectiveness (the surrogate's robustness): why
        here and not a meter: they come from the same brief runs, prepared once."""
        return []

    def predict_extra(self, candidate: Candidate, context: MeterContext) -> dict[str, float]:
        """The ``extra_objectives``' predicted values for ``candidate``."""
        return {}


LOWEST = "lowest"
"""A held value (``EffectivenessIndicator.fixed_choices``) meaning the space's smallest choice."""


class Objectives:
    """The effectiveness indicator (first) and the meters, in a fixed order."""

    def __init__(self, indicator: EffectivenessIndicator | None, meters: Sequence[Meter]) -> None:
        names = [m.name for m in meters]
        if len(set(names)) != len(names):
            raise AvatarError(f"a meter is listed twice: {names}")
        if not meters and indicator is None:
            raise AvatarError("no objectives: configure an indicator or at least one meter")
        self.indicator = indicator
        self.meters = list(meters)

    @classmethod
    def from_config(cls, indicator: Any, meters: Sequence[Any]) -> Objectives:
        """From plain specs: ``"flops"`` or ``{name: surrogate, samples: 20}``, and a list of meter specs."""
        from avatar.core.registry import INDICATORS, METERS

        built = INDICATORS.build(indicator, where="indicator") if indicator else None
        return cls(built, [METERS.build(m) for m in meters])

    def measured_space(self, space: Space) -> Space:
        """``space`` with each dimension the indicator measured at one value held at that value.

        Why: no objective sees such a dimension, so the search would pick it at random, and
        students were trained at rates no brief run had tried (a 750-snippet task's students
        at 5e-5 and 1e-4 reached 0.66 to 0.78 in 500 steps; the same student at the brief
        runs' 1e-3 reached 1.0). ``space=laptop_context`` held it by hand for the same reason.
        A value the space does not offer leaves the dimension as it is; ``LOWEST`` holds it at
        the space's smallest value.
        """
        fixed = self.indicator.fixed_choices if self.indicator is not None else {}
        dimensions = []
        for dimension in space.dimensions:
            value = fixed.get(dimension.name)
            if value == LOWEST:
                value = min(dimension.choices)
            if value is not None and len(dimension) > 1 and value in dimension.choices:
                log.info("%s held at %g, the value the effectiveness indicator measured (of %s)",
                         dimension.name, value, list(dimension.choices))
                dimension = Dimension(dimension.name, (value,))
            dimensions.append(dimension)
        return Space(dimensions)

    @property
    def _predicted(self) -> list[tuple[str, Direction]]:
        if self.indicator is None:
            return []
        return [(EFFECTIVENESS, "max"), *self.indicator.extra_objectives]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._predicted] + [m.name for m in self.meters]

    @property
    def directions(self) -> list[Direction]:
        return [direction for _, direction in self._predicted] + [m.direction for m in self.meters]

    def prepare(self, context: MeterContext) -> None:
        if self.indicator is not None:
            self.indicator.prepare(context)

    def evaluate(self, candidate: Candidate, context: MeterContext) -> dict[str, float]:
        values: dict[str, float] = {}
        if self.indicator is not None:
            values[EFFECTIVENESS] = float(self.indicator.predict(candidate, context))
            values.update(self.indicator.predict_extra(candidate, context))
        for meter in self.meters:
            values[meter.name] = float(meter.measure(candidate, context))
        return values
