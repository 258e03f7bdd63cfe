"""Linear-chain CRF: pytorch-crf's parameters and likelihood, with fast batched inference.

Training uses pytorch-crf's log-likelihood. Decoding does not use its `decode`, whose backtrace
walks every sentence in Python: `viterbi` keeps the whole batch in tensors (one loop over time
steps, none over sentences) and is tested equal to pytorch-crf's. `marginals` and
`span_probability` run forward-backward for confidences; `kbest` finds the k best sequences.
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


class LinearChainCRF(nn.Module):
    """A CRF over `num_tags` tags; batch first, bool masks, right padding, mask[:, 0] True."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.crf = CRF(num_tags, batch_first=True)
        self.num_tags = num_tags
        # Added to the transition scores when decoding (not training); -inf forbids a move.
        self.register_buffer("start_bias", torch.zeros(num_tags), persistent=False)
        self.register_buffer("transition_bias", torch.zeros(num_tags, num_tags), persistent=False)

    def constrain(self, allowed: list[tuple[int, int]], starts: list[int]) -> None:
        """At decode time, forbid transitions not in `allowed` and starts not in `starts`."""
        self.transition_bias.fill_(float("-inf"))
        self.start_bias.fill_(float("-inf"))
        if allowed:
            i, j = zip(*allowed)
            self.transition_bias[list(i), list(j)] = 0.0
        self.start_bias[starts] = 0.0

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
        """Best tag sequence of each sentence, batched.

        Returns:
            paths: (B, T) long, the best tags (0 on padding);
            scores: (B,) the score of each best path.
        """
        start, trans, end = self._scores()
        batch, seq_len, _ = emissions.shape
        score = start + emissions[:, 0]  # (B, K)
        history = []
        for t in range(1, seq_len):
            # best previous tag for each current tag: (B, K_prev, K) -> (B, K)
            best, index = (score.unsqueeze(2) + trans).max(dim=1)
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

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids of each sentence as lists trimmed to the sentence lengths."""
        paths, _ = self.viterbi(emissions, mask)
        return [row[:n] for row, n in zip(paths.tolist(), mask.sum(dim=1).tolist())]

    def forward_backward(self, emissions: Tensor, mask: Tensor) -> ForwardBackward:
        """Forward and backward log-scores; positions past a sentence's end carry its last value."""
        start, trans, end = self._scores()
        batch, seq_len, _ = emissions.shape
        alpha = [start + emissions[:, 0]]  # each (B, K)
        for t in range(1, seq_len):
            step = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, dim=1) + emissions[:, t]
            alpha.append(torch.where(mask[:, t : t + 1], step, alpha[-1]))
        beta = [end.expand(batch, -1)] * seq_len
        for t in range(seq_len - 2, -1, -1):
            following = beta[t + 1] + emissions[:, t + 1]  # (B, K)
            step = torch.logsumexp(trans + following.unsqueeze(1), dim=2)
            beta[t] = torch.where(mask[:, t + 1 : t + 2], step, beta[t + 1])
        alphas, betas = torch.stack(alpha, dim=1), torch.stack(beta, dim=1)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)
        return ForwardBackward(alphas, betas, log_z)

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """P(tag at t = k | sentence): (B, T, K), zero on padding."""
        fb = self.forward_backward(emissions, mask)
        probs = torch.exp(fb.alpha + fb.beta - fb.log_z[:, None, None])
        return probs * mask.unsqueeze(2)

    def span_probability(
        self,
        fb: ForwardBackward,
        emissions: Tensor,
        index: int,
        tags: list[int],
        start: int,
        length: int,
        stop: list[int],
    ) -> float:
        """P(tags[start:start+len(tags)] are exactly `tags` and the next tag is not in `stop`).

        For a BIO span `B-x I-x` with `stop = [I-x]` this is the probability that the sentence
        has exactly that span: the confidence of an entity.
        """
        _, trans, end = self._scores()
        em = emissions[index]  # (T, K)
        score = fb.alpha[index, start, tags[0]]
        for offset in range(1, len(tags)):
            t = start + offset
            score = score + trans[tags[offset - 1], tags[offset]] + em[t, tags[offset]]
        last, after = tags[-1], start + len(tags)
        if after >= length:
            tail = end[last]
        else:
            # Continue into any tag but the stop tags, then through the rest of the sentence.
            options = trans[last] + em[after] + fb.beta[index, after]  # (K,)
            keep = torch.ones_like(options, dtype=torch.bool)
            keep[stop] = False
            tail = torch.logsumexp(options[keep], dim=0)
        return float(torch.exp(score + tail - fb.log_z[index]))

    def kbest(self, emissions: Tensor, k: int) -> list[tuple[list[int], float]]:
        """The `k` best tag sequences of one sentence (emissions: (T, K)) with their scores."""
        return kbest_paths(emissions, k, *self._scores())


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
