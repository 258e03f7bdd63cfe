"""Training curves from Lightning's CSV log, gradient logging, and the TensorBoard option."""

import importlib.util

import pytest

from nlu.analysis.curves import read_epoch_log, write_curves
from tests.conftest import TINY_OVERRIDES

PNG = b"\x89PNG\r\n\x1a\n"

# The shape Lightning's CSVLogger writes: step rows, then the epoch's train and val rows.
LOG = """epoch,step,train_loss_epoch,train_loss_step,val_loss,val_slot_f1,train_grad_clipped
0,9,,2.5,,,
0,9,,,1.5,40.0,
0,9,2.0,,,,0.0
1,19,,1.0,,,
1,19,,,0.9,70.0,
1,19,1.1,,,,0.0
1,19,,,0.8,75.0,
"""


def test_epoch_log_keeps_one_value_per_epoch_and_drops_step_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(LOG)
    log = read_epoch_log(path)
    assert log.epochs == [1, 2]
    assert set(log.columns) == {"train_loss_epoch", "val_loss", "val_slot_f1", "train_grad_clipped"}
    assert log.columns["val_slot_f1"] == [40.0, 75.0]  # the last value of an epoch wins
    assert log.columns["train_loss_epoch"] == [2.0, 1.1]
    assert log.columns["train_grad_clipped"] == [0.0, 0.0]  # all zero is still logged


def test_epoch_log_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n1,2\n")
    with pytest.raises(ValueError, match=r"metrics.csv:1: expected a header with an 'epoch' col"):
        read_epoch_log(path)
    path.write_text("epoch,val_loss\n0,1.5\n1,oops\n")
    with pytest.raises(ValueError, match=r"metrics.csv:3: expected a number in column 'val_loss'"):
        read_epoch_log(path)
    with pytest.raises(FileNotFoundError, match="nothing.csv: not found"):
        read_epoch_log(tmp_path / "nothing.csv")


def test_a_run_draws_its_curves_and_logs_gradient_norms(trained, tmp_path):
    assert (trained.run_dir / "curves.png").read_bytes()[:8] == PNG
    log = read_epoch_log(trained.run_dir / "logs" / "metrics.csv")
    assert log.epochs == list(range(1, trained.epochs + 1))
    norms, clipped = log.columns["train_grad_norm"], log.columns["train_grad_clipped"]
    assert len(norms) == trained.epochs and all(n is not None and n > 0 for n in norms)
    assert all(0.0 <= c <= 1.0 for c in clipped)
    assert all(v is not None for v in log.columns["val_intent_accuracy"])
    # Redrawn elsewhere, from the run directory alone.
    assert write_curves(trained.run_dir, tmp_path / "again.png").read_bytes()[:8] == PNG


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="needs tensorboard")
def test_tensorboard_logs_beside_the_csv_log(tmp_path):
    from nlu.config import load_config
    from nlu.training.train import train

    overrides = [*TINY_OVERRIDES, "train.max_epochs=1", "train.tensorboard=true"]
    result = train(load_config(None, [*overrides, f"runs_dir={tmp_path}"]))
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (result.run_dir / "logs" / "metrics.csv").is_file()


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    from nlu.config import load_config
    from nlu.training.train import train

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    cfg = load_config(None, [*TINY_OVERRIDES, "train.tensorboard=true", f"runs_dir={tmp_path}"])
    with pytest.raises(ValueError, match="train.tensorboard is true: expected the tensorboard"):
        train(cfg)
    assert not list(tmp_path.iterdir())  # failed before writing anything
