"""Evaluate a `Parser` on annotated examples; goes through the Parser, so eval == what users get."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from nlu.eval.metrics import Report, score
from nlu.parser import BATCH_SIZE, Parser
from nlu.schema import Example


@dataclass(frozen=True)
class Predictions:
    """The parser's tags and top intent for each example, in the examples' order."""

    tags: list[list[str]]
    intents: list[str]


def predict(
    parser: Parser, examples: Sequence[Example], batch_size: int = BATCH_SIZE
) -> Predictions:
    """Tag and classify the tokens of `examples` (their gold labels are not looked at)."""
    predictions = parser.predict([e.tokens for e in examples], batch_size=batch_size)
    intents = parser.vocabs.intents.itos
    return Predictions(
        [p.tags for p in predictions],
        [
            intents[max(range(len(p.intent_probs)), key=p.intent_probs.__getitem__)]
            for p in predictions
        ],
    )


def evaluate(
    parser: Parser,
    examples: Sequence[Example],
    batch_size: int = BATCH_SIZE,
    known: Set[str] | None = None,
) -> Report:
    """Slot, intent and sentence scores of `parser` on `examples`; with the training words
    (`nlu.eval.metrics.known_words`), slot scores on unseen-word spans and on the rest too."""
    predicted = predict(parser, examples, batch_size)
    return score(
        [e.tags for e in examples],
        [e.intent for e in examples],
        predicted.tags,
        predicted.intents,
        [e.tokens for e in examples],
        known,
    )
