"""The evaluation report: errors, confusion, per-intent scores, Markdown/HTML, and the directory."""

import base64
import json
import re

import pytest

from nlu.eval.metrics import intent_confusion, score
from nlu.eval.report import build_report, find_errors, marked_markdown
from nlu.eval.report_dir import REPORT_FILES, write_report
from nlu.eval.report_html import marked_html
from nlu.schema import Example, Span


def example(words, tags, intent, source=""):
    return Example(tuple(words.split()), tuple(tags.split()), intent, source)


EXAMPLES = [
    example("fly from boston to denver", "O O B-from O B-to", "flight", "data/test/seq.in:1"),
    example("fares to new york", "O O B-to I-to", "airfare", "data/test/seq.in:2"),
    example("taxi in dallas", "O O B-city", "ground", "data/test/seq.in:3"),
]
PRED_TAGS = [
    ["O", "O", "B-from", "O", "B-to"],  # right
    ["O", "O", "B-to", "O"],  # "new" alone: gold "new york" missed, "new" spurious
    ["O", "O", "B-city"],  # right spans, wrong intent
]
PRED_INTENTS = ["flight", "airfare", "flight"]


def test_errors_are_the_utterances_with_a_wrong_intent_or_span():
    errors = find_errors(EXAMPLES, PRED_TAGS, PRED_INTENTS)
    assert [e.index for e in errors] == [1, 2]
    span_error, intent_error = errors
    assert span_error.missed == (Span("to", 2, 4),) and span_error.spurious == (Span("to", 2, 3),)
    assert not span_error.intent_wrong
    assert intent_error.intent_wrong and not intent_error.missed and not intent_error.spurious
    assert intent_error.source == "data/test/seq.in:3"


def test_per_intent_scores_and_confusion_hand_computed():
    gold = ["a", "a", "a", "b", "c"]
    pred = ["a", "b", "a", "b", "d"]
    report = score([["O"]] * 5, gold, [["O"]] * 5, pred)
    a, b = report.per_intent["a"], report.per_intent["b"]
    assert (a.support, a.predicted, a.correct) == (3, 2, 2)
    assert a.precision == 100.0 and a.recall == pytest.approx(200 / 3)
    assert (b.support, b.predicted, b.correct, b.precision) == (1, 2, 1, 50.0)
    assert report.per_intent["d"].support == 0 and report.per_intent["c"].f1 == 0.0
    confusion = intent_confusion(gold, pred)
    assert confusion.labels == ["a", "b", "c", "d"]  # gold by frequency, then predicted-only
    assert confusion.counts == [[2, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert confusion.errors() == [("a", "b", 1), ("c", "d", 1)]


def test_marked_sentences_bold_or_red_the_wrong_spans_and_escape_text():
    tokens = ("to", "new", "york", "<b>*")
    found, wrong = [Span("to", 1, 3), Span("x", 3, 4)], [Span("x", 3, 4)]
    assert marked_markdown(tokens, found, wrong) == "to [new york `to`] **[\\<b\\>\\* `x`]**"
    html = marked_html(tokens, found, wrong)
    assert "<b>*" not in html and "&lt;b&gt;*" in html
    assert re.search(r'class="span bad">&lt;b&gt;\*<sub>x</sub>', html)
    assert '<span class="span">new york<sub>to</sub></span>' in html


def test_report_directory_is_complete_and_self_contained(tmp_path):
    evaluation = build_report(EXAMPLES, PRED_TAGS, PRED_INTENTS, "tiny/test", {"model": "m"})
    out = write_report(evaluation, tmp_path / "report")
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_errors"] == 2 and metrics["per_intent"]["ground"]["recall"] == 0.0
    assert metrics["confusion"]["labels"] == ["airfare", "flight", "ground"]
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    slots = (out / "slots.md").read_text()
    assert "| `to` | 50.00 | 50.00 | 50.00 | 2 | 2 | 1 |" in slots  # denver right, new york not
    assert slots.endswith("| `to` | 1 | 1 | 2 |\n")  # the slot with the most wrong spans
    assert "| `ground` | `flight` | 1 |" in (out / "intents.md").read_text()
    errors = (out / "errors.md").read_text()
    assert "2 of 3 utterances" in errors and "## 1. test/seq.in:2" in errors
    assert "- gold: fares to **[new york `to`]**" in errors
    assert "- intent: `ground` → **`flight`** (wrong)" in errors
    page = (out / "report.html").read_text()
    # Self-contained: the only image is embedded, and nothing is fetched from anywhere.
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png) == (out / "confusion.png").read_bytes()
    assert "test/seq.in:3" in page and "Slots with the most wrong spans" in page


def test_a_file_where_the_report_directory_should_be_is_an_error(tmp_path):
    evaluation = build_report(EXAMPLES, PRED_TAGS, PRED_INTENTS)
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match="taken: expected a directory for the report, found a"):
        write_report(evaluation, tmp_path / "taken")
