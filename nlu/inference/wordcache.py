"""Token-embedding rows of the words a Parser has seen, so that a word is embedded only once.

A token's embedding (word vector, character CNN or BiLSTM, letter trigrams) depends only on its
normalized spelling once the model is frozen: no dropout, no context. Recomputing it on every
call cost about a quarter of a single-utterance parse and a third of batch tagging (the character
CNN and the per-character id lookups), while a chatbot sees the same few thousand words again and
again. `WordCache.embed` gathers cached rows into the (B, T, E) input of the encoder and computes
only the words it has not seen, with whatever embeds them: the torch module (`TorchEngine`) or
the exported embedding graph (`OnnxEngine`). NumPy only.

Inference only: after training steps the cached rows would be stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from nlu.tokenizer import Tokenizer

DEFAULT_BUDGET_BYTES = 64 * 2**20  # the cache stops growing at this size; later words are
# still embedded, on every call, like before

# Normalized words (N,) -> their embeddings (N, E), float32.
Embedder = Callable[[list[str]], np.ndarray]


class WordCache:
    """Embedding rows keyed by normalized spelling; safe to use from several threads.

    Row 0 is all zeros and stands for padding (the embedding of PAD is zero). Readers take no
    lock: a writer stores new rows in the table (a new, larger one when it must grow) and
    publishes the table before it publishes the rows' indices, so any index a reader finds is
    in the table it then reads.
    """

    def __init__(
        self,
        compute: Embedder,
        dim: int,
        tokenizer: Tokenizer,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.compute = compute
        self.tokenizer = tokenizer
        self.max_words = max(1, budget_bytes // (dim * 4) - 1)
        self._table = np.zeros((64, dim), np.float32)  # (capacity, E); row 0 = padding
        self._size = 1
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many words are cached."""
        return len(self._rows)

    def embed(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Embedded sentences (B, T, E) float32 and their mask (B, T) bool, right-padded with
        zeros.

        `sentences` hold words as the tokenizer gave them (normalized here); an empty sentence
        has no real position and an all-zero row.
        """
        normalized = [self.tokenizer.normalize_all(words) for words in sentences]
        rows = self._rows
        distinct = dict.fromkeys(w for words in normalized for w in words)
        unseen = [w for w in distinct if w not in rows]
        extra: dict[str, np.ndarray] = {}
        if unseen:
            extra = self._add(unseen)
            rows = self._rows
        lengths = [len(words) for words in normalized]
        width = max(1, max(lengths, default=1))
        # Words that did not fit in a full cache take row 0 here and are written in below.
        flat = [w for words in normalized for w in words]  # the real positions, row by row
        found = np.array([rows.get(w, 0) for w in flat], np.intp)
        if min(lengths, default=0) == width:  # no padding: one sentence, or equal lengths
            mask = np.ones((len(lengths), width), bool)
            index = found.reshape(mask.shape)
        else:
            mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
            index = np.zeros(mask.shape, np.intp)
            index[mask] = found
        table = self._table  # read after the indices: see the class docstring
        embedded = table[index]  # (B, T, E), a new array
        if extra:
            positions = np.flatnonzero(mask)  # of `flat`'s words in (B * T)
            rows_out = embedded.reshape(-1, embedded.shape[-1])
            for n, w in enumerate(flat):
                if w in extra:
                    rows_out[positions[n]] = extra[w]
        return embedded, mask

    def _add(self, words: list[str]) -> dict[str, np.ndarray]:
        """Embed `words` and cache as many as the budget allows; the others are returned."""
        with self._lock:
            words = [w for w in words if w not in self._rows]  # another thread may have added some
            if not words:
                return {}
            vectors = np.asarray(self.compute(words), np.float32)  # (N, E)
            room = max(0, self.max_words - len(self._rows))
            kept = words[:room]
            if kept:
                self._store(kept, vectors[: len(kept)])
            return {w: vectors[len(kept) + i] for i, w in enumerate(words[len(kept) :])}

    def _store(self, words: list[str], vectors: np.ndarray) -> None:
        """Write rows and publish them; the caller holds the lock."""
        start, end = self._size, self._size + len(words)
        table = self._table
        if end > table.shape[0]:
            grown = np.zeros((max(end, 2 * table.shape[0]), table.shape[1]), np.float32)
            grown[:start] = table[:start]
            table = grown
        table[start:end] = vectors
        self._table = table  # publish the table first, then the indices into it
        self._size = end
        rows = dict(self._rows)
        rows.update((w, start + i) for i, w in enumerate(words))
        self._rows = rows
