"""Tag heads (softmax, CRF) with one interface, and the intent head over pooled states.

Both tag heads offer `loss`, `decode`, `kbest` and `decoder` (their `TagDecoder`, which gives
span confidences too), so the model and the Parser never ask which one they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlu.decode.decoder import TagDecoder
from nlu.decode.tables import DecodeTables
from nlu.modules.crf import LinearChainCRF
from nlu.modules.decode_tables import Constraints, DecodesWithTables
from nlu.schema import INTENT_SEPARATOR


class SoftmaxTagHead(DecodesWithTables):
    """Independent per-token softmax over tags; with constraints, decoded by Viterbi over
    token log-probabilities so that no forbidden transition is produced."""

    def __init__(
        self, input_dim: int, num_tags: int, constraints: Constraints | None = None
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, num_tags)
        start, trans = (
            constraints.biases(num_tags)
            if constraints is not None
            else (torch.zeros(num_tags), torch.zeros(num_tags, num_tags))
        )
        self.constrained = constraints is not None
        self.register_buffer("start_bias", start, persistent=False)
        self.register_buffer("transition_bias", trans, persistent=False)
        self.register_buffer("end_bias", torch.zeros(num_tags), persistent=False)

    def forward(self, states: Tensor) -> Tensor:
        """states: (B, T, H) -> tag scores (B, T, K)."""
        return self.proj(states)

    def loss(self, scores: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean token cross-entropy over real tokens."""
        return F.cross_entropy(scores[mask], tags[mask])

    def decode(self, scores: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids of each sentence, trimmed to its length: the most probable tag of each
        token, or with constraints the best allowed sequence of token log-probabilities (found
        as the CRF's are, see `LinearChainCRF.decode`)."""
        return self.decoder().decode(scores, mask)

    def kbest(self, scores: Tensor, k: int) -> list[tuple[list[int], float]]:
        """k best sequences of one sentence (scores: (T, K)); a score is a sum of log-probs."""
        return self.decoder().kbest(scores, k)

    def build_tables(self) -> DecodeTables:
        return DecodeTables(self.start_bias, self.transition_bias, self.end_bias)

    def decoder(self) -> TagDecoder:
        """How its scores decode, in NumPy (what a Parser holds)."""
        return TagDecoder("softmax", self.tables(), self.constrained)


class CRFTagHead(nn.Module):
    """Linear emissions scored by a linear-chain CRF; constraints apply when decoding."""

    def __init__(
        self,
        input_dim: int,
        num_tags: int,
        constraints: Constraints | None = None,
        likelihood: str = "scaled",
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, num_tags)
        self.crf = LinearChainCRF(num_tags, likelihood)
        if constraints is not None:
            self.crf.constrain(constraints)

    def forward(self, states: Tensor) -> Tensor:
        return self.proj(states)

    def loss(self, scores: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        # pytorch-crf sums over a sentence; dividing by the mean length puts it on the same
        # per-token scale as the softmax loss, so the intent weight means the same for both.
        return self.crf.nll(scores, tags, mask) / mask.sum(dim=1).float().mean()

    def decode(self, scores: Tensor, mask: Tensor) -> list[list[int]]:
        return self.crf.decode(scores, mask)

    def kbest(self, scores: Tensor, k: int) -> list[tuple[list[int], float]]:
        return self.crf.kbest(scores, k)

    def freeze(self) -> None:
        """Build the decode tables once, for inference; see `LinearChainCRF.freeze`."""
        self.crf.freeze()

    def decoder(self) -> TagDecoder:
        """How its scores decode, in NumPy (what a Parser holds)."""
        return TagDecoder("crf", self.crf.tables())


TAG_HEADS = {"softmax": SoftmaxTagHead, "crf": CRFTagHead}

Pooling = Literal["max", "mean", "last", "attention"]


def pool(states: Tensor, mask: Tensor, how: Pooling, bidirectional: bool = True) -> Tensor:
    """One vector per sentence from encoder states (B, T, H) -> (B, H)."""
    if how == "max":
        if not mask.all():
            states = states.masked_fill(~mask.unsqueeze(2), float("-inf"))
        return states.amax(dim=1)
    if how == "mean":
        total = (states * mask.unsqueeze(2)).sum(dim=1)
        return total / mask.sum(dim=1, keepdim=True).clamp(min=1)
    if how == "last":
        last = (mask.sum(dim=1) - 1).clamp(min=0)  # index of the last real token
        final = states[torch.arange(states.shape[0]), last]  # (B, H)
        if not bidirectional:
            return final
        half = states.shape[2] // 2
        # The backward direction ends at the first token.
        return torch.cat([final[:, :half], states[:, 0, half:]], dim=1)
    raise ValueError(
        f"unknown pooling {how!r}; expected one of ['attention', 'last', 'max', 'mean']"
    )


class AttentionPool(nn.Module):
    """Additive attention over the tokens: a_t = softmax(v . tanh(W h_t)), pooled = sum a_t h_t."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, input_dim)
        self.score = nn.Linear(input_dim, 1, bias=False)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        scores = self.score(torch.tanh(self.proj(states))).squeeze(2)  # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (B, T)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, H)


INTENT_LEVELS = ("utterance", "token")
TOKEN_VOTES = ("average", "vote")


class IntentParts(nn.Module):
    """Scores whole intent labels from independent scores of their parts.

    ATIS's "atis_flight#atis_airfare" (19 training questions) is "atis_flight" (3,309) and
    "atis_airfare" (385) asked together; a flat softmax learns it from its own 19 examples. Here
    each part a gets a probability p_a = sigmoid(z_a), and a label L the log-score
    sum over the parts of log p_a if a is in L, else log(1 - p_a). The softmax over the
    labels seen in training is then a distribution over those labels (so losses, rankings and
    confidences work unchanged) in which "fares" cues learnt from airfare questions count for the
    two-intent label too.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        super().__init__()
        parts = sorted({part for label in labels for part in label.split(INTENT_SEPARATOR)})
        index = {part: i for i, part in enumerate(parts)}
        membership = torch.zeros(len(labels), len(parts))
        for row, label in enumerate(labels):
            for part in label.split(INTENT_SEPARATOR):
                membership[row, index[part]] = 1.0
        self.parts = parts
        self.register_buffer("membership", membership, persistent=False)  # (labels, parts)

    def forward(self, part_logits: Tensor) -> Tensor:
        """part_logits: (B, parts) -> label log-scores (B, labels)."""
        present, absent = F.logsigmoid(part_logits), F.logsigmoid(-part_logits)
        return present @ self.membership.T + absent @ (1.0 - self.membership).T


class IntentHead(nn.Module):
    """Pool the encoder states and classify the sentence.

    With `labels` given, the projection scores the parts of the labels and `IntentParts` turns
    them into label scores; without, it scores the labels directly.
    """

    def __init__(
        self,
        input_dim: int,
        num_intents: int,
        pooling: Pooling = "max",
        bidirectional: bool = True,
        labels: Sequence[str] | None = None,
        level: str = "utterance",
        vote: str = "average",
    ) -> None:
        super().__init__()
        for field, value, valid in (("model.intent_level", level, INTENT_LEVELS),
                                    ("model.token_intent_vote", vote, TOKEN_VOTES)):  # fmt: skip
            if value not in valid:
                raise ValueError(f"{field}: expected one of {list(valid)}, found {value!r}")
        self.level = level
        self.vote = vote
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.attention = AttentionPool(input_dim) if pooling == "attention" else None
        self.parts = IntentParts(labels) if labels is not None else None
        outputs = len(self.parts.parts) if self.parts is not None else num_intents
        self.proj = nn.Linear(input_dim, outputs)
        # Divides the logits for confidences only (see `nlu.eval.calibration`, and the Parser's
        # `_probabilities`); training and the intent context see the raw logits. Fitted on dev
        # after training.
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """states: (B, T, H), mask: (B, T) -> intent logits (B, num_intents)."""
        return self.scores(states, mask)[0]

    def scores(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """The utterances' intent logits (B, num_intents) and, at the token level, every
        token's (B, T, num_intents); None at the utterance level."""
        if self.level == "token":
            tokens = self._labels(self.proj(states))  # (B, T, num_intents)
            return self._combine(tokens, mask), tokens
        if self.attention is not None:
            pooled = self.attention(states, mask)
        else:
            pooled = pool(states, mask, self.pooling, self.bidirectional)
        return self._labels(self.proj(pooled)), None

    def _labels(self, logits: Tensor) -> Tensor:
        return self.parts(logits) if self.parts is not None else logits

    def _combine(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """The utterance's intent logits from its tokens' (padding left out): the mean of their
        log-probabilities, or the log of (votes + mean probability) / (tokens + 1)."""
        weights = mask.unsqueeze(2).to(tokens.dtype)  # (B, T, 1)
        count = weights.sum(dim=1).clamp(min=1.0)  # (B, 1)
        log_probs = tokens.log_softmax(dim=-1)
        mean_log_prob = (log_probs * weights).sum(dim=1) / count
        if self.vote == "average":
            return mean_log_prob
        votes = F.one_hot(tokens.argmax(dim=-1), tokens.shape[-1]).to(tokens.dtype)
        votes = (votes * weights).sum(dim=1)  # (B, num_intents)
        mean_prob = (log_probs.exp() * weights).sum(dim=1) / count
        return torch.log((votes + mean_prob) / (count + 1.0))
