"""Token embeddings: words (a lookup or one-hot), characters (CNN or BiLSTM), letter trigrams,
word shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from nlu.modules.encoder import DirectionSplit, by_direction
from nlu.modules.vectors import PretrainedVectors
from nlu.vocab import PAD, PAD_ID

# Letter-trigram hashing: plain arithmetic on character ids, so it is the same in every process
# (Python's str hash is salted per process). A value below _HASH_PRIME times _HASH_BASE fits
# in int64. Changing either constant changes the features of every saved word-hash model.
_HASH_PRIME = 2_147_483_647  # 2**31 - 1
_HASH_BASE = 1_000_003


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


class CharLSTM(nn.Module):
    """Character embeddings -> BiLSTM over each word -> its final forward and backward states."""

    def __init__(self, num_chars: int, char_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden_dim
        self._split = DirectionSplit()

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids: (B, T, L) -> (B, T, 2 * hidden_dim); padding tokens get zeros."""
        batch, seq_len, word_len = char_ids.shape
        flat = char_ids.reshape(batch * seq_len, word_len)
        chars = flat != 0  # (B*T, L); padding tokens have no characters
        split = self._split(self.lstm)
        if split is None:  # a quantized LSTM
            return self._packed(flat, chars).reshape(batch, seq_len, -1)
        # Each direction on the padded words as they are (see `by_direction`): the forward
        # state after a word's last character, and the backward state after its first.
        states = by_direction(split, self.embedding(flat), chars)  # (B*T, L, 2H)
        half = states.shape[2] // 2
        last = (chars.sum(dim=1) - 1).clamp(min=0)  # (B*T,)
        forward = states.gather(1, last.view(-1, 1, 1).expand(-1, 1, half))[:, 0]  # (B*T, H)
        return torch.cat([forward, states[:, 0, half:]], dim=1).reshape(batch, seq_len, -1)

    def _packed(self, flat: Tensor, chars: Tensor) -> Tensor:
        """The final states of the real words through the fused module, packed: (B*T, 2H)."""
        lengths = chars.sum(dim=1)  # (B*T,)
        real = lengths > 0  # packing needs length >= 1
        out = self.embedding.weight.new_zeros(flat.shape[0], self.output_dim)  # (B*T, 2H)
        if real.any():
            x = self.embedding(flat[real])  # (N, L, char_dim)
            packed = pack_padded_sequence(
                x, lengths[real].cpu(), batch_first=True, enforce_sorted=False
            )
            _, (h, _) = self.lstm(packed)  # h: (2, N, H), forward then backward
            out = out.index_put((real.nonzero().squeeze(1),), torch.cat([h[0], h[1]], dim=-1))
        return out


def trigram_buckets(char_ids: Tensor, num_buckets: int) -> Tensor:
    """Hash bucket (1..num_buckets) of each letter trigram of each word; 0 where there is none.

    Each word is framed by a boundary mark, the PAD id 0 that never occurs inside a word, so that
    "boston" gives #bo bos ost sto ton on#: n trigrams for n characters, the i-th starting at
    character i - 1. Unseen words and typos share most trigrams with the words they resemble.

    char_ids: (B, T, L) -> (B, T, L).
    """
    framed = F.pad(char_ids, (1, 1))  # (B, T, L + 2): a 0 before and after every word
    hashed = framed[..., :-2]  # (B, T, L)
    for following in (framed[..., 1:-1], framed[..., 2:]):
        hashed = (hashed * _HASH_BASE + following) % _HASH_PRIME  # (B, T, L)
    buckets = 1 + hashed % num_buckets  # (B, T, L)
    lengths = (char_ids != 0).sum(dim=-1, keepdim=True)  # (B, T, 1)
    starts = torch.arange(char_ids.shape[-1], device=char_ids.device)  # (L,)
    return buckets.masked_fill(starts >= lengths, 0)


class WordHash(nn.Module):
    """Mean embedding of a word's hashed letter trigrams: defined for any spelling."""

    def __init__(self, num_buckets: int, dim: int) -> None:
        super().__init__()
        if num_buckets < 1:
            raise ValueError(f"expected at least 1 word hash bucket, found {num_buckets}")
        self.num_buckets = num_buckets
        # Row 0 is "no trigram": it stays zero and is left out of the mean. (An `EmbeddingBag`
        # computes the same mean, but does not export to ONNX with a padding row.)
        self.embedding = nn.Embedding(num_buckets + 1, dim, padding_idx=0)
        self.output_dim = dim

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids: (B, T, L) -> (B, T, dim); padding tokens get zeros."""
        buckets = trigram_buckets(char_ids, self.num_buckets)  # (B, T, L)
        count = (buckets != 0).sum(dim=-1, keepdim=True).clamp(min=1)  # (B, T, 1)
        return self.embedding(buckets).sum(dim=2) / count


# Character classes of the word shape; 0 is padding. Letters without case (Han, kana) are
# "other letter".
_LOWER, _UPPER, _DIGIT, _OTHER_LETTER, _SYMBOL = 1, 2, 3, 4, 5
_SHAPE_CLASSES = 6
_SHAPE_RUNS = 4  # the first runs a shape spells out; longer shapes keep a "more" flag
_SPELLED_CODES = _SHAPE_CLASSES**_SHAPE_RUNS  # codes below this spell the runs out


def char_classes(chars: Sequence[str]) -> Tensor:
    """The shape class of each character id of a vocabulary (PAD 0, UNK a symbol)."""

    def kind(c: str) -> int:
        if len(c) != 1:  # the specials
            return 0 if c == PAD else _SYMBOL
        if c.isdigit():
            return _DIGIT
        if c.isalpha():
            return _LOWER if c.islower() else _UPPER if c.isupper() else _OTHER_LETTER
        return _SYMBOL

    return torch.tensor([kind(c) for c in chars], dtype=torch.long)


class WordShape(nn.Module):
    """An embedding of each word's shape: its characters' classes (lower, upper, digit, other
    letter, symbol) with runs collapsed, "6:30" -> d:d, "i'd" -> x'x, "r&b" -> x&x (symbols
    are one class), up to 4 runs and a flag for more. An unseen word of a known shape (a
    number, a time, a code) then looks like the words of that shape that training saw.

    Computed from the character ids with a table of their classes, so it needs no vocabulary
    of its own and is the same at training and parse time.
    """

    def __init__(self, chars: Sequence[str], dim: int) -> None:
        super().__init__()
        self.register_buffer("classes", char_classes(chars), persistent=False)  # (num_chars,)
        powers = _SHAPE_CLASSES ** torch.arange(_SHAPE_RUNS)
        self.register_buffer("powers", powers, persistent=False)  # (runs,)
        self.embedding = nn.Embedding(2 * _SPELLED_CODES, dim, padding_idx=0)
        self.output_dim = dim

    def codes(self, char_ids: Tensor) -> Tensor:
        """char_ids: (B, T, L) -> shape codes (B, T), 0 for padding tokens."""
        kinds = self.classes[char_ids]  # (B, T, L)
        previous = F.pad(kinds, (1, 0))[..., :-1]
        starts = (kinds != previous) & (kinds != 0)  # (B, T, L): where a run begins
        runs = starts.long().cumsum(dim=-1)  # (B, T, L): how many runs have begun
        spelled = starts & (runs <= _SHAPE_RUNS)
        run = (runs - 1).clamp(min=0, max=_SHAPE_RUNS - 1)  # (B, T, L)
        code = (kinds * self.powers[run] * spelled).sum(dim=-1)  # (B, T)
        more = runs[..., -1] > _SHAPE_RUNS
        return code + more * _SPELLED_CODES

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids: (B, T, L) -> (B, T, dim); padding tokens get zeros."""
        return self.embedding(self.codes(char_ids))


class OneHot(nn.Module):
    """The 1-of-N vector of each word id: an ablation with no learned word representation.

    Made per batch, so the weights hold no (V, V) identity matrix. PAD gets zeros.
    """

    def __init__(self, num_words: int) -> None:
        super().__init__()
        self.output_dim = num_words

    def forward(self, word_ids: Tensor) -> Tensor:
        """word_ids: (B, T) -> (B, T, num_words)."""
        one_hot = F.one_hot(word_ids, self.output_dim).float()  # (B, T, V)
        return one_hot.masked_fill((word_ids == PAD_ID).unsqueeze(-1), 0.0)


def _word_features(num_words: int, word_dim: int, word_input: str) -> tuple[nn.Module | None, int]:
    if word_input == "one_hot":
        return OneHot(num_words), num_words
    if word_input != "embedding":
        raise ValueError(
            f"unknown word input {word_input!r}; expected one of ['embedding', 'one_hot']"
        )
    if word_dim == 0:
        return None, 0
    return nn.Embedding(num_words, word_dim, padding_idx=PAD_ID), word_dim


def _char_features(
    num_chars: int, char_dim: int, kind: str, filters: int, kernel: int, hidden: int
) -> CharCNN | CharLSTM | None:
    if kind not in ("cnn", "lstm"):
        raise ValueError(f"unknown char encoder {kind!r}; expected one of ['cnn', 'lstm']")
    if char_dim == 0 or num_chars == 0:
        return None
    if kind == "cnn":
        return CharCNN(num_chars, char_dim, filters, kernel)
    return CharLSTM(num_chars, char_dim, hidden)


class TokenEmbedding(nn.Module):
    """The token features that are on, concatenated: words, characters, letter trigrams, word
    shapes (which need `chars`, the character vocabulary's strings)."""

    def __init__(
        self,
        num_words: int,
        word_dim: int = 100,
        num_chars: int = 0,
        char_dim: int = 30,
        char_filters: int = 50,
        char_kernel: int = 3,
        word_input: Literal["embedding", "one_hot"] = "embedding",
        char_encoder: Literal["cnn", "lstm"] = "cnn",
        char_hidden: int = 25,
        word_hash_dim: int = 0,
        word_hash_buckets: int = 2**14,
        word_shape_dim: int = 0,
        chars: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.words, words_dim = _word_features(num_words, word_dim, word_input)
        self.chars = _char_features(
            num_chars, char_dim, char_encoder, char_filters, char_kernel, char_hidden
        )
        self.word_hash = WordHash(word_hash_buckets, word_hash_dim) if word_hash_dim > 0 else None
        self.word_shape = WordShape(chars, word_shape_dim) if word_shape_dim > 0 else None
        self.output_dim = words_dim + sum(
            part.output_dim
            for part in (self.chars, self.word_hash, self.word_shape)
            if part is not None
        )
        if self.output_dim == 0:
            raise ValueError(
                "expected at least one token feature (word_dim, char_dim, word_hash_dim or "
                "word_shape_dim > 0), found none"
            )

    def forward(self, word_ids: Tensor, char_ids: Tensor) -> Tensor:
        """word_ids: (B, T), char_ids: (B, T, L) -> (B, T, output_dim)."""
        features = []
        if self.words is not None:
            features.append(self.words(word_ids))  # (B, T, word_dim or V)
        if self.chars is not None:
            features.append(self.chars(char_ids))  # (B, T, chars.output_dim)
        if self.word_hash is not None:
            features.append(self.word_hash(char_ids))  # (B, T, word_hash_dim)
        if self.word_shape is not None:
            features.append(self.word_shape(char_ids))  # (B, T, word_shape_dim)
        return torch.cat(features, dim=-1)

    def load_pretrained(self, pretrained: PretrainedVectors, freeze: bool = False) -> None:
        """Copy the rows the vector file had into the word embedding.

        Words the file lacks keep their random initialisation. With `freeze`, the whole word
        embedding stops requiring gradients, so no optimizer step (weight decay included)
        changes it.
        """
        if not isinstance(self.words, nn.Embedding):
            found = "word_dim=0" if self.words is None else "word_input='one_hot'"
            raise ValueError(
                f"{pretrained.path}: expected a word embedding to load vectors into, found {found}"
            )
        weight = self.words.weight  # (V, word_dim)
        if pretrained.vectors.shape != weight.shape:
            raise ValueError(
                f"{pretrained.path}: expected vectors of shape {tuple(weight.shape)}, "
                f"found {tuple(pretrained.vectors.shape)}"
            )
        rows = pretrained.found.clone()  # (V,)
        rows[PAD_ID] = False  # PAD stays zero
        with torch.no_grad():
            weight[rows] = pretrained.vectors[rows].to(weight)
        weight.requires_grad_(not freeze)
