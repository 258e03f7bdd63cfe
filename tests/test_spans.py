import random

import numpy as np
import pytest

from nlu.decode.confidence import SpanRequests
from nlu.inference.spans import SpanScorer
from nlu.schema import Span
from nlu.tags import spans


class EchoConfidence:
    """Scores each requested span with a number that encodes what was asked, so the test can
    read the request back from the confidence."""

    def __init__(self) -> None:
        self.asked: list[SpanRequests] = []

    def spans(self, requests: SpanRequests) -> list[float]:
        self.asked.append(requests)
        return [float(n) for n in range(len(requests))]


@pytest.mark.parametrize("seed", range(3))
def test_span_scorer_reads_spans_as_spans_does_and_asks_for_each(seed):
    """Random id paths, ill-formed BIO, a tag without its I- form and a non-BIO tag included:
    the tags and spans of `spans`, each span asked for once, with its sentence, tag ids, length
    and the I- tag that may not follow it."""
    tags = ["O", "B-a", "I-a", "B-b", "I-b", "I-c", "B-d", "X"]
    scorer = SpanScorer(tags)
    rng = random.Random(seed)
    for _ in range(300):
        paths = [[rng.randrange(len(tags)) for _ in range(rng.randint(0, 8))] for _ in range(5)]
        sentences = [rng.randrange(3) for _ in paths]
        confidence = EchoConfidence()
        tagged, scored = scorer(paths, sentences, confidence)
        assert tagged == [[tags[k] for k in path] for path in paths]
        assert [[s for s, _ in of_path] for of_path in scored] == [spans(t) for t in tagged]
        (asked,) = confidence.asked
        flat = [(c, s, p) for c, of_path in enumerate(scored) for s, p in of_path]
        assert [p for _, _, p in flat] == list(range(len(asked)))
        for n, (c, span, _) in enumerate(flat):
            assert asked.index[n] == sentences[c] and asked.start[n] == span.start
            width = asked.width[n]
            assert width == span.end - span.start
            assert asked.tags[n, :width].tolist() == paths[c][span.start : span.end]
            assert asked.length[n] == len(paths[c])
            stop = tags.index(f"I-{span.label}") if f"I-{span.label}" in tags else -1
            assert asked.stop[n] == stop


def test_span_scorer_with_no_spans_asks_for_none():
    scorer = SpanScorer(["O", "B-a", "I-a"])
    confidence = EchoConfidence()
    tagged, scored = scorer([[0, 0], []], [0, 1], confidence)
    assert tagged == [["O", "O"], []] and scored == [[], []]
    assert len(confidence.asked[0]) == 0 and confidence.asked[0].tags.dtype == np.int64
    assert scorer.stop == {"a": 2}
    assert Span("a", 0, 1) in [s for s, _ in scorer([[1]], [0], EchoConfidence())[1][0]]
