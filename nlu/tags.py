"""BIO tags: validation, repair, spans (conlleval semantics) and allowed transitions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
        prefix, kind = split_tag(tag)
        continues = prefix == "I" and kind == label
        if label is not None and not continues:
            found.append(Span(label, start, i))
            label = None
        if prefix != OUTSIDE and not continues:
            label, start = kind, i
    if label is not None:
        found.append(Span(label, start, len(tags)))
    return found


class SpanFinder:
    """`spans` of many tag-id sequences at once, in NumPy, with tag ids indexing `tags`.

    A batch of 256 sentences costs a few array operations instead of a Python call per tag.
    Spans are read exactly as `spans` reads them (tested against it).
    """

    def __init__(self, tags: Sequence[str]) -> None:
        parts = [split_tag(tag) for tag in tags]
        self.labels = sorted({kind for prefix, kind in parts if prefix != OUTSIDE})
        number = {label: i for i, label in enumerate(self.labels)}
        # Per tag id: its label's number (-1 for O) and whether it is an I- tag.
        self.label = np.array([number[k] if p != OUTSIDE else -1 for p, k in parts], np.int64)
        self.inside = np.array([p == "I" for p, _ in parts], bool)
        # Per label number: the id of its I- tag (-1 if the vocabulary has none).
        ids = {tag: i for i, tag in enumerate(tags)}
        self.inside_tag = np.array([ids.get(f"I-{label}", -1) for label in self.labels], np.int64)
        self._label_list, self._inside_list = self.label.tolist(), self.inside.tolist()

    def find_one(self, path: Sequence[int]) -> list[tuple[int, int, int]]:
        """The spans of one sequence of tag ids as (label number, start, end), in Python: for a
        sentence or a few, a loop over the tags costs less than `find`'s array calls."""
        label_of, inside = self._label_list, self._inside_list
        found = []
        label, start = -1, 0
        for i, tag in enumerate(path):
            kind = label_of[tag]
            if label >= 0 and not (inside[tag] and kind == label):
                found.append((label, start, i))
                label = -1
            if label < 0 and kind >= 0:
                label, start = kind, i
        if label >= 0:
            found.append((label, start, len(path)))
        return found

    def find(
        self, paths: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every span of the sequences `paths` (C, T) of tag ids, each trimmed to its length
        (C,): (row, start, end, label number), (N,) each, by row and then position."""
        rows, width = paths.shape
        real = np.arange(width) < lengths[:, None]  # (C, T)
        # One column more than the paths: a span still open at the end closes there.
        label = np.full((rows, width + 1), -1, np.int64)
        label[:, :width] = np.where(real, self.label[paths], -1)
        previous = np.full_like(label, -1)
        previous[:, 1:] = label[:, :width]
        goes_on = np.zeros(label.shape, bool)  # I-x right after a tag of x continues its span
        goes_on[:, :width] = self.inside[paths] & real
        goes_on &= (label == previous) & (label >= 0)
        row, start = np.nonzero((label >= 0) & ~goes_on)
        # Spans do not overlap, so the k-th end of a row belongs to its k-th start.
        _, end = np.nonzero((previous >= 0) & ~goes_on)
        return row, start, end, label[row, start]


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
