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


class AttentionBranch(nn.Module):
    """Self-attention over the token embeddings, beside the recurrent encoder (Stack-
    Propagation's): project each embedding to `dim`, let every token attend to the others (one
    head, padding masked as keys), and hand back (B, T, dim), zero on padding, for the model to
    concatenate to the encoder's states. It sees the whole sentence at once where the encoder
    reads it step by step."""

    def __init__(self, input_dim: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, dim)
        self.attention = nn.MultiheadAttention(dim, 1, dropout=dropout, batch_first=True)
        self.output_dim = dim

    def forward(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """embedded: (B, T, E), mask: (B, T) bool -> (B, T, dim)."""
        x = self.proj(embedded)
        attended, _ = self.attention(x, x, x, key_padding_mask=~mask, need_weights=False)
        return attended * mask.unsqueeze(2)
