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
    5.838174, 5.806842, 5.967653, 5.361529, 4.769834,
    4.815981, 4.339515, 4.712650, 4.698996, 3.811813,
    4.768036, 4.460914, 4.022375, 3.367786, 3.534799,
    3.847208, 3.329465, 3.225914, 4.388968, 4.610088,
    3.501499, 4.411547, 4.607394, 3.985385, 3.019479,
    3.079407, 4.366981, 3.396655, 4.344287, 3.767077,
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
