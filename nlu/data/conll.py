"""CoNLL column files: `token tag` per line, a blank line between sentences.

```
# intent = flight
fly O
to O
boston B-toloc.city_name

```

A `# intent = X` line before a sentence gives its intent; a sentence without one gets `NO_INTENT`.
Other lines starting with `# ` are comments. With more than two columns (CoNLL-2003 has four)
the first is the token and the last the tag; `-DOCSTART-` lines are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from nlu.data.readers import gather, read_text
from nlu.schema import Example
from nlu.tags import check_tag, repair

NO_INTENT = "none"  # the intent of a sentence with no `# intent = X` line
_META = re.compile(r"#\s*(\w+)\s*=\s*(.*?)\s*$")


def read_conll(path: str | Path, errors: list[str] | None = None) -> list[Example]:
    """Read a CoNLL file into examples.

    Args:
        path: the file.
        errors: if given, a bad sentence is appended here and skipped instead of raised.

    Raises:
        ValueError: a line without a tag, a tag that is not BIO, an intent line with no
            sentence after it.
    """
    path = Path(path)
    sentences = (
        (start, (intent, rows)) for start, intent, rows in _sentences(path, read_text(path))
    )
    return gather(sentences, lambda start, item: _example(path, start, *item), errors, path)


def _sentences(path: Path, text: str):
    """(first line, intent or None, [(lineno, line), ...]) per sentence."""
    intent, intent_line, rows = None, 0, []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("-DOCSTART-"):
            continue
        if stripped and not _is_comment(stripped):
            rows.append((lineno, line))
            continue
        if rows:
            yield rows[0][0], intent, rows
            intent, rows = None, []
        meta = _META.match(stripped)
        if meta and meta.group(1) == "intent":
            if intent is not None:
                raise ValueError(
                    f"{path}:{lineno}: expected one '# intent = ...' line per sentence, "
                    f"found a second one (the first is on line {intent_line})"
                )
            if not meta.group(2):
                raise ValueError(f"{path}:{lineno}: expected an intent after '=', found none")
            intent, intent_line = meta.group(2), lineno
    if rows:
        yield rows[0][0], intent, rows
    elif intent is not None:
        raise ValueError(
            f"{path}:{intent_line}: expected a sentence after '# intent = {intent}', "
            "found the end of the file"
        )


def _is_comment(line: str) -> bool:
    # "# ..." is a comment; a token "#" is written "#<TAB>tag", so it is not one.
    return line == "#" or line.startswith("# ")


def _example(
    path: Path, start: int, intent: str | None, rows: list[tuple[int, str]]
) -> tuple[Example, int]:
    tokens, tags = [], []
    for lineno, line in rows:
        fields = line.split()
        if len(fields) < 2:
            raise ValueError(f"{path}:{lineno}: expected 'token tag', found {line.strip()!r}")
        try:
            check_tag(fields[-1])
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: {e}") from None
        tokens.append(fields[0])
        tags.append(fields[-1])
    fixed_tags, fixed = repair(tags)
    example = Example(
        tuple(tokens), tuple(fixed_tags), intent or NO_INTENT, source=f"{path}:{start}"
    )
    return example, fixed


def dump_conll(examples: Sequence[Example]) -> str:
    """CoNLL text of examples: an intent line (unless `NO_INTENT`), then `token tag` lines.

    Raises:
        ValueError: a token holds whitespace, or an intent a line break.
    """
    lines = []
    for e in examples:
        if any(not t or any(c.isspace() for c in t) for t in e.tokens):
            raise ValueError(f"{e.source}: a CoNLL token cannot hold whitespace: {e.tokens!r}")
        if "\n" in e.intent or e.intent != e.intent.strip():
            raise ValueError(f"{e.source}: a CoNLL intent cannot hold a line break: {e.intent!r}")
        if e.intent != NO_INTENT:
            lines.append(f"# intent = {e.intent}")
        lines.extend(f"{t}\t{g}" if t == "#" else f"{t} {g}" for t, g in zip(e.tokens, e.tags))
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
