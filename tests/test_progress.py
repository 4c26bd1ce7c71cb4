"""Progress where stderr is not a terminal: dated lines on time, also while nothing moves."""

from __future__ import annotations

import logging
import time

import pytest

from avatar.core.progress import progress_bar, progress_lines


def test_progress_lines_come_on_time_while_one_long_unit_runs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="avatar")
    with progress_lines("surrogate (brief distillations)", 4, every=0.05) as update:
        update(1)
        time.sleep(0.3)  # one long brief run: no update, but lines keep coming
        update(4)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("surrogate")]
    assert len(lines) >= 3
    assert lines[0].startswith("surrogate (brief distillations): 1/4, ")
    assert "left" in lines[0] and lines[-1].startswith("surrogate (brief distillations): 4/4, ")


def test_a_bar_outside_a_terminal_is_lines_not_a_last_frame(caplog: pytest.LogCaptureFixture,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO, logger="avatar")
    with progress_bar("students", 2) as update:  # pytest's capture: not a terminal
        update(2)
    assert capsys.readouterr().err == ""  # no rich frame
    assert [r.getMessage() for r in caplog.records][-1].startswith("students: 2/2, ")


def test_lightning_lines_are_printed_once_when_the_run_logs_on_the_root_logger() -> None:
    """Lightning's package logger printed each line itself and passed it up: twice in a run's log."""
    from avatar.learn.training import build_trainer

    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        build_trainer({"accelerator": "cpu", "max_steps": 1, "enable_progress_bar": False})
        own = [h for h in logging.getLogger("lightning").handlers if type(h) is logging.StreamHandler]
        assert own == [] and logging.getLogger("lightning").propagate
    finally:
        root.removeHandler(handler)


def test_the_expected_time_scales_the_reference_by_the_probe(caplog: pytest.LogCaptureFixture) -> None:
    from avatar.run.estimate import expected_seconds, probe_seconds, say_expected

    assert expected_seconds({"seconds": 150, "probe_seconds": 0.1}, 0.3) == pytest.approx(450)
    assert 0 < probe_seconds(repeats=1) < 5
    caplog.set_level(logging.INFO, logger="avatar")
    say_expected({"seconds": 150, "probe_seconds": 0.08}, "this run")
    assert caplog.records[-1].getMessage().startswith("this run: expected about ")
