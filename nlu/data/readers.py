"""What every reader shares: text decoding, checked examples, errors that name the file and
line, and the warning for repaired tags."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from nlu.schema import Example
from nlu.tags import check_tag, repair

T = TypeVar("T")


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


def read_lines(path: Path) -> list[str]:
    """The lines of a text file that must hold one utterance a line."""
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
