"""BIO tags: validation, repair, spans (conlleval semantics) and allowed transitions."""

from __future__ import annotations

from collections.abc import Sequence

from nlu.schema import Span

OUTSIDE = "O"


def check_tag(tag: str) -> None:
    """Raise `ValueError` unless `tag` is `O`, `B-type` or `I-type`."""
    if tag == OUTSIDE:
        return
    prefix, sep, kind = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not kind:
        raise ValueError(f"expected a BIO tag (O, B-type or I-type), found {tag!r}")


def split_tag(tag: str) -> tuple[str, str]:
    """("B" | "I" | "O", type); the type of `O` is ""."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def repair(tags: Sequence[str]) -> tuple[list[str], int]:
    """Rewrite every `I-x` that does not continue an `x` span as `B-x`; return (tags, count)."""
    fixed: list[str] = []
    count = 0
    previous = OUTSIDE
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and split_tag(previous)[1] != kind:
            tag = f"B-{kind}"
            count += 1
        fixed.append(tag)
        previous = tag
    return fixed, count


def spans(tags: Sequence[str]) -> list[Span]:
    """Spans of a BIO sequence, read as conlleval reads them.

    An `I-x` that does not continue an `x` span starts a new span, so `[I-x, I-x]` is one span
    and `[B-x, I-y]` is two.
    """
    found: list[Span] = []
    label, start = None, 0
    for i, tag in enumerate(tags):
        # split_tag, inlined: the Parser reads every tag of every parse here. For "O" the
        # kind is "" either way, and an O- prefix never starts or continues a span.
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == label
        if label is not None and not continues:
            found.append(Span(label, start, i))
            label = None
        if prefix != OUTSIDE and not continues:
            label, start = kind, i
    if label is not None:
        found.append(Span(label, start, len(tags)))
    return found


def allowed_transitions(tags: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) such that tag j may follow tag i in a well-formed BIO sequence."""
    pairs = []
    for i, previous in enumerate(tags):
        for j, current in enumerate(tags):
            prefix, kind = split_tag(current)
            if prefix != "I" or split_tag(previous)[1] == kind:
                pairs.append((i, j))
    return pairs


def allowed_starts(tags: Sequence[str]) -> list[int]:
    """Tags a sentence may begin with: anything but `I-x`."""
    return [i for i, tag in enumerate(tags) if split_tag(tag)[0] != "I"]
