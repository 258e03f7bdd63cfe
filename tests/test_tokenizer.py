import re

from hypothesis import given
from hypothesis import strategies as st

from nlu.tokenizer import ABBREVIATIONS, Tokenizer

# The tokenizer as one regular expression, abbreviations first: what `Tokenizer.tokenize` must
# equal (it joins abbreviations after a simpler expression, at half the cost).
REFERENCE = re.compile(
    r"(?:" + "|".join(re.escape(a) for a in ABBREVIATIONS) + r")(?!\w)"
    r"|\w+(?:[-'’&:/.]\w+)*|\S",
    re.IGNORECASE,
)


def words(text: str, lowercase: bool = True) -> list[str]:
    tok = Tokenizer(lowercase)
    return [tok.normalize(t.text) for t in tok.tokenize(text)]


def test_splits_punctuation_and_keeps_offsets():
    text = "Book a flight to San Francisco?"
    tokens = Tokenizer().tokenize(text)
    assert [t.text for t in tokens] == ["Book", "a", "flight", "to", "San", "Francisco", "?"]
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert (tokens[-2].start, tokens[-2].end) == (21, 30)


def test_keeps_in_word_punctuation_like_the_benchmarks():
    assert words("I'd like r&b, top-rated at 6:30") == [
        "i'd",
        "like",
        "r&b",
        ",",
        "top-rated",
        "at",
        "6:30",
    ]
    assert words("from St. Louis.") == ["from", "st.", "louis", "."]


def test_normalize_folds_digits_only_when_asked():
    folding = Tokenizer(normalize_digits=True)
    assert folding.normalize_all(["Flight", "1215", "6:30pm", "b52"]) == [
        "flight",
        "0000",
        "0:00pm",
        "b00",
    ]
    assert Tokenizer().normalize("1215") == "1215"
    assert [t.text for t in folding.tokenize("at 6:30")] == ["at", "6:30"]  # offsets unchanged


def test_lowercase_is_an_option():
    assert words("London", lowercase=False) == ["London"]
    assert words("London") == ["london"]
    assert words("What’s") == ["what's"]


@given(st.text())
def test_offsets_always_point_into_the_text(text):
    for token in Tokenizer().tokenize(text):
        assert text[token.start : token.end] == token.text
        assert token.text.strip() == token.text != ""


@given(
    st.lists(
        st.sampled_from(
            [
                "st",
                "St",
                "a",
                "m",
                "p",
                "mrs",
                "u",
                "s",
                "x1",
                "é",
                "_",
                ".",
                ".",
                "-",
                "'",
                "?",
                " ",
                "  ",
            ]
        )
    ).map("".join)
)
def test_equals_the_one_expression_reference(text):
    expected = [(m.group(), m.start(), m.end()) for m in REFERENCE.finditer(text)]
    assert [tuple(t) for t in Tokenizer().tokenize(text)] == expected


def test_abbreviations_keep_their_period():
    assert words("a.m. or p.m.? U.S. mt. rainier, st.louis") == [
        "a.m.", "or", "p.m.", "?", "u.s.", "mt.", "rainier", ",", "st.louis",
    ]  # fmt: skip


def test_tokens_are_real_tokens():
    from nlu.schema import Token

    (token,) = Tokenizer().tokenize("London")
    assert type(token) is Token and token == Token("London", 0, 6) and token.end == 6
