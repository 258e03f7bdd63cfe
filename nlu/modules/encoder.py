"""Recurrent encoders over padded batches; padding never reaches the recurrent states."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNN_CLASSES = {"lstm": nn.LSTM}


class RNNEncoder(nn.Module):
    """A (bi)directional, possibly stacked recurrent encoder, packed by the mask."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 200,
        kind: Literal["lstm"] = "lstm",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in RNN_CLASSES:
            raise ValueError(f"unknown encoder {kind!r}; expected one of {sorted(RNN_CLASSES)}")
        if num_layers < 1:
            raise ValueError(f"expected num_layers >= 1, got {num_layers}")
        self.rnn = RNN_CLASSES[kind](
            input_dim,
            hidden_dim,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.bidirectional = bidirectional
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """inputs: (B, T, E), mask: (B, T) bool -> states (B, T, output_dim), zero on padding."""
        if bool(mask.all()):
            # No padding (always so for one sentence): packing would only cost time.
            return self.rnn(inputs)[0]
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.shape[1])
        return states
