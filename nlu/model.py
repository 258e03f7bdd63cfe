"""The joint intent + slot model: embed -> encode -> tag head + intent head. Plain PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlu.config import ModelConfig
from nlu.features import IGNORE_INTENT, Batch
from nlu.modules.attention import (
    AttentionBranch,
    CoInteraction,
    LabelAttention,
    SelfAttentionBlock,
)
from nlu.modules.decode_tables import Constraints
from nlu.modules.dropout import Dropout, LockedDropout
from nlu.modules.embedding import TokenEmbedding
from nlu.modules.encoder import RNNEncoder
from nlu.modules.heads import TAG_HEADS, IntentHead
from nlu.tags import allowed_starts, allowed_transitions
from nlu.vocab import Vocabs


@dataclass(frozen=True)
class Output:
    """What one forward pass computes."""

    tag_scores: Tensor  # (B, T, num_tags)
    intent_logits: Tensor  # (B, num_intents)
    mask: Tensor  # (B, T) bool
    token_intent_logits: Tensor | None = None  # (B, T, num_intents) at model.intent_level token


@dataclass(frozen=True)
class Losses:
    total: Tensor
    slot: Tensor
    intent: Tensor


class IntentContext(nn.Module):
    """The predicted intent distribution, embedded: what the slot tagger learns from the intent.

    A token's tag often depends on the intent ("6 pm" is a departure time when booking a flight,
    an arrival time when asking when it lands); the soft distribution keeps this differentiable.
    """

    def __init__(self, num_intents: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Linear(num_intents, dim, bias=False)
        self.output_dim = dim

    def forward(self, intent_logits: Tensor, seq_len: int) -> Tensor:
        """intent_logits: (B, num_intents) -> (B, T, dim), the same vector at every position;
        or each token's own, (B, T, num_intents) -> (B, T, dim)."""
        context = self.embed(intent_logits.softmax(dim=-1))  # (B, dim) or (B, T, dim)
        if context.dim() == 3:
            return context
        return context.unsqueeze(1).expand(-1, seq_len, -1)


class JointModel(nn.Module):
    """Shared encoder with a slot-tagging head and an intent head.

    Optional parts, in the order they apply: a self-attention branch over the embeddings
    beside the encoder, a self-attention block over the encoder states, a co-interaction block
    that splits them into slot and intent states, the embedded intent distribution appended to
    every token's slot features, and what each token reads from the slot-label embeddings
    appended after it, before the tag head.
    """

    def __init__(
        self,
        embedding: TokenEmbedding,
        encoder: RNNEncoder,
        tag_head: nn.Module,
        intent_head: IntentHead,
        dropout: float = 0.5,
        intent_weight: float = 1.0,
        locked_dropout: bool = False,
        attention: SelfAttentionBlock | None = None,
        intent_context: IntentContext | None = None,
        intent_label_smoothing: float = 0.0,
        branch: AttentionBranch | None = None,
        interaction: CoInteraction | None = None,
        label_attention: LabelAttention | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= intent_label_smoothing < 1.0:
            raise ValueError(
                f"model.intent_label_smoothing: expected a value in [0, 1), "
                f"found {intent_label_smoothing}"
            )
        self.embedding = embedding
        self.encoder = encoder
        self.attention = attention
        self.branch = branch
        self.intent_context = intent_context
        self.interaction = interaction
        self.label_attention = label_attention
        self.tag_head = tag_head
        self.intent_head = intent_head
        self.dropout = LockedDropout(dropout) if locked_dropout else Dropout(dropout)
        self.intent_weight = intent_weight
        self.intent_label_smoothing = intent_label_smoothing

    def forward(self, word_ids: Tensor, char_ids: Tensor, mask: Tensor) -> Output:
        """word_ids: (B, T), char_ids: (B, T, L), mask: (B, T) bool."""
        return self.forward_embedded(self.embedding(word_ids, char_ids), mask)

    def forward_embedded(self, embedded: Tensor, mask: Tensor) -> Output:
        """The model after its token embedding (see `nlu.inference.wordcache`).

        embedded: (B, T, E); mask: (B, T) bool.
        """
        if self.training:  # dropout is the identity in evaluation: spare the calls
            embedded = self.dropout(embedded)
        states = self.encoder(embedded, mask)  # (B, T, H)
        if self.branch is not None:  # (B, T, H + A)
            states = torch.cat([states, self.branch(embedded, mask)], dim=-1)
        if self.attention is not None:
            states = self.attention(states, mask)
        if self.training:
            states = self.dropout(states)
        slots = intents = states  # (B, T, H)
        if self.interaction is not None:  # (B, T, D) each
            slots, intents = self.interaction(states, mask)
        # (B, num_intents), and (B, T, num_intents) at the token level
        intent_logits, token_logits = self.intent_head.scores(intents, mask)
        if self.intent_context is not None:
            guide = intent_logits if token_logits is None else token_logits
            context = self.intent_context(guide, states.shape[1])  # (B, T, C)
            slots = torch.cat([slots, context], dim=-1)  # (B, T, H + C)
        if self.label_attention is not None:
            slots = torch.cat([slots, self.label_attention(slots)], dim=-1)  # (B, T, 2 (H + C))
        return Output(self.tag_head(slots), intent_logits, mask, token_logits)

    def forward_batch(self, batch: Batch) -> Output:
        return self(batch.word_ids, batch.char_ids, batch.mask)

    def loss(self, output: Output, tag_ids: Tensor, intent_ids: Tensor) -> Losses:
        """Joint loss = slot loss + intent_weight * intent loss."""
        slot = self.tag_head.loss(output.tag_scores, tag_ids, output.mask)
        logits, targets = output.intent_logits, intent_ids
        if output.token_intent_logits is not None:
            # Every real token learns the utterance's intent; padding is ignored.
            logits = output.token_intent_logits.flatten(0, 1)  # (B * T, num_intents)
            per_token = intent_ids.unsqueeze(1).expand_as(output.mask)
            targets = per_token.masked_fill(~output.mask, IGNORE_INTENT).flatten()
        if (targets != IGNORE_INTENT).any():
            intent = F.cross_entropy(
                logits,
                targets,
                ignore_index=IGNORE_INTENT,
                label_smoothing=self.intent_label_smoothing,
            )
        else:
            intent = logits.sum() * 0.0
        return Losses(slot + self.intent_weight * intent, slot, intent)

    def freeze(self, batch_dtype: torch.dtype = torch.float32) -> JointModel:
        """Ready for inference only: evaluation mode, no gradients, the encoder split by
        direction for batches (in `batch_dtype`, see `RNNEncoder.freeze`), and the tag head's
        decode tables built once instead of on every call. Call it after the weights are
        loaded."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.encoder.freeze(batch_dtype)
        self.tag_head.freeze()
        return self

    def decode(self, output: Output) -> list[list[int]]:
        """Best tag ids of each sentence, trimmed to its length."""
        return self.tag_head.decode(output.tag_scores, output.mask)


def build_model(cfg: ModelConfig, vocabs: Vocabs) -> JointModel:
    """Translate a model config and the vocabulary sizes into a `JointModel`."""
    embedding = TokenEmbedding(
        num_words=len(vocabs.words),
        word_dim=cfg.word_dim,
        num_chars=len(vocabs.chars),
        char_dim=cfg.char_dim,
        char_filters=cfg.char_filters,
        char_kernel=cfg.char_kernel,
        word_input=cfg.word_input,
        char_encoder=cfg.char_encoder,
        char_hidden=cfg.char_hidden,
        word_hash_dim=cfg.word_hash_dim,
        word_hash_buckets=cfg.word_hash_buckets,
        word_shape_dim=cfg.word_shape_dim,
        chars=vocabs.chars.itos,
    )
    encoder = RNNEncoder(
        embedding.output_dim,
        hidden_dim=cfg.hidden_dim,
        kind=cfg.encoder,
        num_layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        forget_bias=cfg.forget_bias,
    )
    if cfg.tag_head not in TAG_HEADS:
        raise ValueError(f"unknown tag head {cfg.tag_head!r}; expected one of {sorted(TAG_HEADS)}")
    constraints = None
    if cfg.constrained_decoding:
        tags = vocabs.tags.itos
        constraints = Constraints(allowed_transitions(tags), allowed_starts(tags))
    for name in ("attention_branch_dim", "interaction_dim"):
        if getattr(cfg, name) > 0 and cfg.intent_pooling == "last":
            raise ValueError(
                f"model.{name}: expected an intent_pooling other than 'last', which reads the "
                "two directions of the encoder's states, found 'last'"
            )
    branch = None
    if cfg.attention_branch_dim > 0:
        branch = AttentionBranch(embedding.output_dim, cfg.attention_branch_dim, cfg.dropout)
    states_dim = encoder.output_dim + cfg.attention_branch_dim
    attention = None
    if cfg.attention_heads > 0:
        attention = SelfAttentionBlock(states_dim, cfg.attention_heads, cfg.dropout)
    interaction = None
    if cfg.interaction_dim > 0:
        interaction = CoInteraction(
            states_dim, cfg.interaction_dim, len(vocabs.tags), len(vocabs.intents), cfg.dropout
        )
    head_dim = cfg.interaction_dim or states_dim  # what the intent head and the tag head read
    intent_context = None
    if cfg.slot_intent_dim > 0:
        intent_context = IntentContext(len(vocabs.intents), cfg.slot_intent_dim)
    tag_input_dim = head_dim + cfg.slot_intent_dim
    label_attention = None
    if cfg.label_attention:
        label_attention = LabelAttention(tag_input_dim, len(vocabs.tags))
        tag_input_dim *= 2
    options = {"likelihood": cfg.crf_likelihood} if cfg.tag_head == "crf" else {}
    tag_head = TAG_HEADS[cfg.tag_head](tag_input_dim, len(vocabs.tags), constraints, **options)
    intent_head = IntentHead(
        head_dim,
        len(vocabs.intents),
        cfg.intent_pooling,
        cfg.bidirectional,
        labels=vocabs.intents.itos if cfg.intent_parts else None,
        level=cfg.intent_level,
        vote=cfg.token_intent_vote,
    )
    return JointModel(
        embedding,
        encoder,
        tag_head,
        intent_head,
        cfg.dropout,
        cfg.intent_weight,
        cfg.locked_dropout,
        attention,
        intent_context,
        cfg.intent_label_smoothing,
        branch,
        interaction,
        label_attention,
    )
