"""Linear-chain CRF: pytorch-crf's parameters and likelihood, with fast decoding for inference.

Training uses pytorch-crf's log-likelihood. Decoding does not use its `decode`, whose backtrace
walks every sentence in Python: `decode` runs a scaled forward-backward over the whole batch
(`nlu.modules.forward_backward`), which proves the best path of most sentences (its probability
is above 1/2), and Viterbi (`nlu.modules.viterbi`) over the rest. The same forward-backward gives
the span confidences (`nlu.modules.confidence`). Both are tested equal to brute force.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchcrf import CRF

from nlu.modules.decode_tables import Constraints, DecodesWithTables, DecodeTables
from nlu.modules.forward_backward import ForwardBackward, decode, forward_backward
from nlu.modules.viterbi import kbest_paths


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

    def forward_backward(self, emissions: Tensor, mask: Tensor) -> ForwardBackward:
        """See `nlu.modules.forward_backward.forward_backward`."""
        return forward_backward(emissions, mask, self.tables())

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids of each sentence as lists trimmed to the sentence lengths."""
        return decode(emissions, mask, self.tables())

    def kbest(self, emissions: Tensor, k: int) -> list[tuple[list[int], float]]:
        """The `k` best tag sequences of one sentence (emissions: (T, K)) with their scores."""
        return kbest_paths(emissions, k, self.tables())
