"""Lightning callbacks of a training run."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class KeepBest(Callback):
    """Keep a CPU copy of the weights of the best dev epoch (no checkpoint files, no pickle).

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
