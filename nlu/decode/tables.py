"""The scores a chain decoder reads: start, transition and end, with constraints applied.

Both tag heads decode through these tables: the CRF's are its learned scores plus the BIO
constraints, the softmax head's are the constraints alone (0 where a move is allowed, -inf
where it is forbidden). Inference works on them as NumPy arrays: a step over 120 tags is a few
microseconds of NumPy, where a torch call costs several times that.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class DecodeTables:
    """Start (K,), transition (K_prev, K) and end (K,) scores as float32 NumPy arrays, with the
    exponentiated forms that the forward-backward multiplies by; `wide()` is the float64 copy.
    Built from arrays or torch tensors."""

    def __init__(self, start: Any, trans: Any, end: Any) -> None:
        self.start = as_array(start).astype(np.float32)  # (K,)
        self.trans = as_array(trans).astype(np.float32)  # (K_prev, K)
        self.end = as_array(end).astype(np.float32)  # (K,)
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


def as_array(values: Any) -> np.ndarray:
    """A NumPy array of `values`: an array as it is; a torch tensor detached and on the CPU,
    in float32 if it is a 16-bit float (mixed-precision training), which NumPy cannot hold.
    Tensors are read by duck typing, so that this module never imports torch."""
    if isinstance(values, np.ndarray):
        return values
    values = values.detach().cpu()
    if values.is_floating_point() and values.element_size() < 4:
        values = values.float()
    return values.numpy()


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(x))) along `axis`, kept as a size-1 dimension; -inf where all are -inf."""
    # Where a whole row is -inf, a finite stand-in for its max keeps exp(x - top) at 0, not NaN
    # (only such rows have a -inf max).
    top = np.maximum(x.max(axis=axis, keepdims=True), -1e30)
    return top + np.log(np.add.reduce(np.exp(x - top), axis=axis, keepdims=True))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log of the softmax over the last axis."""
    return x - logsumexp(x, axis=-1)
