"""How sure a tag head is of a span: P(exactly this span) under the CRF, or the product of the
token probabilities under the softmax head. Spans of a whole batch are scored together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nlu.decode.forward_backward import ForwardBackward
from nlu.decode.tables import DecodeTables, as_array


@dataclass(frozen=True)
class SpanRequests:
    """Spans whose probabilities are asked for, N of them, as arrays: sentence `index` of the
    batch, first token `start`, the span's tag ids `tags[n, :width[n]]` (the rest of the row is
    padding), the sentence `length`, and the tag that may not follow the span (`stop`, -1 for
    none; for a BIO span of x it is I-x, so that the span is exactly that long)."""

    index: np.ndarray  # (N,)
    start: np.ndarray  # (N,)
    tags: np.ndarray  # (N, W)
    width: np.ndarray  # (N,)
    length: np.ndarray  # (N,)
    stop: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def of(cls, spans: Sequence[tuple[int, int, Sequence[int], int, int]]) -> SpanRequests:
        """From (index, start, tags, length, stop) tuples, one per span."""
        width = max((len(tags) for _, _, tags, _, _ in spans), default=1)
        tags = np.zeros((len(spans), width), np.int64)
        for n, (_, _, ids, _, _) in enumerate(spans):
            tags[n, : len(ids)] = ids
        index, start, ids, length, stop = zip(*spans) if spans else ([],) * 5
        return cls(
            np.array(index, np.int64),
            np.array(start, np.int64),
            tags,
            np.array([len(i) for i in ids], np.int64),
            np.array(length, np.int64),
            np.array(stop, np.int64),
        )

    def steps(self, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Token positions of each span's tags, (N, W) clipped into the sentence, and whether
        each is the span's, (N, W) bool."""
        offset = np.arange(self.tags.shape[1])
        at = np.minimum(self.start[:, None] + offset, seq_len - 1)
        return at, offset < self.width[:, None]


class SpanConfidence(Protocol):
    """What `decode_with_confidence` returns beside the paths: scores any spans of the batch."""

    def spans(self, requests: SpanRequests) -> list[float]: ...


class SoftmaxConfidence:
    """Span confidence under independent token softmaxes: the product of token probabilities."""

    def __init__(self, log_probs: np.ndarray) -> None:
        self.log_probs = log_probs  # (B, T, K)

    def spans(self, requests: SpanRequests) -> list[float]:
        if not len(requests):
            return []
        at, real = requests.steps(self.log_probs.shape[1])  # (N, W)
        terms = self.log_probs[requests.index[:, None], at, requests.tags]  # (N, W)
        return np.exp(np.where(real, terms, 0.0).sum(axis=1)).tolist()


class CRFConfidence:
    """Span confidence under the CRF: the marginal probability of exactly that span."""

    def __init__(self, emissions: Any, fb: ForwardBackward, tables: DecodeTables) -> None:
        self.emissions = as_array(emissions)  # (B, T, K)
        self.fb, self.tables = fb, tables

    def spans(self, requests: SpanRequests) -> list[float]:
        """P(the tags of a span are exactly as requested and the tag after it is not its stop
        tag).

        For a BIO span `B-x I-x` with stop tag I-x this is the probability that the sentence has
        exactly that span: the confidence of an entity. All requests of a batch are scored
        together, in a few array operations.
        """
        if not len(requests):
            return []
        with np.errstate(divide="ignore"):  # log 0 = -inf: a span no path goes through
            return self._spans(requests)

    def _spans(self, requests: SpanRequests) -> list[float]:
        arrays, fb = self.tables, self.fb
        trans, end = arrays.trans, arrays.end
        em = self.emissions  # (B, T, K)
        r = requests
        everyone = np.arange(len(r))
        score = fb.log_alpha(r.index, r.start, r.tags[:, 0]).astype(np.float64)  # (N,)
        if r.tags.shape[1] > 1:
            # The path inside each span: its transition and emission terms.
            at, real = r.steps(em.shape[1])  # (N, W)
            prev, cur = r.tags[:, :-1], r.tags[:, 1:]  # (N, W-1)
            inner = trans[prev, cur] + em[r.index[:, None], at[:, 1:], cur]
            score += np.where(real[:, 1:], inner, 0.0).sum(axis=1)
        # After the span: the sentence ends, or continues with any tag but the stop tag. The
        # sum over the next tag runs in probability space, on the recursions' scaled values:
        # exp(trans + em + beta) = exp_trans * probs * b * exp(shift + top + scale_b).
        last = r.tags[everyone, r.width - 1]  # (N,)
        tail = end[last].astype(np.float64)
        after = r.start + r.width  # (N,)
        inside = np.flatnonzero(after < r.length)  # (M,)
        if len(inside):
            b, t = r.index[inside], after[inside]
            weights = arrays.exp_trans[last[inside]] * fb.probs[b, t] * fb.b[b, t]  # (M, K)
            stop = r.stop[inside]
            stopped = np.flatnonzero(stop >= 0)
            weights[stopped, stop[stopped]] = 0.0
            total = np.log(np.add.reduce(weights, axis=1), dtype=np.float64)
            tail[inside] = total + arrays.shift + fb.top[b, t] + fb.scale_b[b, t]
        return np.exp(score + tail - fb.log_z[r.index]).tolist()
