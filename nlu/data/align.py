"""Character spans <-> BIO tags, through the project's tokenizer.

Formats that annotate raw text (Rasa, snips, JSONL with "text") give entities as character
offsets. The model tags tokens, so the text is tokenized exactly as `Parser.parse` will tokenize
what users type, and each span becomes a B-/I- run over the tokens it touches.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from nlu.data.readers import DataWarning
from nlu.schema import CharSpan, Example, Token
from nlu.tags import OUTSIDE, spans
from nlu.tokenizer import Tokenizer

_TOKENIZER = Tokenizer()  # tokenize() does not depend on lower-casing


def example_from_text(text: str, entities: Sequence[CharSpan], intent: str, source: str) -> Example:
    """Tokens and BIO tags of annotated text.

    A span boundary inside a token is extended to the whole token, with a `DataWarning` that
    shows the example. Leading and trailing spaces of a span are trimmed silently.

    Raises:
        ValueError: empty text, an empty intent, a span outside the text, a span covering no
            token, or two spans sharing a token (BIO cannot hold them).
    """
    if not text.strip():
        raise ValueError(f"{source}: expected an utterance, found empty text")
    if not intent:
        raise ValueError(f"{source}: expected an intent label, found an empty one")
    tokens = _TOKENIZER.tokenize(text)
    tags = [OUTSIDE] * len(tokens)
    entities = sorted(entities, key=lambda e: (e.start, e.end))
    for entity in entities:
        first, last = _covered(text, entity, tokens, source)
        taken = [tags[i] for i in range(first, last + 1) if tags[i] != OUTSIDE]
        if taken:
            raise ValueError(
                f"{source}: expected entities that do not share a token, found {entity.label!r} "
                f"({text[entity.start : entity.end]!r}) overlapping {taken[0][2:]!r} in {text!r}"
            )
        tags[first] = f"B-{entity.label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{entity.label}"
    return Example(
        tuple(t.text for t in tokens),
        tuple(tags),
        intent,
        source=source,
        text=text,
        entities=tuple(entities),
    )


def _covered(text: str, entity: CharSpan, tokens: Sequence[Token], source: str) -> tuple[int, int]:
    """Indices of the first and last token that `entity` touches."""
    if not 0 <= entity.start < entity.end <= len(text):
        raise ValueError(
            f"{source}: expected an entity span 0 <= start < end <= {len(text)}, found "
            f"{entity.label!r} at {entity.start}..{entity.end}"
        )
    start, end = entity.start, entity.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    touched = [i for i, t in enumerate(tokens) if t.start < end and t.end > start]
    if not touched:
        raise ValueError(
            f"{source}: expected an entity covering a word, found {entity.label!r} "
            f"= {text[entity.start : entity.end]!r}"
        )
    first, last = touched[0], touched[-1]
    if tokens[first].start != start or tokens[last].end != end:
        extended = text[tokens[first].start : tokens[last].end]
        warnings.warn(
            f"{source}: entity {entity.label!r} = {text[start:end]!r} ends inside a word of "
            f"{text!r}; extended to {extended!r}",
            DataWarning,
            stacklevel=4,
        )
    return first, last


def text_of(example: Example) -> tuple[str, tuple[CharSpan, ...]]:
    """The example's text and character spans: as annotated, or built from tokens and tags.

    Token-only examples become their tokens joined by single spaces.
    """
    if example.text is not None:
        return example.text, example.entities
    starts, position = [], 0
    for token in example.tokens:
        starts.append(position)
        position += len(token) + 1
    text = " ".join(example.tokens)
    entities = tuple(
        CharSpan(s.label, starts[s.start], starts[s.end - 1] + len(example.tokens[s.end - 1]))
        for s in spans(example.tags)
    )
    return text, entities
