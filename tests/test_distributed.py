"""Training on two CPU processes with Lightning's DDP (gloo), as a user would launch it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_two_processes_train_export_one_model_and_parse(tmp_path):
    sets = [
        *TINY_OVERRIDES,
        f"runs_dir={tmp_path / 'runs'}",
        "name=ddp",
        "train.max_epochs=4",
        "train.num_threads=1",
        "train.strategy=ddp",
        "train.devices=2",
    ]
    command = [sys.executable, "-m", "cli.main", "train"]
    for value in sets:
        command += ["--set", value]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    # One report, from rank 0; one run directory, one model.
    assert done.stdout.count("best epoch") == 1 and done.stdout.count("model: ") == 1
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and "latest" in runs, runs
    model_dir = tmp_path / "runs" / "latest" / "model"
    assert (model_dir / "model.safetensors").is_file()

    from nlu.parser import Parser

    parse = Parser.load(model_dir).parse("book a flight to boston")
    assert parse.intent and len(parse.tokens) == 5
