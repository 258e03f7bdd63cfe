"""The `seq.in` / `seq.out` / `label` layout of the ATIS and SNIPS benchmarks (read by
`nlu.data.readers.read_seqio`), and its writer."""

from __future__ import annotations

from collections.abc import Sequence

from nlu.data.readers import SEQIO_FILES, read_seqio
from nlu.schema import Example

__all__ = ["dump_seqio", "read_seqio"]


def dump_seqio(examples: Sequence[Example]) -> dict[str, str]:
    """File name -> text of the three files: tokens, tags and intent, one utterance a line.

    Raises:
        ValueError: no examples, a token holding whitespace, or an intent holding a line break.
    """
    if not examples:
        raise ValueError("expected at least one example to write, found none")
    words, tags, labels = [], [], []
    for e in examples:
        if any(not t or any(c.isspace() for c in t) for t in e.tokens):
            raise ValueError(
                f"{e.source}: seq.in cannot hold a token with whitespace: {e.tokens!r}"
            )
        if "\n" in e.intent or e.intent != e.intent.strip():
            raise ValueError(f"{e.source}: label cannot hold the intent {e.intent!r}")
        words.append(" ".join(e.tokens) + "\n")
        tags.append(" ".join(e.tags) + "\n")
        labels.append(e.intent + "\n")
    return dict(zip(SEQIO_FILES, ("".join(words), "".join(tags), "".join(labels))))
