"""Attention parts around the recurrent encoder: a self-attention block over its states, a
self-attention branch beside it, attention to label embeddings, and an intent <-> slot
co-interaction block.

The recurrent encoder sees a token's context only through its states; a self-attention layer lets
each token look at every other token directly (e.g. "from" at the far end of the sentence when
tagging a city), which is what the strongest non-pretrained joint models add over a BiLSTM
(Qin et al. 2019, "A Stack-Propagation Framework ..."; Qin et al. 2021, "A Co-Interactive
Transformer ...").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlu.modules.dropout import Dropout


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with `num_heads` heads, padding masked as keys.

    The computation of `nn.MultiheadAttention` (batch first, no extra keys), written out: its
    tracer-visible shapes stay symbolic, so the model exports to ONNX with any batch size and
    length (PyTorch's module bakes the traced sizes into the graph), and its output projection
    is an ordinary `nn.Linear` that int8 quantization can convert. The parameters have the names
    and initialisation of PyTorch's module, so that models saved with it load, and training
    draws the same random numbers.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention size {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))  # query, key, value
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        """query: (B, Tq, D) attends to memory: (B, T, D) (the same tensor for
        self-attention); mask: (B, T) bool, True on real tokens -> (B, Tq, D)."""
        if query is memory:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.in_proj_weight.split([query.shape[-1], 2 * query.shape[-1]])
            b_q, b_kv = self.in_proj_bias.split([query.shape[-1], 2 * query.shape[-1]])
            q = F.linear(query, w_q, b_q)
            k, v = F.linear(memory, w_kv, b_kv).chunk(2, dim=-1)
        batch, length, dim = q.shape
        heads = self.num_heads

        def split(x: Tensor) -> Tensor:  # (B, T, D) -> (B, heads, T, D / heads)
            return x.reshape(batch, -1, heads, dim // heads).transpose(1, 2)

        scores = split(q) @ split(k).transpose(2, 3) / math.sqrt(dim // heads)  # (B, h, Tq, T)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout)
        attended = (weights @ split(v)).transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(attended)


class SelfAttentionBlock(nn.Module):
    """out = LayerNorm(h + Dropout(MultiHeadAttention(h, h, h))), padding masked as keys."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"encoder output size {dim} is not divisible by {num_heads} heads")
        self.attention = MultiHeadAttention(dim, num_heads, dropout)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """states: (B, T, H), mask: (B, T) bool -> (B, T, H)."""
        attended = self.attention(states, states, mask)  # (B, T, H)
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
        self.attention = MultiHeadAttention(dim, 1, dropout)
        self.output_dim = dim

    def forward(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """embedded: (B, T, E), mask: (B, T) bool -> (B, T, dim)."""
        x = self.proj(embedded)
        return self.attention(x, x, mask) * mask.unsqueeze(2)


class LabelAttention(nn.Module):
    """Tokens attending to label embeddings: each token's states query one learned vector per
    label (slot tag, or intent), and the attention-weighted mix of those vectors is what the
    token hands on: a soft guess of its label, in the label space, before the classifier
    decides. (The label-aware layers of DCA-Net and LAN.) Output (B, T, dim)."""

    def __init__(self, dim: int, num_labels: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.labels = nn.Parameter(torch.randn(num_labels, dim) / math.sqrt(dim))  # (K, dim)
        self.output_dim = dim

    def forward(self, states: Tensor) -> Tensor:
        """states: (B, T, dim) -> (B, T, dim)."""
        scores = self.query(states) @ self.labels.T / math.sqrt(self.output_dim)  # (B, T, K)
        return scores.softmax(dim=-1) @ self.labels


class CoInteraction(nn.Module):
    """An intent <-> slot co-interaction block (after DCA-Net, Qin et al. 2021).

    The encoder's states are projected into a slot stream and an intent stream of size `dim`;
    each adds what its tokens read from its own labels (`LabelAttention` over the slot tags and
    over the intents); then each stream attends to the other (one head, padding masked as
    keys), with a residual connection and layer norm, so the tags see the intent evidence of
    every token and the intent sees where the slots are. Returns (slot, intent) states,
    (B, T, dim) each, for the tag head and the intent head.
    """

    def __init__(
        self, input_dim: int, dim: int, num_tags: int, num_intents: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.slot_proj = nn.Linear(input_dim, dim)
        self.intent_proj = nn.Linear(input_dim, dim)
        self.slot_labels = LabelAttention(dim, num_tags)
        self.intent_labels = LabelAttention(dim, num_intents)
        self.slot_reads = MultiHeadAttention(dim, 1, dropout)
        self.intent_reads = MultiHeadAttention(dim, 1, dropout)
        self.slot_norm = nn.LayerNorm(dim)
        self.intent_norm = nn.LayerNorm(dim)
        self.output_dim = dim

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """states: (B, T, H), mask: (B, T) bool -> slot and intent states, (B, T, dim) each."""
        slot = self.slot_proj(states)
        slot = slot + self.slot_labels(slot)
        intent = self.intent_proj(states)
        intent = intent + self.intent_labels(intent)
        from_intent = self.slot_reads(slot, intent, mask)
        from_slot = self.intent_reads(intent, slot, mask)
        return self.slot_norm(slot + from_intent), self.intent_norm(intent + from_slot)
