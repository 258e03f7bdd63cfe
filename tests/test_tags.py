import random

import numpy as np
import pytest

from nlu.schema import Span
from nlu.tags import SpanFinder, allowed_starts, allowed_transitions, check_tag, repair, spans


def test_spans_follow_conlleval():
    assert spans(["B-a", "I-a", "O", "B-b"]) == [Span("a", 0, 2), Span("b", 3, 4)]
    # A sentence starting with I- starts a span; I- of another type starts a new one.
    assert spans(["I-a", "I-a", "I-b"]) == [Span("a", 0, 2), Span("b", 2, 3)]
    # Adjacent spans of the same type stay separate.
    assert spans(["B-a", "B-a", "I-a"]) == [Span("a", 0, 1), Span("a", 1, 3)]
    assert spans(["O", "I-a"]) == [Span("a", 1, 2)]
    assert spans([]) == []


def test_repair_rewrites_orphan_inside_tags():
    assert repair(["O", "I-a", "I-a", "I-b", "B-c", "I-c"]) == (
        ["O", "B-a", "I-a", "B-b", "B-c", "I-c"],
        2,
    )


@pytest.mark.parametrize("tag", ["X-a", "B-", "B", "b-a", "", "I_a"])
def test_check_tag_rejects_non_bio(tag):
    with pytest.raises(ValueError, match="expected a BIO tag"):
        check_tag(tag)


def test_allowed_transitions():
    tags = ["O", "B-a", "I-a", "B-b", "I-b"]
    allowed = set(allowed_transitions(tags))
    assert (0, 2) not in allowed and (3, 2) not in allowed and (4, 2) not in allowed
    assert (1, 2) in allowed and (2, 2) in allowed and (2, 0) in allowed and (0, 3) in allowed
    assert allowed_starts(tags) == [0, 1, 3]


@pytest.mark.parametrize("seed", range(3))
def test_span_finder_reads_spans_as_spans_does(seed):
    """Random id sequences, ill-formed BIO, a tag without its I- form and a non-BIO tag
    included, padded to a common width: the same spans as `spans` of each trimmed sequence,
    from `find` over the batch and from `find_one` sentence by sentence."""
    tags = ["O", "B-a", "I-a", "B-b", "I-b", "I-c", "B-d", "X"]
    finder = SpanFinder(tags)
    rng = random.Random(seed)
    for _ in range(300):
        rows, width = rng.randint(1, 5), rng.randint(1, 8)
        lengths = np.array([rng.randint(0, width) for _ in range(rows)])
        paths = np.array([[rng.randrange(len(tags)) for _ in range(width)] for _ in range(rows)])
        row, start, end, label = finder.find(paths, lengths)
        got = [[] for _ in range(rows)]
        for r, a, z, k in zip(row.tolist(), start.tolist(), end.tolist(), label.tolist()):
            got[r].append(Span(finder.labels[k], a, z))
        expected = [spans([tags[k] for k in paths[r, : lengths[r]]]) for r in range(rows)]
        assert got == expected
        one_by_one = [
            [Span(finder.labels[k], a, z) for k, a, z in finder.find_one(paths[r, : lengths[r]])]
            for r in range(rows)
        ]
        assert one_by_one == expected


def test_span_finder_knows_each_labels_inside_tag():
    finder = SpanFinder(["O", "B-a", "I-a", "B-d"])
    assert finder.labels == ["a", "d"]
    assert finder.inside_tag.tolist() == [2, -1]
