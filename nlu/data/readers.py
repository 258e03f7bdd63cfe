"""Read annotated data into `Example`s, with errors that name the file and line."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from nlu.schema import Example
from nlu.tags import check_tag, repair

T = TypeVar("T")

SEQIO_FILES = ("seq.in", "seq.out", "label")
DATA_DIR_ENV = "NLU_DATA_DIR"


class DataWarning(UserWarning):
    """Something in the data was repaired while reading it."""


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; undecodable bytes are reported with their line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: expected UTF-8 text, found byte {e.object[e.start]:#x}"
        ) from e


def _read_lines(path: Path) -> list[str]:
    lines = read_text(path).splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file, expected one line per utterance")
    return lines


def collect(errors: list[str] | None, error: ValueError) -> None:
    """Append `error` to `errors` and go on reading, or raise it when `errors` is None."""
    if errors is None:
        raise error
    errors.append(str(error))


def gather(
    items: Iterable[tuple[int, T]],
    make: Callable[[int, T], tuple[Example, int]],
    errors: list[str] | None,
    repaired_in: str | Path,
) -> list[Example]:
    """The examples `make(line, item)` builds from numbered items: an item that fails goes to
    `collect`, and one warning names the lines whose tags were repaired (in `repaired_in`)."""
    examples, repaired = [], []
    for lineno, item in items:
        try:
            example, fixed = make(lineno, item)
        except ValueError as e:
            collect(errors, e)
            continue
        examples.append(example)
        if fixed:
            repaired.append(lineno)
    warn_repaired(repaired_in, repaired)
    return examples


def warn_repaired(path: str | Path, lines: list[int]) -> None:
    """One warning for all lines whose orphan `I-x` tags were read as `B-x`."""
    if not lines:
        return
    shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
    warnings.warn(
        f"{path}: {len(lines)} line(s) had an I- tag with no B- before it (line {shown}); "
        "read as B-",
        DataWarning,
        stacklevel=3,
    )


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
    token_lines, tag_lines, labels = (_read_lines(p) for p in paths)
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


def tagged_example(
    tokens: list[str],
    tags: list[str],
    intent: str,
    where: str,
    tags_where: str | None = None,
    intent_where: str | None = None,
    token_source: str = "",
) -> tuple[Example, int]:
    """A checked example from tokens, one BIO tag each and an intent, with `I-x` after `O` read
    as `B-x`; also how many tags were repaired. Errors name `where` (or the tags' or the
    intent's own place, for formats that keep them in other files)."""
    tags_where, intent_where = tags_where or where, intent_where or where
    if not tokens:
        raise ValueError(f"{where}: expected an utterance, found an empty line")
    if len(tokens) != len(tags):
        per = f"one per token {token_source}".strip()
        raise ValueError(f"{tags_where}: expected {len(tokens)} tags ({per}), found {len(tags)}")
    for tag in tags:
        try:
            check_tag(tag)
        except ValueError as e:
            raise ValueError(f"{tags_where}: {e}") from None
    if not intent:
        raise ValueError(f"{intent_where}: expected an intent label, found an empty line")
    fixed_tags, fixed = repair(tags)
    return Example(tuple(tokens), tuple(fixed_tags), intent, source=where), fixed


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
