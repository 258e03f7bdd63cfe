"""Self-attention over encoder states, as a residual block on top of the recurrent encoder.

The recurrent encoder sees a token's context only through its states; a self-attention layer lets
each token look at every other token directly (e.g. "from" at the far end of the sentence when
tagging a city), which is what the strongest non-pretrained joint models add over a BiLSTM
(Qin et al. 2019, "A Stack-Propagation Framework ..."; Qin et al. 2021, "A Co-Interactive
Transformer ...").
"""

from __future__ import annotations

from torch import Tensor, nn

from nlu.modules.dropout import Dropout


class SelfAttentionBlock(nn.Module):
    """out = LayerNorm(h + Dropout(MultiHeadAttention(h, h, h))), padding masked as keys."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"encoder output size {dim} is not divisible by {num_heads} heads")
        self.attention = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """states: (B, T, H), mask: (B, T) bool -> (B, T, H)."""
        attended, _ = self.attention(
            states, states, states, key_padding_mask=~mask, need_weights=False
        )  # (B, T, H)
        return self.norm(states + self.dropout(attended))
