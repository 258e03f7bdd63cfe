"""`TagDecoder`: what a tag head's scores mean at inference, in NumPy.

A CRF head's scores are emissions, decoded with its learned transitions; a softmax head's are
independent token scores, decoded token by token or, with BIO constraints, as the best allowed
sequence of token log-probabilities. Both give best paths, k-best paths and span confidences.
The torch tag heads decode through it, and so does every Parser, whatever computed the scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nlu.decode.confidence import CRFConfidence, SoftmaxConfidence, SpanConfidence
from nlu.decode.forward_backward import best_paths, decode, forward_backward
from nlu.decode.tables import DecodeTables, as_array, log_softmax
from nlu.decode.viterbi import kbest_paths

TAG_HEAD_KINDS = ("crf", "softmax")


class TagDecoder:
    """Decodes the scores (B, T, K) of a "crf" or "softmax" tag head with its `tables`; a
    softmax head is `constrained` when its tables forbid moves (else they are all zero)."""

    def __init__(self, kind: str, tables: DecodeTables, constrained: bool = False) -> None:
        if kind not in TAG_HEAD_KINDS:
            raise ValueError(f"tag head: expected one of {list(TAG_HEAD_KINDS)}, found {kind!r}")
        self.kind = kind
        self.tables = tables
        self.constrained = constrained

    def decode(self, scores: Any, mask: Any) -> list[list[int]]:
        """Best tag ids of each sentence, trimmed to its length."""
        scores, mask = as_array(scores), as_array(mask)
        if self.kind == "crf":
            return decode(scores, mask, self.tables)
        if self.constrained:
            return decode(log_softmax(scores), mask, self.tables)
        return _token_argmax(scores, mask)

    def decode_with_confidence(
        self, scores: Any, mask: Any
    ) -> tuple[list[list[int]], SpanConfidence]:
        """`decode`, and what scores the spans of any tag sequence. For a CRF one
        forward-backward serves both: it gives the span confidences, and it proves most best
        paths without Viterbi (`nlu.decode.forward_backward.best_paths`)."""
        scores, mask = as_array(scores), as_array(mask)
        if self.kind == "crf":
            fb = forward_backward(scores, mask, self.tables)
            paths = best_paths(fb, scores, mask, self.tables)
            return paths, CRFConfidence(scores, fb, self.tables)
        log_probs = log_softmax(scores.astype(np.float32, copy=False))
        if self.constrained:
            paths = decode(log_probs, mask, self.tables)
        else:
            paths = _token_argmax(scores, mask)
        return paths, SoftmaxConfidence(log_probs)

    def kbest(self, scores: Any, k: int) -> list[tuple[list[int], float]]:
        """The `k` best tag sequences of one sentence (scores: (T, K)) with their scores: the
        CRF's path scores, or sums of token log-probabilities."""
        scores = as_array(scores)
        return kbest_paths(scores if self.kind == "crf" else log_softmax(scores), k, self.tables)


def _token_argmax(scores: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    """The highest-scoring tag of each token, each sentence trimmed to its length."""
    lengths = mask.sum(axis=1).tolist()
    return [row[:n] for row, n in zip(scores.argmax(axis=-1).tolist(), lengths)]
