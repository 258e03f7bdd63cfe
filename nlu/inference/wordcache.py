"""Token-embedding rows of the words a Parser has seen, so that a word is embedded only once.

A token's embedding (word vector, character CNN or BiLSTM, letter trigrams) depends only on its
normalized spelling once the model is frozen: no dropout, no context. Recomputing it on every
call cost about a quarter of a single-utterance parse and a third of batch tagging (the character
CNN and the per-character id lookups), while a chatbot sees the same few thousand words again and
again. `WordCache.embed` gathers cached rows into the (B, T, E) input of the encoder and computes
only the words it has not seen.

Inference only: after training steps the cached rows would be stale.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import Tensor

from nlu.features import collate, featurize, length_mask
from nlu.modules.embedding import TokenEmbedding
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs

DEFAULT_BUDGET_BYTES = 64 * 2**20  # the cache stops growing at this size; later words are
# still embedded, on every call, like before


class WordCache:
    """Embedding rows keyed by normalized spelling; safe to use from several threads.

    Row 0 is all zeros and stands for padding (the embedding of PAD is zero). Readers take no
    lock: a writer stores new rows in the table (a new, larger one when it must grow) and
    publishes the table before it publishes the rows' indices, so any index a reader finds is
    in the table it then reads.
    """

    def __init__(
        self,
        embedding: TokenEmbedding,
        vocabs: Vocabs,
        tokenizer: Tokenizer,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.embedding = embedding
        self.vocabs = vocabs
        self.tokenizer = tokenizer
        dim = embedding.output_dim
        weight = next(embedding.parameters(), None)
        self.dtype = weight.dtype if weight is not None else torch.float32
        self.max_words = max(1, budget_bytes // (dim * torch.finfo(self.dtype).bits // 8) - 1)
        with torch.inference_mode():
            self._table = torch.zeros(64, dim, dtype=self.dtype)  # (capacity, E); row 0 = padding
        self._size = 1
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many words are cached."""
        return len(self._rows)

    def embed(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """Embedded sentences (B, T, E) and their mask (B, T) bool, right-padded with zeros.

        `sentences` hold words as the tokenizer gave them (normalized here); an empty sentence
        has no real position and an all-zero row.
        """
        if not torch.is_inference_mode_enabled():
            # The Parser calls this in inference mode already; entering it again costs ~10 us.
            with torch.inference_mode():
                return self.embed(sentences)
        normalized = [self.tokenizer.normalize_all(words) for words in sentences]
        rows = self._rows
        distinct = dict.fromkeys(w for words in normalized for w in words)
        unseen = [w for w in distinct if w not in rows]
        extra: dict[str, Tensor] = {}
        if unseen:
            extra = self._add(unseen)
            rows = self._rows
        lengths = [len(words) for words in normalized]
        width = max(1, max(lengths))
        mask = length_mask(lengths, width)  # (B, T)
        # Words that did not fit in a full cache take row 0 here and are written in below.
        flat = [w for words in normalized for w in words]  # the real positions, row by row
        found = torch.tensor([rows.get(w, 0) for w in flat], dtype=torch.long)
        if bool(mask.all()):
            index = found.view(mask.shape)
        else:
            index = torch.zeros(mask.shape, dtype=torch.long)
            index[mask] = found
        table = self._table  # read after the indices: see the class docstring
        embedded = table[index]  # (B, T, E)
        if extra:
            real = embedded[mask]  # (N, E): the real positions in the order of `flat`
            for n, w in enumerate(flat):
                if w in extra:
                    real[n] = extra[w]
            embedded[mask] = real
        return embedded, mask

    def _add(self, words: list[str]) -> dict[str, Tensor]:
        """Embed `words` and cache as many as the budget allows; the others are returned."""
        with self._lock:
            words = [w for w in words if w not in self._rows]  # another thread may have added some
            if not words:
                return {}
            vectors = self._compute(words)  # (N, E)
            room = max(0, self.max_words - len(self._rows))
            kept = words[:room]
            if kept:
                self._store(kept, vectors[: len(kept)])
            return {w: vectors[len(kept) + i] for i, w in enumerate(words[len(kept) :])}

    def _compute(self, words: list[str]) -> Tensor:
        """The embedding of each word, as the model computes it: words (N,) -> (N, E)."""
        batch = collate([featurize(words, self.vocabs, self.tokenizer)])
        return self.embedding(batch.word_ids, batch.char_ids)[0]

    def _store(self, words: list[str], vectors: Tensor) -> None:
        """Write rows and publish them; the caller holds the lock."""
        start, end = self._size, self._size + len(words)
        table = self._table
        if end > table.shape[0]:
            grown = torch.zeros(max(end, 2 * table.shape[0]), table.shape[1], dtype=self.dtype)
            grown[:start] = table[:start]
            table = grown
        table[start:end] = vectors
        self._table = table  # publish the table first, then the indices into it
        self._size = end
        rows = dict(self._rows)
        rows.update((w, start + i) for i, w in enumerate(words))
        self._rows = rows
