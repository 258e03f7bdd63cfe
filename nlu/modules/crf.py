"""Linear-chain CRF: pytorch-crf's parameters and likelihood, with fast batched inference.

Training uses pytorch-crf's log-likelihood. Decoding does not use its `decode`, whose backtrace
walks every sentence in Python: `viterbi` keeps the whole batch in arrays (one loop over time
steps, none over sentences; torch tensors with a pruned step for large batches, NumPy for small
ones) and is tested equal to pytorch-crf's. `marginals` and `span_probabilities` run
forward-backward (in NumPy) for confidences; `kbest` finds the k best sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor, nn
from torchcrf import CRF


class ForwardBackward:
    """Forward and backward scores of a batch, as the scaled recursions leave them.

    In NumPy, `a[b, t]` is renormalised at every step and alpha[b, t, k] = log a[b, t, k] +
    scale_a[b, t] (likewise `b` and beta). The log-space tensors `alpha`, `beta` and `log_z` (on the
    emissions' device and dtype) are computed on first use; span confidences read only the few
    entries they need (`log_alpha`, and `b` with `probs` in probability space), which spares a
    logarithm of every (B, T, K) entry.
    """

    def __init__(
        self,
        a: np.ndarray,
        scale_a: np.ndarray,
        b: np.ndarray,
        scale_b: np.ndarray,
        log_z: np.ndarray,
        like: Tensor,
        probs: np.ndarray,
        top: np.ndarray,
    ) -> None:
        self.a, self.scale_a = a, scale_a  # (B, T, K), (B, T)
        self.b, self.scale_b = b, scale_b
        self.log_z_array = log_z  # (B,)
        # The emissions as the recursions used them: em = log(probs) + top, (B, T, K), (B, T).
        self.probs, self.top = probs, top
        self._like = {"device": like.device, "dtype": like.dtype}

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.from_numpy(array).to(**self._like)

    @cached_property
    def alpha(self) -> Tensor:
        """(B, T, K): log-sum of all prefixes ending in tag k at t."""
        with np.errstate(divide="ignore"):
            return self._tensor(np.log(self.a) + self.scale_a[:, :, None])

    @cached_property
    def beta(self) -> Tensor:
        """(B, T, K): log-sum of all continuations after tag k at t (end included)."""
        with np.errstate(divide="ignore"):
            return self._tensor(np.log(self.b) + self.scale_b[:, :, None])

    @cached_property
    def log_z(self) -> Tensor:
        """(B,)"""
        return self._tensor(self.log_z_array)

    def marginals(self) -> Tensor:
        """P(tag at t = k | sentence): (B, T, K), from a * b in probability space (the log-space
        sum alpha + beta - log Z loses precision when the scores are large)."""
        weight = np.exp(self.scale_a + self.scale_b - self.log_z_array[:, None])  # (B, T)
        return self._tensor(self.a * self.b * weight[:, :, None])

    def log_alpha(self, index: np.ndarray, step: np.ndarray, tag: np.ndarray) -> np.ndarray:
        """alpha[index, step, tag], for index arrays of one shape."""
        with np.errstate(divide="ignore"):
            return np.log(self.a[index, step, tag]) + self.scale_a[index, step]


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

    @classmethod
    def of_paths(
        cls,
        paths: np.ndarray,
        row: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        index: np.ndarray,
        length: np.ndarray,
        stop: np.ndarray,
    ) -> SpanRequests:
        """The spans `paths[row[n], start[n]:end[n]]` of tag paths (C, T), each (N,); `index`,
        `length` and `stop` as in the class."""
        width = end - start
        offset = np.arange(max(1, int(width.max(initial=1))))  # (W,)
        at = np.minimum(start[:, None] + offset, paths.shape[1] - 1)  # (N, W)
        return cls(index, start, paths[row[:, None], at], width, length, stop)

    def steps(self, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Token positions of each span's tags, (N, W) clipped into the sentence, and whether
        each is the span's, (N, W) bool."""
        offset = np.arange(self.tags.shape[1])
        at = np.minimum(self.start[:, None] + offset, seq_len - 1)
        return at, offset < self.width[:, None]


@dataclass(frozen=True)
class Constraints:
    """Which tag may follow which, and which may start a sentence (see `nlu.tags`)."""

    allowed: list[tuple[int, int]]
    starts: list[int]

    def biases(self, num_tags: int) -> tuple[Tensor, Tensor]:
        """(start (K,), transitions (K, K)) with 0 where allowed and -inf where forbidden."""
        start = torch.full((num_tags,), float("-inf"))
        start[self.starts] = 0.0
        trans = torch.full((num_tags, num_tags), float("-inf"))
        if self.allowed:
            i, j = zip(*self.allowed)
            trans[list(i), list(j)] = 0.0
        return start, trans


class DecodeTables:
    """What decoding derives from a CRF's weights, with the decoding constraints applied.

    Built on every call while the weights change (training, validation); a frozen CRF (see
    `LinearChainCRF.freeze`) builds it once, so that tagging one utterance does not redo it.
    Each part is computed on first use.
    """

    def __init__(self, start: Tensor, trans: Tensor, end: Tensor) -> None:
        # Decoding and confidences need no gradients.
        self.start, self.trans, self.end = start.detach(), trans.detach(), end.detach()

    @cached_property
    def arrays(self) -> TableArrays:
        """The tables as float32 NumPy arrays, for the per-step work of inference: on arrays of
        120 tags a NumPy call costs a few microseconds, a torch call several times that."""
        return TableArrays(self.start, self.trans, self.end)

    @cached_property
    def pruned_step(self) -> MaxPlusStep:
        return MaxPlusStep(self.trans)

    def build(self) -> DecodeTables:
        """Compute every part now."""
        for part in ("arrays", "pruned_step"):
            getattr(self, part)
        return self


class TableArrays:
    """`DecodeTables` as NumPy arrays (float32; `wide()` gives float64 copies)."""

    def __init__(self, start: Tensor, trans: Tensor, end: Tensor) -> None:
        self.start = start.detach().cpu().numpy()  # (K,)
        self.trans = trans.detach().cpu().numpy()  # (K_prev, K)
        self.end = end.detach().cpu().numpy()  # (K,)
        self.into = np.ascontiguousarray(self.trans.T)  # (K, K_prev)
        # The largest transition score: exp(trans - shift) never overflows, and forbidden
        # moves are exactly 0.
        self.shift = float(self.trans.max())
        self.exp_trans = np.exp(self.trans - self.shift)  # (K_prev, K)
        self.exp_trans_t = np.ascontiguousarray(self.exp_trans.T)  # (K, K_prev)
        self.end_scale = float(_logsumexp(self.end, axis=0)[0])  # log sum_k exp(end[k])
        self.exp_end = np.exp(self.end - self.end_scale)  # (K,), sums to 1

    def wide(self) -> TableArrays:
        wide = object.__new__(TableArrays)
        for name, value in vars(self).items():
            is_array = isinstance(value, np.ndarray)
            setattr(wide, name, value.astype(np.float64) if is_array else value)
        return wide


class DecodesWithTables(nn.Module):
    """A module that decodes with `DecodeTables`: built on every call by `build_tables`, or
    once by `freeze()` (for inference, after the weights are loaded); training mode drops
    the frozen ones."""

    def __init__(self) -> None:
        super().__init__()
        self._frozen: DecodeTables | None = None

    def build_tables(self) -> DecodeTables:
        raise NotImplementedError

    def tables(self) -> DecodeTables:
        return self._frozen if self._frozen is not None else self.build_tables()

    def freeze(self) -> None:
        self._frozen = self.build_tables().build()

    def train(self, mode: bool = True) -> DecodesWithTables:
        if mode:
            self._frozen = None
        return super().train(mode)


class LinearChainCRF(DecodesWithTables):
    """A CRF over `num_tags` tags; batch first, bool masks, right padding, mask[:, 0] True."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.crf = CRF(num_tags, batch_first=True)
        self.num_tags = num_tags
        # Added to the transition scores when decoding (not training); -inf forbids a move.
        self.register_buffer("start_bias", torch.zeros(num_tags), persistent=False)
        self.register_buffer("transition_bias", torch.zeros(num_tags, num_tags), persistent=False)

    def constrain(self, constraints: Constraints) -> None:
        """At decode time, forbid the transitions and starts that `constraints` does not allow."""
        start, trans = constraints.biases(self.num_tags)
        self.start_bias.copy_(start)
        self.transition_bias.copy_(trans)
        self._frozen = None

    def build_tables(self) -> DecodeTables:
        c = self.crf
        return DecodeTables(
            c.start_transitions + self.start_bias,
            c.transitions + self.transition_bias,
            c.end_transitions,
        )

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood over the batch. emissions: (B, T, K); tags, mask: (B, T)."""
        return -self.crf(emissions, tags, mask=mask, reduction="mean")

    def viterbi(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Best tag sequence of each sentence: (paths (B, T), scores (B,)); see `viterbi_paths`."""
        return viterbi_paths(emissions, mask, self.tables())

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids of each sentence as lists trimmed to the sentence lengths."""
        return viterbi_lists(emissions, mask, self.tables())

    def forward_backward(self, emissions: Tensor, mask: Tensor) -> ForwardBackward:
        """Forward and backward log-scores; positions past a sentence's end carry its last value.

        Scaled forward-backward (Rabiner 1989): the recursions run in probability space,
        renormalised at every step, with the logs of the scales summed aside. A step is one
        (B, K) x (K, K) product and three elementwise operations, where a log-space step needs
        a logsumexp over (B, K, K). Emissions more than ~80 nats below a step's best underflow to
        probability 0 in float32 (a path through them has no visible probability anyway); if a
        whole step underflows, the batch is computed again in float64. Meant for inference
        (confidences), not for gradients.
        """
        tables = self.tables()
        fb = _scaled_forward_backward(emissions, mask, tables)
        if not np.isfinite(fb.log_z_array).all():
            fb = _scaled_forward_backward(emissions, mask, tables, wide=True)
        return fb

    def map_paths(self, fb: ForwardBackward, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """`decode`'s best paths, read off a forward-backward wherever it proves them, with
        Viterbi run only over the other sentences.

        A tag sequence with a probability above 1/2 is the best one: all the others share what
        is left. The candidate is the most probable tag at each position (argmax of a * b); its
        probability is exp(score - log Z). On ATIS test it settles 870 of 893 sentences, which
        then skip Viterbi's per-step loop.
        """
        tables = self.tables()
        arrays = tables.arrays
        em = emissions.detach().cpu().numpy()
        real = mask.cpu().numpy()  # (B, T)
        batch = em.shape[0]
        lengths = real.sum(axis=1)
        tags = (fb.a * fb.b).argmax(axis=2)  # (B, T); the scales are per (b, t): no effect
        sentence = np.arange(batch)
        emitted = np.take_along_axis(em, tags[:, :, None], axis=2)[:, :, 0].astype(np.float64)
        moves = arrays.trans[tags[:, :-1], tags[:, 1:]].astype(np.float64)  # (B, T-1)
        with np.errstate(invalid="ignore"):  # -inf - -inf where no path is allowed at all
            score = (
                arrays.start[tags[:, 0]]
                + np.where(real, emitted, 0.0).sum(axis=1)
                + np.where(real[:, 1:], moves, 0.0).sum(axis=1)
                + arrays.end[tags[sentence, lengths - 1]]
            )
            # The margin covers float rounding in log Z and the score, ~1e-5 nats.
            sure = score - fb.log_z_array > math.log(0.5) + 1e-3
        paths = [row[:n] for row, n in zip(tags.tolist(), lengths.tolist())]
        unsure = np.flatnonzero(~sure)
        if len(unsure):
            index = torch.from_numpy(unsure).to(emissions.device)
            found = viterbi_lists(emissions[index], mask[index], tables)
            for b, path in zip(unsure.tolist(), found):
                paths[b] = path
        return paths

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """P(tag at t = k | sentence): (B, T, K), zero on padding."""
        return self.forward_backward(emissions, mask).marginals() * mask.unsqueeze(2)

    def span_probabilities(
        self, fb: ForwardBackward, emissions: Tensor, requests: SpanRequests
    ) -> list[float]:
        """P(the tags of a span are exactly as requested and the tag after it is not its stop
        tag).

        For a BIO span `B-x I-x` with stop tag I-x this is the probability that the sentence has
        exactly that span: the confidence of an entity. All requests of a batch are scored
        together, in a few array operations.
        """
        if not len(requests):
            return []
        arrays = self.tables().arrays
        trans, end = arrays.trans, arrays.end
        em = emissions.detach().cpu().numpy()  # (B, T, K)
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
            with np.errstate(divide="ignore"):
                total = np.log(np.add.reduce(weights, axis=1), dtype=np.float64)
            tail[inside] = total + arrays.shift + fb.top[b, t] + fb.scale_b[b, t]
        return np.exp(score + tail - fb.log_z_array[r.index]).tolist()

    def kbest(self, emissions: Tensor, k: int) -> list[tuple[list[int], float]]:
        """The `k` best tag sequences of one sentence (emissions: (T, K)) with their scores."""
        tables = self.tables()
        return kbest_paths(emissions, k, tables.start, tables.trans, tables.end)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(x))) along `axis`, kept as a size-1 dimension; -inf where all are -inf."""
    top = x.max(axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    return safe + np.log(np.exp(x - safe).sum(axis=axis, keepdims=True))


def _scaled_forward_backward(
    emissions: Tensor, mask: Tensor, tables: DecodeTables, wide: bool = False
) -> ForwardBackward:
    """See `LinearChainCRF.forward_backward`; in float64 with `wide` or float64 emissions, else
    in float32.

    alpha[t] = log(a[t]) + scale_a[t] with a[t] renormalised at every step (likewise beta); a
    step that underflows entirely gives NaN, and so a non-finite log_z. Runs in NumPy: a step is
    a (B, K) x (K, K) product and three elementwise operations on small arrays, where torch's
    per-call overhead is several times the work.
    """
    wide = wide or emissions.dtype == torch.float64
    arrays = tables.arrays.wide() if wide else tables.arrays
    dtype = np.float64 if wide else np.float32
    em = emissions.detach().cpu().numpy().astype(dtype, copy=False)  # (B, T, K)
    real = mask.cpu().numpy()  # (B, T)
    batch, seq_len, num_tags = em.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        top = em.max(axis=2, keepdims=True)  # (B, T, 1)
        probs = np.exp(em - top)  # (B, T, K); 1 for the best tag of each step

        first = arrays.start + em[:, 0]  # (B, K)
        first_scale = _logsumexp(first, axis=1)  # (B, 1)
        a = np.empty_like(em)
        a[:, 0] = np.exp(first - first_scale)
        b = np.empty_like(em)
        b[:, -1] = arrays.exp_end
        end_scale = arrays.end_scale
        a_totals, b_totals = _recursions(a, b, probs, real, arrays)

        # The log-scale each step adds (0 past a sentence's end, where values are carried).
        # Scales are summed in float64: they reach thousands of nats, where float32 keeps
        # only about 1e-4 of a nat.
        steps = real[:, 1:]  # (B, T-1)
        lift = arrays.shift + top[:, 1:, 0].astype(np.float64)  # (B, T-1)
        grow_a = np.where(steps, lift + np.log(a_totals[:, 1:], dtype=np.float64), 0.0)
        grow_b = np.where(steps, lift + np.log(b_totals[:, :-1], dtype=np.float64), 0.0)
        first_scale = first_scale.astype(np.float64)
        scale_a = np.concatenate([first_scale, first_scale + grow_a.cumsum(axis=1)], axis=1)
        suffix = grow_b[:, ::-1].cumsum(axis=1)[:, ::-1]  # sum over steps t..T-2, for beta[t]
        scale_b = np.concatenate([suffix, np.zeros((batch, 1))], axis=1) + end_scale
        # log Z = log sum_k a[T-1, k] exp(end[k]), plus the last step's scale.
        log_z = np.log(a[:, -1] @ arrays.exp_end, dtype=np.float64) + end_scale + scale_a[:, -1]
    return ForwardBackward(a, scale_a, b, scale_b, log_z, emissions, probs, top[:, :, 0])


def _recursions(
    a: np.ndarray, b: np.ndarray, probs: np.ndarray, real: np.ndarray, arrays: TableArrays
) -> tuple[np.ndarray, np.ndarray]:
    """Fill a[:, 1:] and b[:, :-1] (a[:, 0] and b[:, -1] are set), carrying each sentence's
    last values past its end; return the steps' normalisers
    (a_totals[:, t] for a[:, t], b_totals[:, t] for b[:, t]; 1 where unused)."""
    batch, seq_len, _ = a.shape
    a_totals = np.ones((batch, seq_len), a.dtype)
    b_totals = np.ones((batch, seq_len), a.dtype)
    # np.add.reduce, not .sum(): the method's Python wrapper is a third of a step's cost.
    for t in range(1, seq_len):
        u = a[:, t - 1] @ arrays.exp_trans  # (B, K)
        u *= probs[:, t]
        total = np.add.reduce(u, axis=1, keepdims=True)  # (B, 1)
        a[:, t] = np.where(real[:, t, None], u / total, a[:, t - 1])
        a_totals[:, t] = total[:, 0]
    for t in range(seq_len - 2, -1, -1):
        v = (b[:, t + 1] * probs[:, t + 1]) @ arrays.exp_trans_t  # (B, K)
        total = np.add.reduce(v, axis=1, keepdims=True)
        b[:, t] = np.where(real[:, t + 1, None], v / total, b[:, t + 1])
        b_totals[:, t] = total[:, 0]
    return a_totals, b_totals


def trim_paths(paths: Tensor, mask: Tensor) -> list[list[int]]:
    """Padded paths (B, T) as lists trimmed to each sentence's length."""
    return [row[:n] for row, n in zip(paths.tolist(), mask.sum(dim=1).tolist())]


# Up to this many sentences, Viterbi runs in NumPy, densely; above, in torch with the pruned
# step (per sentence at batch 2-4: 150 us against 330; at 16: 210 against 140; ATIS, 120 tags).
NUMPY_MAX_BATCH = 8


class MaxPlusStep:
    """One Viterbi step, `best[b, j], index[b, j] = max / argmax_i score[b, i] + trans[i, j]`,
    exact but pruned.

    The dense step costs B x K x K; with 120 tags and a batch of 256 it dominated batch tagging.
    Pruning: let `R` be the spread of the finite transition scores and `m_b` the best score of
    sentence b. A previous tag i with score[b, i] < m_b - R can never be the best predecessor of
    a tag j that every tag may precede: the best tag i* does better, since
    score[b, i] + trans[i, j] < m_b - R + trans[i, j] <= m_b + trans[i*, j]. So for those "free"
    tags only the few previous tags within R of the best are scanned. Tags that only some tags may
    precede (BIO constraints: I-x after B-x or I-x) are scanned over their allowed predecessors.
    """

    def __init__(self, trans: Tensor) -> None:
        trans = trans.detach()  # decoding needs no gradients
        self.num_tags = trans.shape[0]
        # into[j, i]: reducing over the last, contiguous dimension is ~1.5x faster.
        self.into = trans.T.contiguous()  # (K, K_prev)
        allowed = torch.isfinite(trans)  # (K_prev, K)
        free = allowed.all(dim=0)  # (K,) tags any tag may precede
        self.free = free.nonzero().squeeze(1)  # (K_f,)
        self.restricted = (~free).nonzero().squeeze(1)  # (K_r,)
        self.trans_free = trans[:, self.free]  # (K_prev, K_f)
        finite = trans[allowed]
        self.spread = float(finite.max() - finite.min()) if finite.numel() else 0.0
        if len(self.restricted):
            # Allowed predecessors of each restricted tag, padded with forbidden ones (-inf).
            allowed_r = allowed[:, self.restricted].T  # (K_r, K_prev)
            width = max(1, int(allowed_r.sum(dim=1).max()))
            self.pred = allowed_r.float().topk(width, dim=1).indices  # (K_r, P)
            self.trans_pred = trans[self.pred, self.restricted.unsqueeze(1)]  # (K_r, P)

    def dense(self, score: Tensor) -> tuple[Tensor, Tensor]:
        return (score.unsqueeze(1) + self.into).max(dim=2)  # (B, K, K_prev) -> (B, K)

    def __call__(self, score: Tensor) -> tuple[Tensor, Tensor]:
        """score: (B, K) -> best (B, K), index (B, K) of the best previous tag."""
        top = score.max(dim=1, keepdim=True).values  # (B, 1)
        width = int((score >= top - self.spread).sum(dim=1).max())
        if 3 * width > self.num_tags:
            return self.dense(score)  # flat scores: pruning does not pay
        best = score.new_empty(score.shape)
        index = torch.empty(score.shape, dtype=torch.long, device=score.device)
        # Free tags: scan the `width` best previous tags of each sentence.
        values, prev = score.topk(width, dim=1)  # (B, W)
        total = values.unsqueeze(2) + self.trans_free[prev]  # (B, W, K_f)
        best_f, arg = total.max(dim=1)  # (B, K_f)
        best[:, self.free] = best_f
        index[:, self.free] = prev.gather(1, arg)
        if len(self.restricted):
            total = score[:, self.pred] + self.trans_pred  # (B, K_r, P)
            best_r, arg = total.max(dim=2)  # (B, K_r)
            best[:, self.restricted] = best_r
            index[:, self.restricted] = self.pred.gather(1, arg.T).T
        return best, index


def viterbi_paths(emissions: Tensor, mask: Tensor, tables: DecodeTables) -> tuple[Tensor, Tensor]:
    """Batched Viterbi: one loop over time steps, none over sentences. Batches of up to
    `NUMPY_MAX_BATCH` sentences run in NumPy, larger ones in torch with the pruned step.

    Args:
        emissions: (B, T, K); mask: (B, T) bool with right padding;
        tables: the start, transition and end scores (-inf forbids), see `DecodeTables`.

    Returns:
        paths: (B, T) long, the best tags (0 on padding); scores: (B,) their scores.
    """
    batch, seq_len, _ = emissions.shape
    if batch <= NUMPY_MAX_BATCH:
        return _viterbi_numpy(emissions, mask, tables.arrays)
    full = bool(mask.all())  # no padding: no need to carry finished sentences along
    step = tables.pruned_step
    score = tables.start + emissions[:, 0]  # (B, K)
    history = []
    for t in range(1, seq_len):
        best, index = step(score)  # best previous tag for each current tag: (B, K)
        history.append(index)
        following = best + emissions[:, t]
        score = following if full else torch.where(mask[:, t : t + 1], following, score)
    best_score, last = (score + tables.end).max(dim=1)  # (B,)
    lengths = mask.sum(dim=1)
    paths = torch.zeros(batch, seq_len, dtype=torch.long, device=emissions.device)
    current = last
    for t in range(seq_len - 1, -1, -1):
        active = t < lengths  # (B,)
        paths[:, t] = torch.where(active, current, 0)
        if t > 0:
            previous = history[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
            current = torch.where(active, previous, current)
    return paths, best_score


def viterbi_lists(emissions: Tensor, mask: Tensor, tables: DecodeTables) -> list[list[int]]:
    """`viterbi_paths` as lists trimmed to the sentence lengths, what decoding hands on. A
    small batch's NumPy Viterbi builds the lists directly, without a padded tensor between."""
    if emissions.shape[0] <= NUMPY_MAX_BATCH:
        return _best_paths(emissions, mask, tables.arrays)[0]
    return trim_paths(viterbi_paths(emissions, mask, tables)[0], mask)


def _viterbi_numpy(emissions: Tensor, mask: Tensor, arrays: TableArrays) -> tuple[Tensor, Tensor]:
    """`viterbi_paths` of a small batch (what a chatbot tags) in NumPy; see `_best_paths`."""
    found, scores = _best_paths(emissions, mask, arrays)
    paths = torch.zeros(mask.shape, dtype=torch.long)
    for b, path in enumerate(found):
        paths[b, : len(path)] = torch.tensor(path)
    device = emissions.device
    return paths.to(device), torch.from_numpy(scores).to(device=device, dtype=emissions.dtype)


def _best_paths(
    emissions: Tensor, mask: Tensor, arrays: TableArrays
) -> tuple[list[list[int]], np.ndarray]:
    """Viterbi of a small batch in NumPy: the best path of each sentence as a list trimmed to its
    length, and the scores (B,). A step is three calls on a (B, K, K) array, and the
    back-pointers are followed in Python."""
    batch, seq_len, num_tags = emissions.shape
    em = emissions.detach().cpu().numpy()  # (B, T, K)
    real = mask.cpu().numpy()  # (B, T)
    full = bool(real.all())
    rows = np.arange(batch * num_tags)
    score = arrays.start + em[:, 0]  # (B, K)
    back = []
    for t in range(1, seq_len):
        total = arrays.into + score[:, None, :]  # (B, K, K_prev): score[b, i] + trans[i, j]
        index = total.argmax(axis=2)  # (B, K): the best previous tag of each tag
        best = total.reshape(-1, num_tags)[rows, index.reshape(-1)].reshape(batch, num_tags)
        following = best + em[:, t]
        score = following if full else np.where(real[:, t, None], following, score)
        back.append(index)
    final = score + arrays.end  # (B, K)
    last = final.argmax(axis=1)  # (B,)
    lengths = [seq_len] * batch if full else real.sum(axis=1).tolist()
    paths = []
    for b, length in enumerate(lengths):
        tag = int(last[b])
        path = [tag]
        for t in range(length - 2, -1, -1):
            tag = int(back[t][b, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths, final[np.arange(batch), last]


def kbest_paths(
    emissions: Tensor, k: int, start: Tensor, trans: Tensor, end: Tensor
) -> list[tuple[list[int], float]]:
    """k-best Viterbi over one sentence: the `k` highest-scoring paths, best first.

    emissions: (T, K); start, end: (K,); trans: (K, K). Fewer than `k` paths come back when
    fewer exist (or are allowed).
    """
    seq_len, num_tags = emissions.shape
    # score[r, j]: score of the r-th best prefix ending in tag j.
    score = torch.full((k, num_tags), float("-inf"), device=emissions.device)
    score[0] = start + emissions[0]
    back = []
    for t in range(1, seq_len):
        # candidates[r * K + i, j] = score[r, i] + trans[i, j]
        candidates = (score.unsqueeze(2) + trans).reshape(k * num_tags, num_tags)
        top, index = candidates.topk(k, dim=0)  # (k, K)
        back.append(index)
        score = top + emissions[t]
    final = (score + end).reshape(-1)  # position r * K + j
    best, flat = final.topk(min(k, final.numel()))
    results = []
    for value, position in zip(best.tolist(), flat.tolist()):
        if value == float("-inf"):
            break
        rank, tag = divmod(position, num_tags)
        path = [tag]
        for index in reversed(back):
            rank, tag = divmod(int(index[rank, tag]), num_tags)
            path.append(tag)
        results.append((path[::-1], value))
    return results
