"""The scores a chain decoder reads: start, transition and end, with constraints applied.

Both tag heads decode through these tables: the CRF's are its learned scores plus the BIO
constraints, the softmax head's are the constraints alone (0 where a move is allowed, -inf
where it is forbidden). Inference works on them as NumPy arrays: a step over 120 tags is a few
microseconds of NumPy, where a torch call costs several times that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Constraints:
    """Which tag may follow which, and which may start a sentence (see `nlu.tags`)."""

    allowed: list[tuple[int, int]]
    starts: list[int]

    def biases(self, num_tags: int) -> tuple[Tensor, Tensor]:
        """(start (K,), transitions (K, K)) with 0 where allowed and -inf where forbidden."""
        start = torch.full((num_tags,), float("-inf"))
        start[self.starts] = 0.0
        trans = torch.full((num_tags, num_tags), float("-inf"))
        if self.allowed:
            i, j = zip(*self.allowed)
            trans[list(i), list(j)] = 0.0
        return start, trans


class DecodeTables:
    """Start (K,), transition (K_prev, K) and end (K,) scores as float32 NumPy arrays, with the
    exponentiated forms that the forward-backward multiplies by; `wide()` is the float64 copy."""

    def __init__(self, start: Tensor, trans: Tensor, end: Tensor) -> None:
        self.start = start.detach().float().cpu().numpy()  # (K,)
        self.trans = trans.detach().float().cpu().numpy()  # (K_prev, K)
        self.end = end.detach().float().cpu().numpy()  # (K,)
        self.into = np.ascontiguousarray(self.trans.T)  # (K, K_prev)
        # The largest transition score: exp(trans - shift) never overflows, and forbidden
        # moves are exactly 0.
        self.shift = float(self.trans.max())
        self.exp_trans = np.exp(self.trans - self.shift)  # (K_prev, K)
        self.exp_trans_t = np.ascontiguousarray(self.exp_trans.T)  # (K, K_prev)
        self.end_scale = float(logsumexp(self.end, axis=0)[0])  # log sum_k exp(end[k])
        self.exp_end = np.exp(self.end - self.end_scale)  # (K,), sums to 1

    def wide(self) -> DecodeTables:
        wide = object.__new__(DecodeTables)
        for name, value in vars(self).items():
            is_array = isinstance(value, np.ndarray)
            setattr(wide, name, value.astype(np.float64) if is_array else value)
        return wide


class DecodesWithTables(nn.Module):
    """A module that decodes with `DecodeTables`: built on every call by `build_tables` while
    the weights change (training, validation), or once by `freeze()` for inference, so that
    tagging one utterance does not redo them; training mode drops the frozen ones."""

    def __init__(self) -> None:
        super().__init__()
        self._frozen: DecodeTables | None = None

    def build_tables(self) -> DecodeTables:
        raise NotImplementedError

    def tables(self) -> DecodeTables:
        return self._frozen if self._frozen is not None else self.build_tables()

    def freeze(self) -> None:
        self._frozen = self.build_tables()

    def train(self, mode: bool = True) -> DecodesWithTables:
        if mode:
            self._frozen = None
        return super().train(mode)


def as_array(scores: Tensor) -> np.ndarray:
    """A detached CPU NumPy view of `scores`; bfloat16 and float16 (mixed-precision training)
    become float32, which NumPy can hold."""
    scores = scores.detach()
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    return scores.cpu().numpy()


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(x))) along `axis`, kept as a size-1 dimension; -inf where all are -inf."""
    top = x.max(axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    return safe + np.log(np.exp(x - safe).sum(axis=axis, keepdims=True))
