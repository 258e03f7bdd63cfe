"""Dropout whose mask is drawn as uniform numbers compared to p.

On a CPU, torch draws dropout masks with `bernoulli_`, which on a (32, 15, 400) batch of
states takes about 2.4 ms forward and backward against 0.9 ms for a uniform draw compared to
p (torch 2.13, AVX-512): a tenth of a training step of the default BiLSTM-CRF. Elsewhere
(CUDA) torch's fused dropout is used. Same distribution, different random numbers.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _mask_scaled(x: Tensor, shape: tuple[int, ...], p: float) -> Tensor:
    """A keep-mask of `shape` (broadcast against x) as 0 or 1 / (1 - p)."""
    uniform = x.new_empty(shape).uniform_()
    return (uniform >= p) * (1.0 / (1.0 - p))


class Dropout(nn.Module):
    """`nn.Dropout`: zero each element with probability p in training, scale the rest."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"model.dropout: expected a value in [0, 1), found {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * _mask_scaled(x, x.shape, self.p)


class LockedDropout(Dropout):
    """Variational dropout: the same units are dropped at every time step of a sentence."""

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D)."""
        if not self.training or self.p == 0:
            return x
        return x * _mask_scaled(x, (x.shape[0], 1, x.shape[2]), self.p)
