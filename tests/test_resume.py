"""Stopping a run (SIGTERM, Ctrl-C, SIGKILL) and going on with `nlu train --resume`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES

ROOT = Path(__file__).parent.parent


def start(runs: Path, epochs: int) -> subprocess.Popen:
    sets = [*TINY_OVERRIDES, f"runs_dir={runs}", f"train.max_epochs={epochs}",
            f"train.patience={epochs}", "train.num_threads=1"]  # fmt: skip
    command = [sys.executable, "-m", "cli.main", "train"]
    for value in sets:
        command += ["--set", value]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def wait_for_epoch(runs: Path, epoch: int, process: subprocess.Popen) -> Path:
    """The run directory, once its checkpoint ends `epoch` (0-based) or later."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for info in runs.glob("*/checkpoints/last.json"):
            try:
                if json.loads(info.read_text())["epoch"] >= epoch:
                    return info.parent.parent
            except (ValueError, KeyError):
                pass  # being replaced
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_with_its_status_and_says_how_to_resume(tmp_path, signum):
    process = start(tmp_path, epochs=500)
    run_dir = wait_for_epoch(tmp_path, 1, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"nlu train: stopped by {signal.Signals(signum).name} after ")
    assert last.endswith(f"go on with: nlu train --resume {run_dir}")
    assert not (run_dir / "model").exists()


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_epoch_and_exports(tmp_path):
    process = start(tmp_path, epochs=30)
    run_dir = wait_for_epoch(tmp_path, 2, process)
    process.kill()
    process.communicate()  # reaps it and closes its pipes
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "train", "--resume", str(run_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "checkpoints" / "last.json").read_text())["epoch"] == 29
    info = json.loads((run_dir / "model" / "info.json").read_text())
    assert info["epochs_run"] == 30
    # The log holds each epoch once: the rows of the cut-short epoch were dropped.
    rows = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    epochs = [r.split(",")[header.index("epoch")] for r in rows[1:]]
    val = [e for r, e in zip(rows[1:], epochs) if r.split(",")[header.index("val_loss")]]
    assert sorted(int(float(e)) for e in val) == list(range(30))


def test_resume_refuses_a_config_beside_it(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["train", "configs/atis_bilstm_crf.yaml", "--resume",
                                      str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1
    assert "--resume: expected no CONFIG, --set or --seeds with it" in result.output
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "train_config.yaml: not found" in result.output
