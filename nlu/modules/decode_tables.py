"""The torch side of the decode tables (`nlu.decode.tables`): BIO constraints as score
biases, and the module that keeps its tables while frozen."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nlu.decode.tables import DecodeTables


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
