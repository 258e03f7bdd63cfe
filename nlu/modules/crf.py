"""Linear-chain CRF: pytorch-crf's parameters and likelihood, with fast batched inference.

Training uses pytorch-crf's log-likelihood. Decoding does not use its `decode`, whose backtrace
walks every sentence in Python: `viterbi` keeps the whole batch in tensors (one loop over time
steps, none over sentences) and is tested equal to pytorch-crf's. `marginals` and
`span_probabilities` run forward-backward for confidences; `kbest` finds the k best sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchcrf import CRF


@dataclass(frozen=True)
class ForwardBackward:
    """Log-space forward and backward scores of a batch."""

    alpha: Tensor  # (B, T, K): log-sum of all prefixes ending in tag k at t
    beta: Tensor  # (B, T, K): log-sum of all continuations after tag k at t (incl. end)
    log_z: Tensor  # (B,)


@dataclass(frozen=True)
class SpanRequest:
    """A span whose probability is asked for: sentence `index` of the batch, tag ids from
    token `start`, the sentence `length`, and the tags that may not follow it."""

    index: int
    start: int
    tags: list[int]
    length: int
    stop: list[int]


def _log_matmul(log_x: Tensor, exp_matrix: Tensor) -> Tensor:
    """log(exp(log_x) @ exp_matrix), stable for log_x of any scale. log_x: (B, K)."""
    top = log_x.max(dim=1, keepdim=True).values.clamp(min=-1e30)  # (B, 1); all -inf stays finite
    return torch.log(torch.exp(log_x - top) @ exp_matrix) + top


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


class LinearChainCRF(nn.Module):
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

    def _scores(self) -> tuple[Tensor, Tensor, Tensor]:
        c = self.crf
        return (
            c.start_transitions + self.start_bias,
            c.transitions + self.transition_bias,
            c.end_transitions,
        )

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood over the batch. emissions: (B, T, K); tags, mask: (B, T)."""
        return -self.crf(emissions, tags, mask=mask, reduction="mean")

    def viterbi(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Best tag sequence of each sentence: (paths (B, T), scores (B,)); see `viterbi_paths`."""
        return viterbi_paths(emissions, mask, *self._scores())

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids of each sentence as lists trimmed to the sentence lengths."""
        return trim_paths(self.viterbi(emissions, mask)[0], mask)

    def forward_backward(self, emissions: Tensor, mask: Tensor) -> ForwardBackward:
        """Forward and backward log-scores; positions past a sentence's end carry its last value.

        Each step is a (B, K) x (K, K) matrix product in exp space, rescaled by the running
        maximum, instead of a logsumexp over a (B, K, K) tensor: same numbers, a fraction of
        the work. Meant for inference (confidences), not for gradients.
        """
        start, trans, end = self._scores()
        batch, seq_len, _ = emissions.shape
        shift = trans.max()  # keeps exp() in range whatever the scale of the transitions
        exp_trans = torch.exp(trans - shift)  # (K, K); forbidden moves become exactly 0
        alpha = [start + emissions[:, 0]]  # each (B, K)
        for t in range(1, seq_len):
            step = _log_matmul(alpha[-1], exp_trans) + shift + emissions[:, t]
            alpha.append(torch.where(mask[:, t : t + 1], step, alpha[-1]))
        beta = [end.expand(batch, -1)] * seq_len
        for t in range(seq_len - 2, -1, -1):
            following = beta[t + 1] + emissions[:, t + 1]  # (B, K)
            step = _log_matmul(following, exp_trans.T) + shift
            beta[t] = torch.where(mask[:, t + 1 : t + 2], step, beta[t + 1])
        alphas, betas = torch.stack(alpha, dim=1), torch.stack(beta, dim=1)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)
        return ForwardBackward(alphas, betas, log_z)

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """P(tag at t = k | sentence): (B, T, K), zero on padding."""
        fb = self.forward_backward(emissions, mask)
        probs = torch.exp(fb.alpha + fb.beta - fb.log_z[:, None, None])
        return probs * mask.unsqueeze(2)

    def span_probabilities(
        self, fb: ForwardBackward, emissions: Tensor, requests: list[SpanRequest]
    ) -> list[float]:
        """P(the tags of a span are exactly as requested and the tag after it is not a stop tag).

        For a BIO span `B-x I-x` with stop tags `[I-x]` this is the probability that the
        sentence has exactly that span: the confidence of an entity. All requests of a batch
        are scored together.
        """
        if not requests:
            return []
        _, trans, end = self._scores()
        device = emissions.device
        first = torch.tensor([(r.index, r.start, r.tags[0]) for r in requests], device=device)
        score = fb.alpha[first[:, 0], first[:, 1], first[:, 2]]  # (N,)
        # The path inside each span: transition and emission terms, summed per span.
        steps = [
            (n, r.index, r.start + o, r.tags[o - 1], r.tags[o])
            for n, r in enumerate(requests)
            for o in range(1, len(r.tags))
        ]
        if steps:
            n, b, t, prev, cur = torch.tensor(steps, device=device).unbind(dim=1)
            score = score.index_add(0, n, trans[prev, cur] + emissions[b, t, cur])
        # After the span: the sentence ends, or continues with any tag but a stop tag.
        last = torch.tensor([r.tags[-1] for r in requests], device=device)
        tail = end[last]
        inside = [n for n, r in enumerate(requests) if r.start + len(r.tags) < r.length]
        if inside:
            rows = torch.tensor(inside, device=device)
            b = torch.tensor([requests[n].index for n in inside], device=device)
            t = torch.tensor(
                [requests[n].start + len(requests[n].tags) for n in inside], device=device
            )
            options = trans[last[rows]] + emissions[b, t] + fb.beta[b, t]  # (M, K)
            for row, n in enumerate(inside):
                if requests[n].stop:
                    options[row, requests[n].stop] = float("-inf")
            tail = tail.index_copy(0, rows, torch.logsumexp(options, dim=1))
        index = torch.tensor([r.index for r in requests], device=device)
        return torch.exp(score + tail - fb.log_z[index]).tolist()

    def kbest(self, emissions: Tensor, k: int) -> list[tuple[list[int], float]]:
        """The `k` best tag sequences of one sentence (emissions: (T, K)) with their scores."""
        return kbest_paths(emissions, k, *self._scores())


def trim_paths(paths: Tensor, mask: Tensor) -> list[list[int]]:
    """Padded paths (B, T) as lists trimmed to each sentence's length."""
    return [row[:n] for row, n in zip(paths.tolist(), mask.sum(dim=1).tolist())]


PRUNE_MIN_BATCH = 8


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

    def __init__(self, trans: Tensor, prune: bool = True) -> None:
        trans = trans.detach()  # decoding needs no gradients
        self.num_tags = trans.shape[0]
        # into[j, i]: reducing over the last, contiguous dimension is ~1.5x faster.
        self.into = trans.T.contiguous()  # (K, K_prev)
        self.prune = prune
        if not prune:
            return
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
        if not self.prune:
            return self.dense(score)
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


def viterbi_paths(
    emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
) -> tuple[Tensor, Tensor]:
    """Batched Viterbi: one loop over time steps, none over sentences.

    Args:
        emissions: (B, T, K); mask: (B, T) bool with right padding;
        start, end: (K,) and trans: (K, K) scores (-inf forbids).

    Returns:
        paths: (B, T) long, the best tags (0 on padding); scores: (B,) their scores.
    """
    batch, seq_len, _ = emissions.shape
    score = start + emissions[:, 0]  # (B, K)
    # Small batches (one utterance from a chatbot) skip pruning: its set-up and its checks cost
    # more than the dense steps they save.
    step = MaxPlusStep(trans, prune=batch >= PRUNE_MIN_BATCH)
    history = []
    for t in range(1, seq_len):
        best, index = step(score)  # best previous tag for each current tag: (B, K)
        history.append(index)
        score = torch.where(mask[:, t : t + 1], best + emissions[:, t], score)
    score = score + end
    best_score, last = score.max(dim=1)  # (B,)
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
