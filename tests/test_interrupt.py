"""Ctrl-C and a full disk at the entry points: one line, a known exit code, in every phase."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avatar.cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    INTERRUPTED,
    RESUME,
    report_errors,
)
from tests.conftest import REPO


def test_ctrl_c_inside_lightning_fit_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    """Lightning swallows the KeyboardInterrupt and calls sys.exit(1); the user sees 130 and one line."""
    import lightning as L
    import torch

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            if index == 1:
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, mid-epoch
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=2)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as stop:
        report_errors(lambda: trainer.fit(Tiny(), data))
    assert stop.value.code == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines()[-1] == INTERRUPTED
    assert signal.getsignal(signal.SIGINT) is before  # Lightning left SIGINT ignored; restored


def test_sigterm_inside_lightning_fit_saves_last_ckpt_and_exits_143(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lightning ends a SIGTERM with SystemExit(None), exit 0; the user sees 143, the hint, a checkpoint."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    from avatar.learn.training import build_trainer

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            if index == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # preempted, mid-epoch
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=2)
    last = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_top_k=0, save_last=True)
    trainer = build_trainer({"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False},
                            callbacks=[last], checkpointing=True)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        report_errors(lambda: trainer.fit(Tiny(), data))
    assert stop.value.code == EXIT_TERMINATED
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"terminated (SIGTERM): {RESUME}"
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_outside_lightning_exits_143(capsys: pytest.CaptureFixture[str]) -> None:
    def work() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the work")

    with pytest.raises(SystemExit) as stop:
        report_errors(work)
    assert stop.value.code == EXIT_TERMINATED
    assert "terminated (SIGTERM)" in capsys.readouterr().err


@pytest.mark.slow  # a real train.py cold start and fine-tune (minutes on a loaded 2-core machine)
def test_ctrl_c_in_train_py_teacher_stage_exits_130(tmp_path: Path) -> None:
    """The real entry point: interrupted while the teacher fine-tunes (Lightning's fit)."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "train.py", "stage=teacher", "task=demo", "task.size=200", "teacher=scratch",
        "teacher.vocab_size=300", "logger=none", "teacher.trainer.max_epochs=1000", "teacher.patience=1000",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache")}
    with open(tmp_path / "stdout", "w") as output, open(tmp_path / "stderr", "w") as errors:
        run = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=errors, text=True)
        try:
            # inside fit, where Lightning catches Ctrl-C: its logger folder exists, or its
            # "Loading `train_dataloader`" line (logged to stderr) is out
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and run.poll() is None:
                if (run_dir / "teacher_logs").exists() or "Loading `train_dataloader`" in (
                    tmp_path / "stderr"
                ).read_text():
                    break
                time.sleep(0.5)
            assert run.poll() is None, "the teacher ended before it could be interrupted"
            time.sleep(1.0)
            run.send_signal(signal.SIGINT)
            run.wait(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
    err = (tmp_path / "stderr").read_text()
    assert run.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert err.strip().splitlines()[-1] == INTERRUPTED


def test_a_full_disk_is_one_line_naming_the_run_dir_and_errno(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library's failed write() carries no file name (a checkpoint, a log): the run dir is named."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here to fail a write with ENOSPC")

    def write_a_checkpoint() -> None:
        with open("/dev/full", "wb") as handle:
            handle.write(b"weights")

    with pytest.raises(SystemExit) as stop:
        report_errors(write_a_checkpoint, run_dir=tmp_path)
    assert stop.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: cannot write a file under {tmp_path} or the cache: No space left on device (ENOSPC); "
        "free some space, or put hydra.run.dir and AVATAR_CACHE on another disk"
    )


def test_a_cache_deleted_mid_run_is_one_line_and_a_missing_file_keeps_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rm -rf`` of the cache while the surrogate appends its brief runs: one line, exit 2, the rerun."""
    import shutil

    from avatar.core.io import append_jsonl

    runs = tmp_path / "cache" / "surrogate" / "demo-1234" / "runs.jsonl"
    runs.parent.mkdir(parents=True)
    append_jsonl(runs, {"key": "a"})

    def record_after_the_cache_went() -> None:
        shutil.rmtree(tmp_path / "cache")
        append_jsonl(runs, {"key": "b"})

    with pytest.raises(SystemExit) as stop:
        report_errors(record_after_the_cache_went, run_dir=tmp_path / "run")
    assert stop.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err.strip() == (
        f"error: cannot access {runs}: the folder {tmp_path / 'cache'} was deleted or moved while the run "
        "used it; run the same command again (what is left is reused)"
    )
    with pytest.raises(FileNotFoundError):  # a file missing from a folder that exists: a bug, not this
        report_errors(lambda: open(tmp_path / "absent.txt").read())


def test_sigterm_wrapped_by_the_code_it_interrupts_is_still_143(capsys: pytest.CaptureFixture[str]) -> None:
    """An extension module's import turns the signal into "ImportError: initialization failed"
    (seen: SIGTERM during ``import onnxruntime`` in the export phase): still the signal's line."""

    def import_an_extension() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException as error:
            raise ImportError("initialization failed") from error

    with pytest.raises(SystemExit) as stop:
        report_errors(import_an_extension)
    assert stop.value.code == EXIT_TERMINATED
    assert capsys.readouterr().err.strip() == f"terminated (SIGTERM): {RESUME}"
