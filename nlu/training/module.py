"""Lightning module that trains a `JointModel` and scores it on the dev split each epoch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from nlu.eval.metrics import score, slot_score
from nlu.features import Batch
from nlu.model import JointModel
from nlu.vocab import UNK_ID


def rare_word_probs(counts: list[int], alpha: float) -> torch.Tensor | None:
    """Per word id, alpha / (alpha + count): how often to hide it behind UNK (None if alpha is 0).

    Words never seen in training (the specials, count 0) are never replaced.
    """
    if alpha <= 0:
        return None
    c = torch.tensor(counts, dtype=torch.float)
    return torch.where(c > 0, alpha / (alpha + c), torch.zeros_like(c))


class NLUModule(pl.LightningModule):
    """Wraps a plain `JointModel`; the model knows nothing about Lightning."""

    def __init__(
        self,
        model: JointModel,
        tag_names: list[str],
        intent_names: list[str],
        lr: float = 2e-3,
        weight_decay: float = 0.01,
        word_dropout: float = 0.0,
        unk_probs: torch.Tensor | None = None,
        lr_schedule: str = "constant",
        lr_final: float = 0.05,
        ema_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.seed = seed
        self.model = model
        self.tag_names = tag_names
        self.intent_names = intent_names
        self.lr = lr
        self.weight_decay = weight_decay
        self.word_dropout = word_dropout
        # Per word id: the probability of hiding that word behind UNK in a training batch, word
        # dropout included. A buffer, so that it follows the model to its device.
        if unk_probs is not None and word_dropout > 0:
            unk_probs = torch.clamp(unk_probs + word_dropout, max=1.0)
        self.register_buffer("unk_probs", unk_probs, persistent=False)
        self.lr_schedule = lr_schedule
        self.lr_final = lr_final
        self.ema_decay = ema_decay
        self._ema: list[torch.Tensor] | None = None  # moving average of the parameters
        self._raw: list[torch.Tensor] | None = None  # training weights while EMA ones are in
        self._counts = torch.zeros(6, dtype=torch.long)
        # This epoch's training sums: loss, slot and intent loss (each times the batch size),
        # examples; gradient norm, clipped steps, steps. On the model's device: no sync a step.
        self.register_buffer("_train_sums", torch.zeros(7, dtype=torch.float64), persistent=False)

    def forward(self, batch: Batch):
        return self.model.forward_batch(batch)

    def _common_step(self, batch: Batch, stage: str) -> torch.Tensor:
        output = self.model.forward_batch(batch)
        losses = self.model.loss(output, batch.tag_ids, batch.intent_ids)
        size = batch.word_ids.shape[0]
        if stage == "train":
            # Summed here and logged once an epoch (on_validation_epoch_end): Lightning's
            # self.log walks its whole result collection at every call, a tenth of a CPU step.
            stats = torch.stack([losses.total, losses.slot, losses.intent]).detach()
            self._train_sums[:4] += torch.cat([stats * size, stats.new_ones(1) * size])
            if self._progress_bar:
                self.log("loss", losses.total, prog_bar=True, logger=False, batch_size=size)
            return losses.total
        for name, value in (("loss", losses.total), ("slot_loss", losses.slot),
                            ("intent_loss", losses.intent)):  # fmt: skip
            # Under DDP every process scores all of dev: the same means everywhere.
            self.log(f"val_{name}", value, batch_size=size, on_epoch=True, prog_bar=name == "loss")
        self._accumulate(batch, output)
        return losses.total

    @property
    def _progress_bar(self) -> bool:
        return self._trainer is not None and self.trainer.progress_bar_callback is not None

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # The step's random draws (dropout, word dropout) come from a stream seeded by the run's
        # seed, this process's rank and the step, not from wherever the global stream stands:
        # a resumed run draws what the uninterrupted run did, whatever Lightning and the data
        # loaders drew in between, and DDP processes draw different masks.
        torch.manual_seed(step_seed(self.seed, self.global_rank, self.global_step))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # Unknown words at test time (new city names, airport codes) must be read from their
        # characters and context: hiding some training words teaches the model to do that.
        if self.unk_probs is not None or self.word_dropout > 0:
            probs = (
                self.unk_probs[batch.word_ids] if self.unk_probs is not None else self.word_dropout
            )
            drop = (torch.rand_like(batch.word_ids, dtype=torch.float) < probs) & batch.mask
            batch.word_ids = batch.word_ids.masked_fill(drop, UNK_ID)
        return self._common_step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def _accumulate(self, batch: Batch, output) -> None:
        paths = self.model.decode(output)
        pred_tags = [[self.tag_names[k] for k in path] for path in paths]
        pred_intents = [self.intent_names[k] for k in output.intent_logits.argmax(dim=-1).tolist()]
        report = score(batch.gold_tags, batch.gold_intents, pred_tags, pred_intents)
        self._counts += torch.tensor(
            [
                report.slot.correct,
                report.slot.predicted,
                report.slot.support,
                report.intent_correct,
                report.sentence_correct,
                report.num_examples,
            ]
        )

    def on_validation_epoch_end(self) -> None:
        # Every DDP process has scored the whole dev split (see NLUDataModule._loader).
        correct, predicted, gold, intent_ok, sentence_ok, n = self._counts.tolist()
        metrics = {
            "val_slot_f1": slot_score(correct, predicted, gold).f1,
            "val_intent_accuracy": 100 * intent_ok / max(n, 1),
            "val_sentence_accuracy": 100 * sentence_ok / max(n, 1),
        }
        if self.trainer.state.fn == "fit":  # the epoch's training means, in dev's log row
            metrics.update(self._train_means())
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name.startswith("val_"), sync_dist=False,
                     rank_zero_only=False)  # fmt: skip

    def _train_means(self) -> dict[str, float]:
        """Means over the epoch's training batches of every process (examples weigh the
        losses, steps the gradient figures)."""
        sums = self._train_sums
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums.clone(), reduce_op="sum")
        loss, slot, intent, examples, norm, clipped, steps = sums.tolist()
        examples, steps = max(examples, 1.0), max(steps, 1.0)
        return {
            "train_loss_epoch": loss / examples,
            "train_slot_loss": slot / examples,
            "train_intent_loss": intent / examples,
            # Lightning clips right after on_before_optimizer_step, where these are measured:
            # the CSV log shows if gradient_clip is a rare safety net or a constant brake.
            "train_grad_norm": norm / steps,
            "train_grad_clipped": clipped / steps,
        }

    # Exponential moving average of the weights: updated after every step, swapped in for
    # validation (so early stopping and the exported model see it) and out again for training.
    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema_decay <= 0:
            return
        params = [p.detach() for p in self.model.parameters()]
        if self._ema is None:
            self._ema = [p.clone() for p in params]
        else:
            torch._foreach_lerp_(self._ema, params, 1.0 - self.ema_decay)

    def on_before_optimizer_step(self, optimizer) -> None:
        norm, clipped = gradient_stats(
            [p.grad for p in self.parameters() if p.grad is not None],
            self.trainer.gradient_clip_val,
            self.trainer.gradient_clip_algorithm or "norm",  # a str enum
        )
        self._train_sums[4:] += torch.stack([norm, clipped, torch.ones_like(norm)])

    def on_validation_epoch_start(self) -> None:
        self._counts = torch.zeros(6, dtype=torch.long)
        if self._ema is not None and self._raw is None:
            params = list(self.model.parameters())
            self._raw = [p.detach().clone() for p in params]
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in params], self._ema)

    def on_train_epoch_start(self) -> None:
        self._train_sums.zero_()
        self._restore_training_weights()

    def on_fit_end(self) -> None:
        self._restore_training_weights()

    def _restore_training_weights(self) -> None:
        if self._raw is not None:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.model.parameters()], self._raw)
            self._raw = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What a resumed run needs beyond the weights, optimizer and schedule that Lightning
        # saves: the moving average with the training weights it stands in for. (No random
        # state: every step seeds its own, see on_train_batch_start.)
        checkpoint["nlu"] = {"ema": self._ema, "raw": self._raw}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("nlu", {})
        self._ema, self._raw = saved.get("ema"), saved.get("raw")

    def configure_optimizers(self):
        optimizer = adamw(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        total = max(1, self.trainer.estimated_stepping_batches)
        floor = self.lr_final

        def factor(step: int) -> float:
            progress = min(step / total, 1.0)
            if self.lr_schedule == "linear":
                return 1.0 - (1.0 - floor) * progress
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def adamw(params, **options) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where the device has one (CPU since torch 2.4: 0.45
    against 1.3 ms a step for the default model); the same update either way."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **options)
    except RuntimeError:  # an older torch, or a device without the fused kernel
        return torch.optim.AdamW(params, **options)


def gradient_stats(
    grads: list[torch.Tensor], clip: float | None, algorithm: str = "norm"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total 2-norm of `grads`, 1.0 if clipping at `clip` by `algorithm` changes them else 0.0).

    Tensors, not floats, so logging them every step never waits for the device.
    """
    if not grads:
        zero = torch.zeros(())
        return zero, zero
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if not clip:
        return norm, torch.zeros_like(norm)
    if algorithm == "value":
        largest = torch.stack([g.abs().max() for g in grads]).max()
        return norm, (largest > clip).float()
    return norm, (norm > clip).float()


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for one training step of one process."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> 1)
