import pytest

from nlu.schema import Span
from nlu.tags import allowed_starts, allowed_transitions, check_tag, repair, spans


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
