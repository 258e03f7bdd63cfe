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

_TOKEN_RE = re.compile(
    "|".join(
        [
            r"(?:" + "|".join(re.escape(a) for a in ABBREVIATIONS) + r")(?!\w)",
            r"\w+(?:[-'’&:/.]\w+)*",  # a word, with in-word punctuation: "6:30", "i'd", "r&b"
            r"\S",  # any other single visible character: punctuation, symbols
        ]
    ),
    re.IGNORECASE,
)


class Tokenizer:
    """Regex tokenizer with character offsets and optional lower-casing."""

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of `text`, each with `text[token.start:token.end] == token.text`."""
        return [Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]

    def normalize(self, word: str) -> str:
        """The form of `word` that is looked up in the vocabulary."""
        if self.lowercase:
            word = word.lower()
        return word.replace("’", "'")

    def normalize_all(self, words: Sequence[str]) -> list[str]:
        return [self.normalize(w) for w in words]
