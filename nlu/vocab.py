"""String <-> id vocabularies for words, characters, tags and intents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PAD = "<pad>"
UNK = "<unk>"
PAD_ID, UNK_ID = 0, 1


class Vocab:
    """An ordered list of strings with reverse lookup.

    With `specials=True`, id 0 is PAD and id 1 is UNK, and unknown strings map to UNK. Without
    specials (tags, intents) every id is a real label and unknown strings raise `KeyError`.
    """

    def __init__(self, items: Sequence[str], specials: bool = True) -> None:
        self.specials = specials
        prefix = [PAD, UNK] if specials else []
        self.itos: list[str] = prefix + [s for s in items if s not in (PAD, UNK)]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary items must be unique")

    @classmethod
    def build(
        cls, counts: Counter[str] | Iterable[str], min_count: int = 1, specials: bool = True
    ) -> Vocab:
        """Vocabulary of the items seen at least `min_count` times, most frequent first."""
        counts = counts if isinstance(counts, Counter) else Counter(counts)
        kept = [
            s for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count
        ]
        return cls(kept, specials=specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def index(self, item: str) -> int:
        if self.specials:
            return self.stoi.get(item, 1)
        return self.stoi[item]

    def lookup(self, items: Iterable[str]) -> list[int]:
        return [self.index(s) for s in items]

    def to_json(self) -> dict[str, Any]:
        return {"specials": self.specials, "items": self.itos[2:] if self.specials else self.itos}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocab:
        return cls(data["items"], specials=data["specials"])


@dataclass(frozen=True)
class Vocabs:
    """All the vocabularies a model needs, built from the training split only."""

    words: Vocab
    chars: Vocab
    tags: Vocab
    intents: Vocab

    def to_json(self) -> dict[str, Any]:
        return {
            name: getattr(self, name).to_json() for name in ("words", "chars", "tags", "intents")
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabs:
        missing = [k for k in ("words", "chars", "tags", "intents") if k not in data]
        if missing:
            raise ValueError(f"vocabulary is missing {missing}")
        return cls(**{k: Vocab.from_json(data[k]) for k in ("words", "chars", "tags", "intents")})


def build_vocabs(
    sentences: Iterable[Sequence[str]],
    tag_sequences: Iterable[Sequence[str]],
    intents: Iterable[str],
    min_word_count: int = 1,
) -> Vocabs:
    """Vocabularies from normalized training tokens, their tags and their intents.

    Tags always include "O" first, so that id 0 is the outside tag.
    """
    word_counts: Counter[str] = Counter()
    char_counts: Counter[str] = Counter()
    for tokens in sentences:
        word_counts.update(tokens)
        for token in tokens:
            char_counts.update(token)
    tag_counts = Counter(t for tags in tag_sequences for t in tags)
    tag_counts.pop("O", None)
    tags = Vocab(["O"] + sorted(tag_counts), specials=False)
    return Vocabs(
        words=Vocab.build(word_counts, min_count=min_word_count),
        chars=Vocab.build(char_counts),
        tags=tags,
        intents=Vocab(sorted(set(intents)), specials=False),
    )
