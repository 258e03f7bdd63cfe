"""The slot spans of decoded tag paths, each with the tag head's confidence in it."""

from __future__ import annotations

from collections.abc import Sequence

from nlu.decode.confidence import SpanConfidence, SpanRequests
from nlu.schema import Span
from nlu.tags import OUTSIDE, spans, split_tag


class SpanScorer:
    """Reads the spans of tag-id paths as `nlu.tags.spans` reads BIO tags, and scores those of
    a whole batch in one call of the head's `SpanConfidence`."""

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        ids = {tag: i for i, tag in enumerate(self.tags)}
        # A span of x is exactly as long as found when the tag after it is not I-x: that is the
        # "stop" tag its probability excludes (-1: the vocabulary has no I-x).
        kinds = {kind for prefix, kind in map(split_tag, self.tags) if prefix != OUTSIDE}
        self.stop = {kind: ids.get(f"I-{kind}", -1) for kind in kinds}

    def __call__(
        self, paths: list[list[int]], sentences: list[int], confidence: SpanConfidence
    ) -> tuple[list[list[str]], list[list[tuple[Span, float]]]]:
        """The tags of each path and its spans with their confidences; path c belongs to
        sentence `sentences[c]` of the batch that `confidence` was computed on."""
        names = self.tags
        tagged = [[names[k] for k in path] for path in paths]
        found = [spans(tags) for tags in tagged]
        requests = SpanRequests.of(
            [
                (
                    sentences[c],
                    s.start,
                    paths[c][s.start : s.end],
                    len(paths[c]),
                    self.stop[s.label],
                )
                for c, of_path in enumerate(found)
                for s in of_path
            ]
        )
        confidences = iter(confidence.spans(requests))
        return tagged, [[(s, next(confidences)) for s in of_path] for of_path in found]
