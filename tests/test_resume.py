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
    # Dropout on, so that the random streams a resumed run draws from are part of the test.
    sets = [*TINY_OVERRIDES, f"runs_dir={runs}", f"train.max_epochs={epochs}",
            f"train.patience={epochs}", "train.num_threads=1", "model.dropout=0.3"]  # fmt: skip
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
def test_a_killed_run_resumes_to_the_uninterrupted_run_s_very_weights(tmp_path):
    epochs = 12
    whole = start(tmp_path / "whole", epochs)
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-3000:]
    whole_dir = Path(out.strip().splitlines()[-1].removeprefix("model: "))

    process = start(tmp_path / "cut", epochs)
    run_dir = wait_for_epoch(tmp_path / "cut", 2, process)
    process.kill()  # SIGKILL: no handler runs, the checkpoint on disk is all there is
    process.communicate()  # reaps it and closes its pipes
    assert not (run_dir / "model").exists()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "train", "--resume", str(run_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    weights = "model.safetensors"
    assert (run_dir / "model" / weights).read_bytes() == (whole_dir / weights).read_bytes()
    info = json.loads((run_dir / "model" / "info.json").read_text())
    whole_info = json.loads((whole_dir / "info.json").read_text())
    assert info["best_epoch"] == whole_info["best_epoch"]
    assert info["epochs_run"] == epochs
    # The start and the resume each left a record of what ran (nlu.training.provenance).
    assert [e["resumed_from_epoch"] for e in info["provenance"]][0] is None
    assert info["provenance"][1]["resumed_from_epoch"] >= 3
    assert json.loads((run_dir / "provenance.json").read_text()) == info["provenance"]
    # The log holds each epoch once: the rows of the cut-short epoch were dropped.
    rows = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    epochs_logged = [r.split(",")[header.index("epoch")] for r in rows[1:]]
    val = [e for r, e in zip(rows[1:], epochs_logged) if r.split(",")[header.index("val_loss")]]
    assert sorted(int(float(e)) for e in val) == list(range(epochs))


def test_resume_refuses_a_config_beside_it(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["train", "configs/atis_bilstm_crf.yaml", "--resume",
                                      str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1
    assert "--resume: expected no CONFIG, --set or --seeds with it" in result.output
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "train_config.yaml: not found" in result.output
