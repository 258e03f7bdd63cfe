from hypothesis import given
from hypothesis import strategies as st

from nlu.tokenizer import Tokenizer


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


def test_lowercase_is_an_option():
    assert words("London", lowercase=False) == ["London"]
    assert words("London") == ["london"]
    assert words("What’s") == ["what's"]


@given(st.text())
def test_offsets_always_point_into_the_text(text):
    for token in Tokenizer().tokenize(text):
        assert text[token.start : token.end] == token.text
        assert token.text.strip() == token.text != ""
