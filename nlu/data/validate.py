"""Check data before training on it: what the readers reject or repair, and what only shows
across utterances and files (conflicting labels, labels missing from train, train/test overlap).

The first path is the training data; the others (dev, test) are checked against it.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nlu.config import HFConfig
from nlu.data.formats import read_examples
from nlu.data.readers import DataWarning
from nlu.data.stats import intents_of
from nlu.schema import INTENT_SEPARATOR, Example

# What a reader's message is about, for grouping; the first pattern that matches wins.
_KINDS = (
    (r"tags \(one per token|expected \d+ tags", "misaligned"),
    (r"BIO tag|I- tag with no B-", "bio"),
    (r"expected an utterance|empty text", "empty"),
    (r"inside a word|do not share a token|covering a word|entity span", "span"),
    (r"skipped:", "skipped"),
    (r"expected the same number of lines", "misaligned"),
)


@dataclass(frozen=True)
class Finding:
    """One problem: `message` starts with the file and line it is about."""

    level: Literal["error", "warning"]
    kind: str  # misaligned, bio, empty, span, skipped, format, conflict, unseen, overlap
    message: str


@dataclass(frozen=True)
class Validation:
    """What `validate` read and found."""

    files: dict[str, int]  # path -> utterances read
    findings: list[Finding]
    # path -> utterances by the number of intents their label joins (see `validate`)
    intents_per_utterance: dict[str, Counter[int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


def validate(
    paths: Sequence[str | Path],
    fmt: str = "auto",
    hf: HFConfig | None = None,
    separator: str = INTENT_SEPARATOR,
) -> Validation:
    """Read every path, collecting all problems instead of stopping at the first.

    Errors make the data unusable as written (unreadable files, tags that do not match tokens,
    tags that are not BIO, empty utterances). Warnings are repairs and suspicions: boundaries
    inside words, conflicting labels, dev/test labels missing from train, train/test overlap.
    """
    findings: list[Finding] = []
    read: list[tuple[str, list[Example]]] = []
    for path in paths:
        examples, found = _read(str(path), fmt, hf)
        findings += found
        read.append((str(path), examples))
    findings += _conflicts([e for _, examples in read for e in examples])
    if read:
        train = read[0][1]
        for _, examples in read[1:]:
            findings += _unseen(train, examples)
            findings += _overlap(train, examples)
    sizes = {
        path: Counter(len(intents_of(e.intent, separator)) for e in examples)
        for path, examples in read
    }
    return Validation({path: len(examples) for path, examples in read}, findings, sizes)


def _kind(message: str, default: str) -> str:
    return next((kind for pattern, kind in _KINDS if re.search(pattern, message)), default)


def _read(path: str, fmt: str, hf: HFConfig | None) -> tuple[list[Example], list[Finding]]:
    errors: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            examples = read_examples(path, fmt, errors=errors, hf=hf)
        except (FileNotFoundError, ValueError) as e:
            examples = []
            errors.append(str(e))
    for w in caught:
        if not issubclass(w.category, DataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    found = [Finding("error", _kind(e, "format"), e) for e in errors]
    found += [
        Finding("warning", _kind(str(w.message), "format"), str(w.message))
        for w in caught
        if issubclass(w.category, DataWarning)
    ]
    if not examples and not errors:
        found.append(Finding("error", "empty", f"{path}: expected utterances, found none"))
    return examples, found


def _key(example: Example) -> tuple[str, ...]:
    return tuple(t.lower() for t in example.tokens)


def _conflicts(examples: Sequence[Example]) -> list[Finding]:
    first: dict[tuple[str, ...], Example] = {}
    found = []
    for e in examples:
        seen = first.setdefault(_key(e), e)
        if seen is e:
            continue
        what = []
        if seen.intent != e.intent:
            what.append(f"intent {e.intent!r} here, {seen.intent!r} there")
        if seen.tags != e.tags:
            what.append(f"tags {' '.join(e.tags)!r} here, {' '.join(seen.tags)!r} there")
        if what:
            found.append(
                Finding(
                    "warning",
                    "conflict",
                    f"{e.source}: same utterance as {seen.source} ({' '.join(e.tokens)!r}) with "
                    f"different labels: {'; '.join(what)}",
                )
            )
    return found


def _unseen(train: Sequence[Example], other: Sequence[Example]) -> list[Finding]:
    train_intents = {e.intent for e in train}
    train_tags = {t for e in train for t in e.tags}
    where: dict[tuple[str, str], str] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for e in other:
        labels = [("intent", e.intent)] if e.intent not in train_intents else []
        labels += [("tag", t) for t in dict.fromkeys(e.tags) if t not in train_tags]
        for label in labels:
            where.setdefault(label, e.source)
            counts[label] += 1
    return [
        Finding(
            "warning",
            "unseen",
            f"{where[label]}: {label[0]} {label[1]!r} is not in the training data "
            f"({n} utterance{'s' if n > 1 else ''} here)",
        )
        for label, n in counts.items()
    ]


def _overlap(train: Sequence[Example], other: Sequence[Example]) -> list[Finding]:
    in_train: dict[tuple[str, ...], str] = {}
    for e in train:
        in_train.setdefault(_key(e), e.source)
    found = []
    for e in other:
        key = _key(e)
        if key in in_train:
            found.append(
                Finding(
                    "warning",
                    "overlap",
                    f"{e.source}: utterance also in the training data at {in_train[key]}: "
                    f"{' '.join(e.tokens)!r}",
                )
            )
    return found
