"""Run logging: every evaluated candidate and each generation's hypervolume.

wandb runs offline by default (``logger.mode=offline`` or ``WANDB_MODE``) so nothing leaves
the machine; ``wandb sync <run dir>/wandb/offline-run-*`` uploads later. ``logger=none``
logs nothing. A resumed search reopens the same wandb run id.
"""

from __future__ import annotations

import os
from typing import Any

from avatar.core.errors import AvatarError


class RunLogger:
    """Logs nothing: ``logger=none``."""

    run_id: str | None = None

    def log_candidate(self, record: dict[str, Any]) -> None:
        pass

    def log_generation(self, generation: int, metrics: dict[str, float]) -> None:
        pass

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbRunLogger(RunLogger):
    """wandb: a run table of candidates and per-generation scalars."""

    def __init__(
        self,
        run_dir: str,
        project: str = "avatar",
        mode: str | None = None,
        config: dict[str, Any] | None = None,
        run_id: str | None = None,
        name: str | None = None,
    ) -> None:
        import wandb

        mode = mode or os.environ.get("WANDB_MODE", "offline")
        if mode not in ("offline", "online", "disabled"):
            raise AvatarError(f"logger.mode must be offline, online or disabled, got {mode!r}")
        os.makedirs(run_dir, exist_ok=True)
        self._wandb = wandb
        self.run = wandb.init(
            project=project,
            dir=run_dir,
            mode=mode,  # type: ignore[arg-type]
            config=config,
            id=run_id,
            name=name,
            resume="allow",
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )
        self.run_id = self.run.id
        self._rows: list[dict[str, Any]] = []

    def log_candidate(self, record: dict[str, Any]) -> None:
        flat = {"generation": record["generation"], "key": record["key"]}
        flat.update({f"objective/{k}": v for k, v in record["objectives"].items()})
        self._rows.append(flat)

    def log_generation(self, generation: int, metrics: dict[str, float]) -> None:
        data: dict[str, Any] = {"generation": generation, **metrics}
        if self._rows:
            data["candidates"] = self._table(self._rows)  # every candidate so far
        self.run.log(data, step=generation)

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.run.log({name: self._table(rows)})

    def _table(self, rows: list[dict[str, Any]]) -> Any:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        return self._wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])

    def finish(self) -> None:
        self.run.finish()


def create_logger(
    options: dict[str, Any] | None, run_dir: str, config: dict[str, Any], run_id: str | None = None
) -> RunLogger:
    """The logger named by ``options['name']`` (``wandb`` or ``none``); ``config`` is what it records."""
    name = (options or {}).get("name", "none")
    if name == "none":
        return RunLogger()
    if name == "wandb":
        options = {k: v for k, v in (options or {}).items() if k != "name"}
        return WandbRunLogger(run_dir, config=config, run_id=run_id, **options)
    raise AvatarError(f"unknown logger {name!r}; known loggers: none, wandb")
