"""Token embeddings: a word lookup concatenated with a character CNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CharCNN(nn.Module):
    """Character embeddings -> 1-D convolution -> max over the characters of each word."""

    def __init__(self, num_chars: int, char_dim: int, num_filters: int, kernel_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, num_filters, kernel_size, padding=kernel_size // 2)
        self.output_dim = num_filters

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids: (B, T, L) -> (B, T, num_filters)."""
        batch, seq_len, word_len = char_ids.shape
        flat = char_ids.reshape(batch * seq_len, word_len)
        x = self.embedding(flat).transpose(1, 2)  # (B*T, char_dim, L)
        h = self.conv(x)  # (B*T, F, L)
        char_mask = (flat != 0).unsqueeze(1)  # (B*T, 1, L)
        h = h.masked_fill(~char_mask, float("-inf")).amax(dim=2)  # (B*T, F)
        # Padding tokens have no characters: their max is -inf, replace it by 0.
        h = h.masked_fill(~char_mask.any(dim=2), 0.0)
        return h.reshape(batch, seq_len, -1)


class TokenEmbedding(nn.Module):
    """Word embedding, optionally concatenated with character-CNN features."""

    def __init__(
        self,
        num_words: int,
        word_dim: int = 100,
        num_chars: int = 0,
        char_dim: int = 30,
        char_filters: int = 50,
        char_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.words = nn.Embedding(num_words, word_dim, padding_idx=0)
        self.chars = (
            CharCNN(num_chars, char_dim, char_filters, char_kernel)
            if char_dim > 0 and num_chars > 0
            else None
        )
        self.output_dim = word_dim + (self.chars.output_dim if self.chars is not None else 0)

    def forward(self, word_ids: Tensor, char_ids: Tensor) -> Tensor:
        """word_ids: (B, T), char_ids: (B, T, L) -> (B, T, output_dim)."""
        embedded = self.words(word_ids)
        if self.chars is None:
            return embedded
        return torch.cat([embedded, self.chars(char_ids)], dim=-1)
