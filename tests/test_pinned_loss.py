"""The losses of the first 30 training steps on the tiny fixture, pinned.

Anything that changes training dynamics (the loss, dropout, word dropout, the learning-rate
schedule, the sampler's order, initialisation, seeding) moves these numbers. If the change is
intended, regenerate the pins and paste them in:

    NLU_PRINT_PINNED=1 python -m pytest -q -s tests/test_pinned_loss.py
"""

from __future__ import annotations

import os

import pytest
import torch

from nlu.config import load_config
from nlu.training import module as training_module
from nlu.training.train import train
from tests.conftest import TINY_OVERRIDES

# 20 training utterances in batches of 4: 5 steps an epoch, 6 epochs.
STEPS = 30
OVERRIDES = [
    *TINY_OVERRIDES,
    # Dropout and word dropout on (every random draw of a training step), and the loss and
    # learning-rate options of the shipped recipe (configs/atis_bilstm_crf.yaml).
    "model.dropout=0.5",
    "model.slot_intent_dim=8",
    "model.intent_weight=2.0",
    "model.intent_label_smoothing=0.1",
    "train.word_dropout=0.05",
    "train.rare_word_unk=0.25",
    "train.lr_schedule=cosine",
    f"train.max_epochs={STEPS // 5}",
    f"train.patience={STEPS // 5}",
    "train.num_threads=1",
    "train.seed=1",
]

# Measured with torch 2.13.0 on CPU, one thread; regenerate as the module docstring says.
# fmt: off
PINNED = [
    5.809254, 5.813778, 5.887590, 5.329890, 4.779748,
    4.454644, 4.374167, 4.600219, 4.798676, 3.499907,
    4.516240, 4.219122, 3.950544, 3.257240, 3.710673,
    3.847176, 3.399897, 3.663736, 4.289704, 4.475809,
    3.588089, 3.939165, 4.161642, 4.107743, 2.923400,
    2.951555, 4.226073, 3.334101, 4.323604, 3.816469,
]
# fmt: on


@pytest.fixture
def one_thread():
    """`train.num_threads` sets torch's threads for the whole process: give them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def pinned_source(losses: list[float]) -> str:
    """`losses` as the Python source of PINNED, one epoch a row."""
    epochs = [losses[i : i + 5] for i in range(0, len(losses), 5)]
    rows = "".join("    " + ", ".join(f"{loss:.6f}" for loss in epoch) + ",\n" for epoch in epochs)
    return f"PINNED = [\n{rows}]"


def test_first_training_steps_lose_the_pinned_amounts(tmp_path, monkeypatch, one_thread):
    losses = []
    original = training_module.NLUModule.training_step

    def recording_step(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(training_module.NLUModule, "training_step", recording_step)
    train(load_config(None, [*OVERRIDES, f"runs_dir={tmp_path}", "name=pinned"]))
    if os.environ.get("NLU_PRINT_PINNED"):
        print(pinned_source(losses))
    assert len(losses) == STEPS
    torch.testing.assert_close(losses, PINNED, rtol=0.0, atol=1e-4)
