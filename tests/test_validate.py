"""`validate` finds every problem with its file:line; `stats` counts what the data holds."""

import json

import pytest

from nlu.data.formats import read_examples
from nlu.data.stats import dataset_stats
from nlu.data.validate import validate
from tests.test_readers import write


def lines(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_every_error_of_a_file_is_listed_not_just_the_first(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        lines(
            {"tokens": ["a", "b"], "tags": ["O"], "intent": "x"},
            {"tokens": ["a"], "tags": ["O"], "intent": "x"},
            {"tokens": ["a"], "tags": ["U-x"], "intent": "x"},
            {"text": " ", "intent": "x"},
        )
    )
    result = validate([path])
    assert [(f.level, f.kind, f.message.split(": ")[0]) for f in result.findings] == [
        ("error", "misaligned", f"{path}:1"),
        ("error", "bio", f"{path}:3"),
        ("error", "empty", f"{path}:4"),
    ]
    assert result.files == {str(path): 1}


def test_cross_file_checks(tmp_path):
    train = write(
        tmp_path / "train",
        "fly to boston\nfly to boston\nhi\nto rome\n",
        "O O B-city\nO O B-town\nO\nO I-city\n",
        "flight\nflight\ngreet\nflight\n",
    )
    test = tmp_path / "test.jsonl"
    test.write_text(
        lines(
            {"text": "Hi", "intent": "greet"},
            {"text": "book paris", "intent": "book", "entities": [{"start": 5, "end": 10,
                                                                   "entity": "place"}]},
            {"text": "book lyon", "intent": "book"},
            {"text": "flights tonight", "intent": "flight", "entities": [{"start": 0, "end": 5,
                                                                          "entity": "what"}]},
        )
    )  # fmt: skip
    result = validate([train, test])
    assert not result.errors
    found = {(f.kind, f.message) for f in result.warnings}
    assert {
        (
            "bio",
            f"{train}/seq.out: 1 line(s) had an I- tag with no B- before it (line 4); read as B-",
        ),
        (
            "span",
            f"{test}:4: entity 'what' = 'fligh' ends inside a word of 'flights tonight'; "
            "extended to 'flights'",
        ),
        (
            "conflict",
            f"{train}/seq.in:2: same utterance as {train}/seq.in:1 ('fly to boston') "
            "with different labels: tags 'O O B-town' here, 'O O B-city' there",
        ),
        ("overlap", f"{test}:1: utterance also in the training data at {train}/seq.in:3: 'Hi'"),
        ("unseen", f"{test}:2: intent 'book' is not in the training data (2 utterances here)"),
        ("unseen", f"{test}:2: tag 'B-place' is not in the training data (1 utterance here)"),
        ("unseen", f"{test}:4: tag 'B-what' is not in the training data (1 utterance here)"),
    } == found
    assert result.files == {str(train): 4, str(test): 4}


def test_unreadable_files_are_one_error_each(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu: [\n")
    result = validate([bad, tmp_path / "missing.jsonl"])
    assert [(f.level, f.kind) for f in result.findings] == [("error", "format")] * 2
    assert "bad.yml:2: expected Rasa YAML, found invalid YAML" in result.findings[0].message
    assert "missing.jsonl: no such file or folder" in result.findings[1].message


def test_stats_count_utterances_tokens_labels_oov_and_lengths(tmp_path):
    train = write(tmp_path / "train", "fly to boston\nhi\n", "O O B-city\nO\n", "flight\ngreet\n")
    test = tmp_path / "test.jsonl"
    test.write_text(lines({"text": "Fly to Rome now please ok", "intent": "flight",
                           "entities": [{"start": 7, "end": 11, "entity": "city"}]}))  # fmt: skip
    first, second = dataset_stats(
        [(str(train), read_examples(train)), (str(test), read_examples(test))]
    )
    assert (first.utterances, first.tokens, first.words, first.max_length) == (2, 4, 4, 3)
    assert first.intents == {"flight": 1, "greet": 1} and first.slots == {"city": 1}
    assert first.oov_rate is None and first.lengths == {1: 2}
    # "Fly" and "to" are known once lower-cased; "rome", "now", "please", "ok" are not.
    assert (second.oov_tokens, second.oov_words) == (4, 4)
    assert second.oov_rate == pytest.approx(100 * 4 / 6)
    assert second.lengths == {6: 1}
    assert second.to_dict()["lengths"] == {"6-10": 1}
