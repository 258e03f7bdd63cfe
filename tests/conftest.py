"""Shared fixtures: the tiny hand-written dataset and one tiny model trained on it per session."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny"

# Small and quick to overfit: the point is to exercise every seam, not to be accurate.
TINY_OVERRIDES = [
    f"data.name={TINY}",
    "model.word_dim=32",
    "model.char_dim=16",
    "model.char_filters=16",
    "model.hidden_dim=32",
    "model.dropout=0.0",
    "train.batch_size=4",
    "train.lr=0.01",
    "train.max_epochs=40",
    "train.patience=40",
    "train.monitor=sentence_accuracy",
    "train.progress_bar=false",
]


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return TINY


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A TrainResult of a tiny CRF model overfitted on the tiny training split."""
    from nlu.config import load_config
    from nlu.training.train import train

    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, [*TINY_OVERRIDES, f"runs_dir={runs}", "name=tiny"])
    return train(cfg)


@pytest.fixture(scope="session")
def parser(trained):
    """The torch backend, whose model the tests can reach (`parser.model`)."""
    from nlu.parser import Parser

    return Parser.load(trained.model_dir, backend="torch")


def split_floats(value, floats):
    """The value with every float replaced by None; the floats appended to `floats`."""
    if isinstance(value, float):
        floats.append(value)
        return None
    if isinstance(value, dict):
        return {k: split_floats(v, floats) for k, v in value.items()}
    if isinstance(value, list):
        return [split_floats(v, floats) for v in value]
    return value


def assert_same_parses(left, right):
    """Same labels, spans and ranking order; probabilities equal up to float noise."""
    left_floats, right_floats = [], []
    assert split_floats(left, left_floats) == split_floats(right, right_floats)
    assert left_floats == pytest.approx(right_floats, abs=1e-5)
