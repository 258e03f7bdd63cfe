"""Lightning callbacks of a training run: the best epoch's weights, one line an epoch for a log,
and the checkpoint that lets a stopped run resume."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, Checkpoint

from nlu.files import write_text_atomic

CHECKPOINT = "last.ckpt"
CHECKPOINT_INFO = "last.json"  # the checkpoint's epoch, readable without unpickling it


class KeepBest(Callback):
    """Keep a CPU copy of the weights of the best dev epoch; it travels in the checkpoint.

    On a tie the later epoch wins: it has trained longer for the same dev score.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self.best is None or value >= self.best:
            self.best, self.best_epoch = value, trainer.current_epoch
            self.state = {
                k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()
            }

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_epoch = state_dict["best"], state_dict["best_epoch"]
        self.state = state_dict["state"]


class EpochLine(Callback):
    """One line an epoch, for output that is not a terminal (CI, a cluster job, `nohup`), where
    a progress bar would fill the log: training loss, dev scores, seconds, and the best epoch
    so far (from `keep_best`, which must come before this callback). Rank 0 alone writes."""

    def __init__(self, keep_best: KeepBest, stream: TextIO | None = None) -> None:
        self.keep_best = keep_best
        self.stream = stream
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        best = self.keep_best
        line = (
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
            f"  train loss {m.get('train_loss_epoch', float('nan')):.4f}"
            f"  dev slot F1 {m['val_slot_f1']:.2f}  intent {m['val_intent_accuracy']:.2f}"
            f"  sentence {m['val_sentence_accuracy']:.2f}"
            f"  {time.perf_counter() - self.started:.1f} s"
            f"  best: epoch {best.best_epoch + 1} ({best.monitor.removeprefix('val_')} "
            f"{best.best:.2f})"
        )
        print(line, file=self.stream or sys.stderr, flush=True)


class EpochCheckpoint(Checkpoint):
    """Write `folder/last.ckpt` at the end of every epoch, after dev scoring, so that a run
    stopped at any point resumes from its last whole epoch (`nlu train --resume`).

    The file is Lightning's checkpoint (weights, optimizer, schedule, loop progress, the
    callbacks' state, and what `NLUModule.on_save_checkpoint` adds), written under a temporary
    name and renamed into place; `last.json` beside it names its epoch. Lightning runs
    `Checkpoint` callbacks after the others, so the checkpoint holds this epoch's early-stopping
    and best-epoch decisions.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        path = self.folder / CHECKPOINT
        tmp = self.folder / f".{CHECKPOINT}.tmp"
        if trainer.is_global_zero:
            self.folder.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)  # every process calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, path)
            info = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
            write_text_atomic(self.folder / CHECKPOINT_INFO, json.dumps(info) + "\n")


def checkpoint_epoch(folder: Path) -> int | None:
    """The epoch (0-based) that `folder/last.ckpt` ends, or None if there is none."""
    try:
        return int(json.loads((folder / CHECKPOINT_INFO).read_text())["epoch"])
    except (FileNotFoundError, KeyError, ValueError):
        return None
