"""Counts that describe a dataset: utterances, tokens, intents (and how many a message carries),
slot types, OOV rate, lengths."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nlu.schema import INTENT_SEPARATOR, Example
from nlu.tags import spans
from nlu.tokenizer import Tokenizer

LENGTH_BIN = 5  # tokens per bar of the length histogram


@dataclass(frozen=True)
class SplitStats:
    """One file or folder of examples; `oov_*` compare it with the first (training) split."""

    path: str
    utterances: int
    tokens: int
    words: int  # distinct words after lower-casing
    max_length: int
    intents: Counter[str]
    slots: Counter[str]  # spans per slot type
    lengths: Counter[int]  # utterances per length bin (first length of the bin: 1, 6, 11, ...)
    oov_tokens: int | None = None  # tokens whose word never occurs in train (None for train)
    oov_words: int | None = None
    # Utterances by the number of intents their label joins ("a#b": 2), and the single intents.
    intents_per_utterance: Counter[int] = field(default_factory=Counter)
    single_intents: Counter[str] = field(default_factory=Counter)

    @property
    def oov_rate(self) -> float | None:
        """Percent of tokens whose word is not in the training split."""
        if self.oov_tokens is None:
            return None
        return 100.0 * self.oov_tokens / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "utterances": self.utterances,
            "tokens": self.tokens,
            "words": self.words,
            "max_length": self.max_length,
            "intents": dict(self.intents.most_common()),
            "slots": dict(self.slots.most_common()),
            "lengths": {f"{b}-{b + LENGTH_BIN - 1}": n for b, n in sorted(self.lengths.items())},
            "oov_rate": self.oov_rate,
            "oov_words": self.oov_words,
            "intents_per_utterance": {
                str(n): c for n, c in sorted(self.intents_per_utterance.items())
            },
            "single_intents": dict(self.single_intents.most_common()),
        }


def intents_of(label: str, separator: str = INTENT_SEPARATOR) -> list[str]:
    """The single intents a label joins: "atis_flight#atis_airfare" -> both."""
    return label.split(separator) if separator else [label]


def split_stats(
    path: str,
    examples: Sequence[Example],
    train: Sequence[Example] | None = None,
    separator: str = INTENT_SEPARATOR,
) -> SplitStats:
    """Counts of `examples`; with `train`, also how many of their words train lacks. Intent
    labels joined by `separator` count as that many intents ("" : never)."""
    normalize = Tokenizer(lowercase=True).normalize
    words = Counter(normalize(t) for e in examples for t in e.tokens)
    oov_tokens = oov_words = None
    if train is not None:
        known = {normalize(t) for e in train for t in e.tokens}
        unknown = [w for w in words if w not in known]
        oov_words = len(unknown)
        oov_tokens = sum(words[w] for w in unknown)
    return SplitStats(
        path=path,
        utterances=len(examples),
        tokens=sum(words.values()),
        words=len(words),
        max_length=max((len(e.tokens) for e in examples), default=0),
        intents=Counter(e.intent for e in examples),
        slots=Counter(s.label for e in examples for s in spans(e.tags)),
        lengths=Counter(
            (len(e.tokens) - 1) // LENGTH_BIN * LENGTH_BIN + 1 for e in examples if e.tokens
        ),
        oov_tokens=oov_tokens,
        oov_words=oov_words,
        intents_per_utterance=Counter(len(intents_of(e.intent, separator)) for e in examples),
        single_intents=Counter(i for e in examples for i in intents_of(e.intent, separator)),
    )


def dataset_stats(
    splits: Sequence[tuple[str, Sequence[Example]]], separator: str = INTENT_SEPARATOR
) -> list[SplitStats]:
    """Stats of each (path, examples); every split after the first is compared with the first."""
    train = splits[0][1] if splits else None
    return [
        split_stats(path, examples, train if i > 0 else None, separator)
        for i, (path, examples) in enumerate(splits)
    ]
