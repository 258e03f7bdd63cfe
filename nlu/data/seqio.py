"""The `seq.in` / `seq.out` / `label` layout of the ATIS and SNIPS benchmarks: its reader, its
writer, and where the benchmarks live (`NLU_DATA_DIR`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nlu.data.readers import gather, read_lines, tagged_example
from nlu.schema import Example

SEQIO_FILES = ("seq.in", "seq.out", "label")
DATA_DIR_ENV = "NLU_DATA_DIR"


def read_seqio(directory: str | os.PathLike, errors: list[str] | None = None) -> list[Example]:
    """Read a `seq.in` / `seq.out` / `label` folder: tokens, BIO tags and intent per line.

    Args:
        directory: the folder holding the three files.
        errors: if given, a bad line is appended here and skipped instead of raised.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: line counts differ, a line has as many tags as tokens, a tag is not BIO.
    """
    directory = Path(directory)
    paths = [directory / name for name in SEQIO_FILES]
    token_lines, tag_lines, labels = (read_lines(p) for p in paths)
    counts = {p.name: len(lines) for p, lines in zip(paths, (token_lines, tag_lines, labels))}
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{name} has {n}" for name, n in counts.items())
        raise ValueError(
            f"{directory}: expected the same number of lines in each file, found {found}"
        )
    rows = enumerate(zip(token_lines, tag_lines, labels), start=1)
    return gather(rows, lambda n, lines: _seqio_example(paths, n, *lines), errors, paths[1])


def _seqio_example(
    paths: list[Path], lineno: int, words: str, tags: str, label: str
) -> tuple[Example, int]:
    where_in, where_out, where_label = (f"{p}:{lineno}" for p in paths)
    return tagged_example(
        words.split(), tags.split(), label.strip(), where_in, where_out, where_label, "in seq.in"
    )


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


def data_dir() -> Path:
    """The benchmark data folder, from the `NLU_DATA_DIR` environment variable."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        raise FileNotFoundError(
            f"{DATA_DIR_ENV} is not set; point it at the folder holding atis/ and snips/ "
            "(for example: export NLU_DATA_DIR=../shared/datasets)"
        )
    return Path(value)


def resolve_split(dataset: str, split: str) -> Path:
    """Folder of `split` of `dataset`: a path as given, or a name under `NLU_DATA_DIR`."""
    path = Path(dataset)
    if (path / split).is_dir():
        return path / split
    if path.is_dir() and all((path / n).is_file() for n in SEQIO_FILES):
        return path
    if os.sep in dataset or path.is_absolute():
        raise FileNotFoundError(f"{path / split}: no such data folder")
    root = data_dir()
    folder = root / dataset / split
    if not folder.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise FileNotFoundError(
            f"{folder}: no such data folder (NLU_DATA_DIR={root}; datasets there: {available})"
        )
    return folder
