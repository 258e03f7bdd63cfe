"""Readers and writers of every format: what they read, what they reject (with file:line), and
round trips A -> B -> A."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlu.data.conll import NO_INTENT, read_conll
from nlu.data.formats import detect_format, dump_examples, read_examples, write_examples
from nlu.data.jsonl import read_jsonl
from nlu.data.rasa import read_rasa
from nlu.data.readers import DataWarning
from nlu.data.seqio import read_seqio
from nlu.data.snips import read_snips
from nlu.schema import CharSpan, Example
from tests.conftest import FIXTURES, TINY


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- CoNLL -------------------------------------------------------------------------------------


def test_conll_reads_intents_comments_and_extra_columns(tmp_path):
    path = write(
        tmp_path / "a.conll",
        "-DOCSTART- -X- O O\n\n# sent_id = 1\n# intent = flight\nfly O\nto O\nnew B-city\n"
        "york I-city\n\nhello NN O\n#\tO\n",
    )
    first, second = read_conll(path)
    assert first == Example(("fly", "to", "new", "york"), ("O", "O", "B-city", "I-city"), "flight")
    assert first.source == f"{path}:5"
    assert second.tokens == ("hello", "#") and second.intent == NO_INTENT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fly O\nboston\n", r"a\.conll:2: expected 'token tag', found 'boston'"),
        ("fly O\nboston X-city\n", r"a\.conll:2: expected a BIO tag .* found 'X-city'"),
        ("fly O\n\n# intent = x\n", r"a\.conll:3: expected a sentence after '# intent = x'"),
        ("# intent = x\n# intent = y\nfly O\n", r"a\.conll:2: expected one '# intent = \.\.\.'"),
        ("# intent =\nfly O\n", r"a\.conll:1: expected an intent after '=', found none"),
    ],
)
def test_conll_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_conll(write(tmp_path / "a.conll", text))


def test_conll_repairs_orphan_inside_tags_with_a_warning(tmp_path):
    path = write(tmp_path / "a.conll", "to O\nboston I-city\n\nhi O\n\nin O\nrome I-city\n")
    with pytest.warns(DataWarning, match=r"2 line\(s\) had an I- tag .*\(line 1, 6\)"):
        examples = read_conll(path)
    assert examples[0].tags == ("O", "B-city")


# --- JSONL -------------------------------------------------------------------------------------


def test_jsonl_reads_both_shapes(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        '{"text": "Fly to New York!", "intent": "flight", '
        '"entities": [{"start": 7, "end": 15, "entity": "city", "value": "NYC"}]}\n'
        "\n"
        '{"tokens": ["hi"], "tags": ["O"], "intent": "greet"}\n',
    )
    text, tokens = read_jsonl(path)
    assert text.tokens == ("Fly", "to", "New", "York", "!")
    assert text.tags == ("O", "O", "B-city", "I-city", "O")
    assert text.text == "Fly to New York!" and text.entities == (CharSpan("city", 7, 15, "NYC"),)
    assert tokens == Example(("hi",), ("O",), "greet") and tokens.source == f"{path}:3"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "hi", "intent": "x"', r"expected a JSON object, found invalid JSON \(Expecting"),
        ('["hi"]', "expected a JSON object, found list"),
        ('{"text": "hi"}', "expected str field 'intent', found none"),
        ('{"text": "hi", "intent": 3}', "expected str field 'intent', found 3"),
        ('{"words": ["hi"], "intent": "x"}', r"expected 'text' \(with 'entities'\) or 'tokens'"),
        ('{"tokens": ["a", "b"], "tags": ["O"], "intent": "x"}', "expected 2 tags .*found 1"),
        ('{"tokens": ["a"], "tags": ["city"], "intent": "x"}', "expected a BIO tag"),
        ('{"text": "hi", "intent": "x", "entities": [{"end": 2, "entity": "a"}]}',
         r"entities\[0\]: expected int field 'start', found none"),
        ('{"text": "  ", "intent": "x"}', "expected an utterance, found empty text"),
    ],
)  # fmt: skip
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = write(tmp_path / "a.jsonl", '{"tokens": ["ok"], "tags": ["O"], "intent": "x"}\n' + line)
    with pytest.raises(ValueError, match=r"a\.jsonl:2: " + message):
        read_jsonl(path)


def test_errors_can_be_collected_instead_of_raised(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "hi"}\n{"text": "yo", "intent": "x"}\n[]\n')
    errors: list[str] = []
    examples = read_jsonl(path, errors)
    assert [e.text for e in examples] == ["yo"]
    assert [e.split(": ")[0] for e in errors] == [f"{path}:1", f"{path}:3"]


# --- span alignment ----------------------------------------------------------------------------


def test_boundary_inside_a_word_is_reported_and_extended(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        '{"text": "flights to bostonian hotels", "intent": "x", '
        '"entities": [{"start": 11, "end": 17, "entity": "city"}]}\n',
    )
    with pytest.warns(DataWarning) as caught:
        (example,) = read_jsonl(path)
    assert str(caught[0].message) == (
        f"{path}:1: entity 'city' = 'boston' ends inside a word of 'flights to bostonian hotels'; "
        "extended to 'bostonian'"
    )
    assert example.tags == ("O", "O", "B-city", "O")
    assert example.entities == (CharSpan("city", 11, 17),)  # the annotation is kept as written


def test_spaces_around_a_span_are_trimmed_silently(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        '{"text": "to new york now", "intent": "x", '
        '"entities": [{"start": 2, "end": 12, "entity": "city"}]}\n',
    )
    assert read_jsonl(path)[0].tags == ("O", "B-city", "I-city", "O")


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        ([[3, 11, "a"], [7, 11, "b"]], r"expected entities that do not share a token, found 'b'"),
        ([[3, 40, "a"]], r"expected an entity span 0 <= start < end <= 12, found 'a' at 3\.\.40"),
        ([[2, 3, "a"]], r"expected an entity covering a word, found 'a' = ' '"),
    ],
)
def test_spans_that_bio_cannot_hold_are_errors(tmp_path, entities, message):
    spans = [{"start": s, "end": e, "entity": label} for s, e, label in entities]
    record = {"text": "to new york!", "intent": "x", "entities": spans}
    path = write(tmp_path / "a.jsonl", json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"a\.jsonl:1: " + message):
        read_jsonl(path)


# --- Rasa --------------------------------------------------------------------------------------

RASA = """\
version: "3.1"
nlu:
- intent: book
  examples: |
    - fly to [Boston](city)
    - from [NYC]{"entity": "city", "value": "New York", "role": "from"} to [LA](city:Los Angeles)

    - plain text with [brackets] kept
- synonym: New York
  examples: |
    - NYC
- regex: zip
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Boston
- intent: greet
  examples:
  - text: hello there
    metadata: {sentiment: neutral}
responses:
  utter_greet: [{text: hi}]
"""


def test_rasa_reads_entities_in_every_markup(tmp_path):
    path = write(tmp_path / "nlu.yml", RASA)
    with pytest.warns(DataWarning) as caught:
        examples = read_rasa(path)
    assert [str(w.message) for w in caught] == [
        f"{path}:9: synonym 'New York' skipped: the model tags spans; map synonyms to values "
        "after parsing",
        f"{path}:12: regex 'zip' skipped: regex features are not used by this model",
        f"{path}:15: lookup 'city' skipped: lookup-table features are not used by this model",
    ]
    assert [e.source for e in examples] == [f"{path}:{n}" for n in (5, 6, 8, 20)]
    assert examples[0].tags == ("O", "O", "B-city") and examples[0].intent == "book"
    assert examples[1].text == "from NYC to LA"
    assert examples[1].entities == (
        CharSpan("city", 5, 8, "New York"),
        CharSpan("city", 12, 14, "Los Angeles"),
    )
    assert examples[2].text == "plain text with [brackets] kept" and examples[2].entities == ()
    assert examples[3].text == "hello there" and examples[3].intent == "greet"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nlu:\n- intent: a\n  examples: [\n", r"nlu\.yml:4: expected Rasa YAML, found invalid"),
        ("version: '3.1'\n", r"nlu\.yml:1: expected an 'nlu:' list, found keys \['version'\]"),
        ("nlu:\n- intent: a\n", r"nlu\.yml:2: expected 'examples:' under intent 'a'"),
        ("nlu:\n- story: a\n", r"nlu\.yml:2: expected an item with one of intent, synonym"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    oops\n",
         r"nlu\.yml:5: expected an example line '- text', found 'oops'"),
        ("nlu:\n- intent: a\n  examples: |\n    - [x]{entity: y}\n",
         r'nlu\.yml:4: expected \{"entity": "type", \.\.\.\} after \[text\], found \{entity: y'),
    ],
)  # fmt: skip
def test_rasa_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_rasa(write(tmp_path / "nlu.yml", text))


def test_rasa_writer_refuses_text_its_markup_cannot_hold():
    example = Example(("see", "[a](b)"), ("O", "O"), "x", text="see [a](b)")
    with pytest.raises(ValueError, match=r"Rasa markup cannot hold the text 'see \[a\]\(b\)'"):
        dump_examples([example], "rasa")


# --- snips -------------------------------------------------------------------------------------


def test_snips_joins_chunks_and_tags_slot_names():
    examples = read_snips(FIXTURES / "snips_dataset.json")
    first = examples[0]
    assert first.text == "turn on the lights in the kitchen" and first.intent == "turnLightOn"
    assert first.entities == (CharSpan("room", 26, 33),)
    assert first.tags[-1] == "B-room" and first.source.endswith("snips_dataset.json:6")
    temperature = examples[6]
    assert temperature.tags == ("O", "O", "B-room", "O", "B-temperature", "I-temperature")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"intents": {\n  "a": {"utterances": [\n    {"data": [{"text": "hi"}]},\n'
         '    {"dat": []}]}}}', r"s\.json:4: expected an utterance with a list 'data'"),
        ('{"intents": {"a": {"utterances": [{"data": [\n  {"text": "x", "entity": "e"}]}]}}}',
         r"s\.json:2: expected a 'slot_name' with entity 'e', found none"),
        ('{"intents": {"a": {"utterances": [{"data": [\n  {"txt": "x"}]}]}}}',
         r"s\.json:2: expected a chunk with a string 'text'"),
        ('{"intents": {\n  "a": {"utterances": [}\n}', r"s\.json:2: expected valid JSON, found"),
        ('{"language": "en"}', r"s\.json:1: expected an object with an 'intents' object"),
    ],
)  # fmt: skip
def test_snips_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_snips(write(tmp_path / "s.json", text))


# --- every reader: bytes that are not UTF-8 ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("a.conll", b"fly O\n"),
        ("a.jsonl", b'{"tokens": ["a"], "tags": ["O"], "intent": "x"}\n'),
        ("nlu.yml", b"nlu:\n"),
        ("s.json", b'{"intents": {}}\n'),
    ],
)
def test_undecodable_bytes_name_the_line(tmp_path, name, good):
    path = tmp_path / name
    path.write_bytes(good + b"caf\xe9\n")
    with pytest.raises(ValueError, match=rf"{name}:2: expected UTF-8 text, found byte 0xe9"):
        read_examples(path)


# --- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.conll", "fly O\n", "conll"),
        ("a.txt", "# intent = x\nfly O\n", "conll"),
        ("a.jsonl", "{}\n", "jsonl"),
        ("a.json", '{"tokens": ["a"], "tags": ["O"], "intent": "x"}\n', "jsonl"),
        ("a.json", '{\n  "intents": {}\n}\n', "snips"),
        ("nlu.yml", "nlu:\n", "rasa"),
        ("data", 'version: "3.1"\nnlu:\n', "rasa"),
        ("a.csv", "text,intent\n", "hf"),
    ],
)
def test_format_is_detected_from_extension_and_content(tmp_path, name, text, fmt):
    assert detect_format(write(tmp_path / name, text)) == fmt


def test_detection_of_folders_and_what_cannot_be_told(tmp_path):
    assert detect_format(TINY / "train") == "seqio"
    with pytest.raises(ValueError, match=r"expected a folder with seq\.in, seq\.out, label"):
        detect_format(TINY)
    with pytest.raises(ValueError, match="name the format"):
        detect_format(write(tmp_path / "a.txt", "hello\n"))
    with pytest.raises(FileNotFoundError, match="a Hugging Face hub dataset needs format hf"):
        detect_format(tmp_path / "user/dataset")
    with pytest.raises(ValueError, match="expected at least one utterance, found none"):
        read_examples(write(tmp_path / "empty.conll", "\n\n"))


def test_format_can_be_forced(tmp_path):
    path = write(tmp_path / "train.txt", "fly O\nboston B-city\n")
    assert read_examples(path, "conll")[0].tokens == ("fly", "boston")
    with pytest.raises(ValueError, match="unknown data format 'xml'; expected auto or one of"):
        read_examples(path, "xml")


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["jsonl", "conll"])
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_seqio_round_trip_is_byte_identical(tmp_path, via, split):
    middle = write_examples(read_seqio(TINY / split), via, tmp_path / f"data.{via}")
    back = write_examples(read_examples(middle, via), "seqio", tmp_path / "back")
    for name in ("seq.in", "seq.out", "label"):
        assert (back / name).read_bytes() == (TINY / split / name).read_bytes()


def round_trip(examples, a, b, tmp_path):
    """Write as a, read, write as b, read, write as a again: the text must not change."""
    first = write_examples(examples, a, tmp_path / f"1.{a}")
    middle = write_examples(read_examples(first, a), b, tmp_path / f"2.{b}")
    again = write_examples(read_examples(middle, b), a, tmp_path / f"3.{a}")
    return first, again


@pytest.mark.parametrize(
    ("a", "b"),
    [("conll", "jsonl"), ("jsonl", "conll"), ("seqio", "conll"), ("conll", "seqio")],
)
def test_token_formats_round_trip(tmp_path, a, b):
    first, again = round_trip(read_seqio(TINY / "train"), a, b, tmp_path)
    for name in ("seq.in", "seq.out", "label") if a == "seqio" else [""]:
        assert (again / name if name else again).read_text() == (
            first / name if name else first
        ).read_text()
    assert read_examples(again, a) == read_examples(first, a)


@pytest.mark.parametrize(("a", "b"), [("rasa", "jsonl"), ("jsonl", "rasa")])
def test_text_formats_round_trip_with_spans_and_values(tmp_path, a, b):
    with pytest.warns(DataWarning, match="synonym"):
        examples = read_examples(FIXTURES / "rasa_nlu.yml")
    first, again = round_trip(examples, a, b, tmp_path)
    assert again.read_text() == first.read_text()
    back = read_examples(again, a)
    assert back == examples and any(s.value == "NYC" for e in back for s in e.entities)


def test_rasa_fixture_written_as_rasa_is_the_same_data(tmp_path):
    with pytest.warns(DataWarning, match="synonym"):
        examples = read_rasa(FIXTURES / "rasa_nlu.yml")
    copy = write_examples(examples, "rasa", tmp_path / "copy.yml")
    assert read_rasa(copy) == examples


_WORD = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=6)
_TAG = st.sampled_from(["O", "B-a", "I-a", "B-b.c", "I-b.c"])


@st.composite
def _examples(draw):
    n = draw(st.integers(1, 6))
    tags = draw(st.lists(_TAG, min_size=n, max_size=n))
    fixed, previous = [], "O"
    for tag in tags:  # only well-formed BIO: readers repair the rest, which is not a round trip
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        fixed.append(tag)
        previous = tag
    intent = draw(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8))
    return Example(tuple(draw(st.lists(_WORD, min_size=n, max_size=n))), tuple(fixed), intent)


@settings(max_examples=50, deadline=None)
@given(st.lists(_examples(), min_size=1, max_size=4))
def test_any_token_example_survives_jsonl_conll_and_seqio(tmp_path_factory, examples):
    tmp = tmp_path_factory.mktemp("rt")
    for fmt in ("jsonl", "conll", "seqio"):
        path = write_examples(examples, fmt, tmp / fmt)
        assert read_examples(path, fmt) == examples, fmt
