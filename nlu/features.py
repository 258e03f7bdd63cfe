"""The one featurization path: words -> ids, shared by training, evaluation and the Parser.

`featurize` needs no torch (the ONNX runtime calls it); the batches are torch tensors, and
torch loads when the first one is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs

if TYPE_CHECKING:
    import torch
    from torch import Tensor

MAX_WORD_CHARS = 20  # longer words keep their first 20 characters for the character CNN
IGNORE_INTENT = -100  # an intent the model cannot predict (unseen in training): no loss


@dataclass(frozen=True)
class Features:
    """Ids of one utterance; `tag_ids`/`intent_id` only when it is annotated."""

    word_ids: list[int]
    char_ids: list[list[int]]
    tag_ids: list[int] | None = None
    intent_id: int | None = None


def featurize(
    words: Sequence[str],
    vocabs: Vocabs,
    tokenizer: Tokenizer,
    tags: Sequence[str] | None = None,
    intent: str | None = None,
) -> Features:
    """Ids of words as written (normalized here), and of their tags and intent if given.

    Tags unseen in training become "O" (id 0) and an unseen intent is ignored by the loss; the
    scores are computed on the strings, where they count as errors.
    """
    normalized = tokenizer.normalize_all(words)
    tag_ids = None
    if tags is not None:
        tag_ids = [vocabs.tags.stoi.get(t, 0) for t in tags]
    intent_id = None
    if intent is not None:
        intent_id = vocabs.intents.stoi.get(intent, IGNORE_INTENT)
    return Features(
        word_ids=vocabs.words.lookup(normalized),
        char_ids=[vocabs.chars.lookup(w[:MAX_WORD_CHARS]) for w in normalized],
        tag_ids=tag_ids,
        intent_id=intent_id,
    )


@dataclass
class Batch:
    """Padded ids of several utterances. Not frozen: Lightning moves it between devices."""

    word_ids: Tensor  # (B, T)
    char_ids: Tensor  # (B, T, L)
    mask: Tensor  # (B, T) bool, True on real tokens; padding is on the right
    tag_ids: Tensor | None = None  # (B, T)
    intent_ids: Tensor | None = None  # (B,)
    gold_tags: list[list[str]] | None = field(default=None)  # strings, for scoring
    gold_intents: list[str] | None = field(default=None)

    def to(self, device: torch.device) -> Batch:
        """This batch with its tensors on `device` (moved in place; the strings stay)."""
        for name in ("word_ids", "char_ids", "mask", "tag_ids", "intent_ids"):
            tensor = getattr(self, name)
            if tensor is not None and tensor.device != device:
                setattr(self, name, tensor.to(device, non_blocking=True))
        return self


def _pad(rows: Sequence[Sequence[int]], length: int) -> list[list[int]]:
    return [list(row) + [0] * (length - len(row)) for row in rows]


def length_mask(lengths: Sequence[int], width: int) -> Tensor:
    """(B, width) bool, True on the first `lengths[b]` positions of row b."""
    import torch

    if not lengths or min(lengths) == width:  # one sentence, or equal lengths: no padding
        return torch.ones(len(lengths), width, dtype=torch.bool)
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def collate(items: Sequence[Features]) -> Batch:
    """Pad a list of features into one batch (right padding with id 0)."""
    import torch

    if not items:
        raise ValueError("cannot collate an empty batch")
    max_len = max(1, max(len(f.word_ids) for f in items))
    max_chars = max(1, max((len(c) for f in items for c in f.char_ids), default=1))
    # Pad in Python and convert once: one tensor call per batch, not one per word.
    word_ids = torch.tensor(_pad([f.word_ids for f in items], max_len), dtype=torch.long)
    empty_word = [0] * max_chars
    char_ids = torch.tensor(
        [_pad(f.char_ids, max_chars) + [empty_word] * (max_len - len(f.char_ids)) for f in items],
        dtype=torch.long,
    )
    batch = Batch(word_ids, char_ids, length_mask([len(f.word_ids) for f in items], max_len))
    if all(f.tag_ids is not None for f in items):
        batch.tag_ids = torch.tensor(_pad([f.tag_ids for f in items], max_len), dtype=torch.long)
    if all(f.intent_id is not None for f in items):
        batch.intent_ids = torch.tensor([f.intent_id for f in items], dtype=torch.long)
    return batch
