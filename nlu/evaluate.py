"""Evaluate a `Parser` on annotated examples; goes through the Parser, so eval == what users get."""

from __future__ import annotations

from collections.abc import Sequence

from nlu.metrics import Report, score
from nlu.parser import Parser
from nlu.schema import Example


def evaluate(parser: Parser, examples: Sequence[Example], batch_size: int = 256) -> Report:
    """Slot, intent and sentence scores of `parser` on `examples`."""
    predictions = parser.predict([e.tokens for e in examples], batch_size=batch_size)
    intents = parser.vocabs.intents.itos
    return score(
        [e.tags for e in examples],
        [e.intent for e in examples],
        [p.tags for p in predictions],
        [
            intents[max(range(len(p.intent_probs)), key=p.intent_probs.__getitem__)]
            for p in predictions
        ],
    )
