"""Linear-chain CRF: pytorch-crf for the likelihood and Viterbi, plus marginals for confidence."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchcrf import CRF


class LinearChainCRF(nn.Module):
    """A CRF over `num_tags` tags; batch first, bool masks, right padding."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.crf = CRF(num_tags, batch_first=True)
        self.num_tags = num_tags

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood over the batch. emissions: (B, T, K); tags, mask: (B, T)."""
        return -self.crf(emissions, tags, mask=mask, reduction="mean")

    def viterbi(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag sequence of each sentence (length = its number of real tokens)."""
        return self.crf.decode(emissions, mask=mask)

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """P(tag at t = k | sentence) by forward-backward: (B, T, K), zero on padding."""
        start, end, trans = (
            self.crf.start_transitions,
            self.crf.end_transitions,
            self.crf.transitions,
        )
        batch, seq_len, _ = emissions.shape
        alpha = [start + emissions[:, 0]]  # each (B, K)
        for t in range(1, seq_len):
            step = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, dim=1) + emissions[:, t]
            alpha.append(torch.where(mask[:, t : t + 1], step, alpha[-1]))
        # beta[t][k]: log-sum of scores of all continuations after t when tag t is k.
        beta = [end.expand(batch, -1)] * seq_len
        for t in range(seq_len - 2, -1, -1):
            nxt = beta[t + 1] + emissions[:, t + 1]  # (B, K)
            step = torch.logsumexp(trans + nxt.unsqueeze(1), dim=2)
            beta[t] = torch.where(mask[:, t + 1 : t + 2], step, beta[t + 1])
        # Past the last real token, alpha and beta just carry their last values; masked below.
        alphas, betas = torch.stack(alpha, dim=1), torch.stack(beta, dim=1)  # (B, T, K)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)  # (B,)
        probs = torch.exp(alphas + betas - log_z[:, None, None])
        return probs * mask.unsqueeze(2)
