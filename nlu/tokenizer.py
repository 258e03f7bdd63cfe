"""Split raw user text into tokens that keep their character offsets.

The benchmark data is lower-cased and whitespace-tokenized with no punctuation, while users type
"San Francisco?". The tokenizer splits words from punctuation (keeping in-word apostrophes,
hyphens and ampersands, as the data does: "i'd", "top-rated", "r&b") and `normalize` maps a token
to the form the vocabulary was built from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlu.schema import Token

# Abbreviations whose final period belongs to the word (ATIS writes "st. louis").
ABBREVIATIONS = ("st.", "a.m.", "p.m.", "mr.", "mrs.", "ms.", "dr.", "jr.", "u.s.", "ft.", "mt.")
_ABBREVIATIONS = frozenset(ABBREVIATIONS)

_TOKEN_RE = re.compile(
    r"\w+(?:[-'’&:/.]\w+)*"  # a word, with in-word punctuation: "6:30", "i'd", "r&b"
    r"|\S"  # any other single visible character: punctuation, symbols
)


# normalize_digits: every ASCII digit reads as 0, so "1215" and "1230" are one word.
_ZERO_DIGITS = str.maketrans("123456789", "000000000")


class Tokenizer:
    """Regex tokenizer with character offsets, optional lower-casing and digit folding."""

    def __init__(self, lowercase: bool = True, normalize_digits: bool = False) -> None:
        self.lowercase = lowercase
        self.normalize_digits = normalize_digits

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of `text`, each with `text[token.start:token.end] == token.text`."""
        tokens = []
        at = 0
        for word in _TOKEN_RE.findall(text):
            at = text.find(word, at)  # only whitespace lies between two tokens
            tokens.append(Token(word, at, at + len(word)))
            at += len(word)
        return _join_abbreviations(tokens) if "." in text else tokens

    def normalize(self, word: str) -> str:
        """The form of `word` that is looked up in the vocabulary."""
        return self.normalize_all([word])[0]

    def normalize_all(self, words: Sequence[str]) -> list[str]:
        """`normalize` of each word: lower-cased and digits folded to 0 if asked, typographic
        apostrophes made plain (list comprehensions: a method call per word costs more than the
        work on it)."""
        if self.lowercase:
            words = [w.lower().replace("’", "'") for w in words]
        else:
            words = [w.replace("’", "'") for w in words]
        if self.normalize_digits:
            return [w.translate(_ZERO_DIGITS) for w in words]
        return words


def _join_abbreviations(tokens: list[Token]) -> list[Token]:
    """A word and the period right after it become one token when they spell one of
    `ABBREVIATIONS` ("St" "." -> "St."). A word character after the period would have made
    them one word already ("st.louis")."""
    joined: list[Token] = []
    for token in tokens:
        if token.text == "." and joined:
            word = joined[-1]
            if word.end == token.start and (word.text + ".").lower() in _ABBREVIATIONS:
                joined[-1] = Token(word.text + ".", word.start, token.end)
                continue
        joined.append(token)
    return joined
