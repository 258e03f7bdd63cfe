import pytest

from nlu.eval.metrics import score


def test_f1_hand_computed():
    gold = [
        ["B-a", "I-a", "O", "B-b"],  # spans a[0:2], b[3:4]
        ["B-a", "B-a", "O"],  # two adjacent a spans
        ["B-c", "I-c", "O"],
    ]
    pred = [
        ["I-a", "I-a", "O", "B-b"],  # starts with I-: still a[0:2], both right
        ["B-a", "I-a", "O"],  # one merged span a[0:2]: wrong, and both gold spans missed
        ["B-d", "I-d", "O"],  # right boundaries, wrong type: wrong
    ]
    report = score(gold, ["x", "y", "z"], pred, ["x", "y", "w"])
    # gold spans: 5; predicted: 4; correct: 2
    assert report.slot.correct == 2 and report.slot.predicted == 4 and report.slot.support == 5
    assert report.slot.precision == pytest.approx(50.0)
    assert report.slot.recall == pytest.approx(40.0)
    assert report.slot.f1 == pytest.approx(2 * 50 * 40 / 90)
    assert report.per_slot["a"].support == 3 and report.per_slot["a"].correct == 1
    assert report.per_slot["d"].predicted == 1 and report.per_slot["d"].support == 0
    assert report.intent_accuracy == pytest.approx(200 / 3)
    # Sentence 1 has the same spans but not the same tags: the frame rule compares tags.
    assert report.sentence_accuracy == 0.0


def test_multi_intent_rules_and_unseen_labels():
    tags = [["O"], ["O"], ["O"]]
    report = score(tags, ["a#b", "a#b", "never_seen"], tags, ["a#b", "b", "a"])
    assert report.intent_accuracy == pytest.approx(100 / 3)  # only the exact string
    assert report.intent_accuracy_any == pytest.approx(200 / 3)  # "b" is one of "a#b"
    assert report.sentence_accuracy == pytest.approx(100 / 3)


def test_several_intents_are_scored_as_a_set_and_one_by_one():
    gold_tags = [["B-x", "O"], ["O", "O"], ["O", "O"], ["O", "O"]]
    pred_tags = [["B-x", "O"], ["O", "O"], ["O", "B-y"], ["O", "O"]]
    gold = ["a#b", "a#b#c", "b#c", "a"]
    pred = ["b#a", "a#b", "c#b", "a"]  # order aside: right, one missing, right, right
    report = score(gold_tags, gold, pred_tags, pred)
    assert report.multi_intent
    assert report.intent_accuracy == 25.0  # ATIS's exact-label rule: only "a"
    assert report.intent_set_accuracy == 75.0
    assert report.overall_accuracy == 50.0  # sentence 2's set is right, a tag is not
    f1 = report.intent_f1  # gold 2 + 3 + 2 + 1 = 8 single intents, predicted 7, right 7
    assert (f1.support, f1.predicted, f1.correct) == (8, 7, 7)
    assert f1.f1 == pytest.approx(2 * 100 * 87.5 / 187.5)
    summary = report.summary()
    assert summary["intent_set_accuracy"] == 75.0 and summary["overall_accuracy"] == 50.0
    # No separator: each label is one intent, and the set rule is the exact one.
    plain = score(gold_tags, gold, pred_tags, pred, separator="")
    assert not plain.multi_intent and plain.intent_set_accuracy == 25.0


def test_single_intent_labels_score_the_same_either_way():
    tags = [["O"], ["B-x"]]
    report = score(tags, ["a", "b"], tags, ["a", "c"])
    assert not report.multi_intent
    assert report.intent_set_accuracy == report.intent_accuracy == 50.0
    assert report.overall_accuracy == report.sentence_accuracy == 50.0
    assert report.intent_f1.f1 == 50.0


def test_empty_and_mismatched_input():
    assert score([], [], [], []).slot.f1 == 0.0
    with pytest.raises(ValueError, match="expected as many predictions"):
        score([["O"]], ["a"], [], [])
    with pytest.raises(ValueError, match="sentence 0: 2 predicted tags for 1 gold tags"):
        score([["O"]], ["a"], [["O", "O"]], ["a"])


def test_slot_scores_split_on_spans_holding_a_word_unseen_in_training():
    from nlu.eval.metrics import known_words

    known = known_words([["Fly", "to", "Boston"], ["from", "denver"]])
    assert known == {"fly", "to", "boston", "from", "denver"}
    tokens = [["fly", "to", "BOSTON", "from", "Xanadu", "city"], ["to", "Oslo"]]
    gold = [["O", "O", "B-to", "O", "B-from", "I-from"], ["O", "B-to"]]
    pred = [["O", "O", "B-to", "O", "B-from", "O"], ["O", "B-to"]]
    report = score(gold, ["a", "a"], pred, ["a", "a"], tokens, known)
    # Unseen-word spans: gold "Xanadu city" (missed: predicted "Xanadu" alone) and "Oslo"
    # (right); predicted "Xanadu" and "Oslo". Seen: "BOSTON" (a case of "Boston"), right.
    assert (report.slot_unseen.support, report.slot_unseen.predicted) == (2, 2)
    assert report.slot_unseen.correct == 1 and report.slot_unseen.f1 == 50.0
    assert (report.slot_seen.support, report.slot_seen.correct, report.slot_seen.f1) == (
        1,
        1,
        100.0,
    )
    assert report.summary()["slot_f1_unseen"] == 50.0
    assert score(gold, ["a", "a"], pred, ["a", "a"]).slot_unseen is None
