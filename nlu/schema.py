"""Plain value types that cross module boundaries: tokens, spans, examples and parses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# What joins the intents of a message that has several: ATIS and the Mix sets write
# "atis_flight#atis_airfare" (Rasa's convention is "+"; the data tools take --intent-separator).
INTENT_SEPARATOR = "#"

# Token, Span and Entity are named tuples: immutable like the dataclasses here, and built about
# twice as fast, which counts where a batch of 256 utterances makes thousands of them.


class Token(NamedTuple):
    """A token of the text as typed: `text == source[start:end]`."""

    text: str
    start: int
    end: int


class Span(NamedTuple):
    """A labelled run of tokens, `start` inclusive and `end` exclusive (token indices)."""

    label: str
    start: int
    end: int


@dataclass(frozen=True)
class CharSpan:
    """An entity as annotated in the original text: character offsets, `end` exclusive."""

    label: str
    start: int
    end: int
    value: str | None = None  # a normalized value ("NYC" -> "New York") when the format has one


@dataclass(frozen=True)
class Example:
    """One annotated utterance: tokens, one BIO tag per token, and the intent label.

    Formats that annotate raw text (Rasa, snips, JSONL with "text") also keep the text and its
    character spans; the tokens and tags are then derived from them by the project's tokenizer.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str
    # "file:line" where the example was read, for messages; not part of what the example says.
    source: str = field(default="", compare=False)
    text: str | None = None
    entities: tuple[CharSpan, ...] = ()

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(
                f"{self.source or 'example'}: {len(self.tags)} tags for {len(self.tokens)} tokens"
            )


class Entity(NamedTuple):
    """A slot found in the text; `start`/`end` are character offsets into the original text."""

    entity: str
    value: str
    start: int
    end: int
    confidence: float
    token_start: int
    token_end: int


@dataclass(frozen=True)
class Hypothesis:
    """One of the k best tag sequences of an utterance, with its entities."""

    tags: tuple[str, ...]
    score: float  # CRF path score (softmax head: sum of token log-probabilities)
    entities: tuple[Entity, ...]


def _entity_dict(e: Entity) -> dict[str, Any]:
    return {
        "entity": e.entity,
        "value": e.value,
        "start": e.start,
        "end": e.end,
        "confidence_entity": e.confidence,
        "extractor": "nlu",
    }


@dataclass(frozen=True)
class Parse:
    """What the model read in one utterance."""

    text: str
    intent: str
    intent_confidence: float
    intent_ranking: tuple[tuple[str, float], ...]
    entities: tuple[Entity, ...]
    tokens: tuple[Token, ...] = field(default=())
    tags: tuple[str, ...] = field(default=())
    n_best: tuple[Hypothesis, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The parse in the shape of Rasa's `/model/parse` response (plus `n_best` if asked)."""
        out: dict[str, Any] = {
            "text": self.text,
            "intent": {"name": self.intent, "confidence": self.intent_confidence},
            "intent_ranking": [
                {"name": name, "confidence": confidence} for name, confidence in self.intent_ranking
            ],
            "entities": [_entity_dict(e) for e in self.entities],
        }
        if self.n_best:
            out["n_best"] = [
                {
                    "tags": list(h.tags),
                    "score": h.score,
                    "entities": [_entity_dict(e) for e in h.entities],
                }
                for h in self.n_best
            ]
        return out
