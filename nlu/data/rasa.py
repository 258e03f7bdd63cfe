"""Rasa 3.x NLU training data (YAML).

```
version: "3.1"
nlu:
- intent: book_flight
  examples: |
    - fly to [Boston](city)
    - a flight to [NYC]{"entity": "city", "value": "New York"}
```

Entities are `[text](type)`, `[text](type:value)` or `[text]{"entity": "type", "value": ...}`
(roles and groups are ignored). `synonym`, `regex` and `lookup` items are skipped with a one-line
`DataWarning` each: the model tags spans and does not use regex or lookup features.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from nlu.data.align import example_from_text, text_of
from nlu.data.readers import DataWarning, collect, read_text
from nlu.schema import CharSpan, Example

_MARKUP = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\})"
)
_SKIPPED = {
    "synonym": "the model tags spans; map synonyms to values after parsing",
    "regex": "regex features are not used by this model",
    "lookup": "lookup-table features are not used by this model",
}


def read_rasa(path: str | Path, errors: list[str] | None = None) -> list[Example]:
    """Read the `nlu:` intents of a Rasa YAML file into examples.

    Args:
        path: the file.
        errors: if given, a bad example is appended here and skipped instead of raised.

    Raises:
        ValueError: invalid YAML, no `nlu:` list, an item without `examples`, bad entity markup.
    """
    path = Path(path)
    text = read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(
            f"{path}{line}: expected Rasa YAML, found invalid YAML ({getattr(e, 'problem', e)})"
        ) from None
    items = _nlu_items(path, root)
    examples: list[Example] = []
    for item in items.value:
        try:
            for lineno, line, intent in _example_lines(path, item):
                where = f"{path}:{lineno}"
                try:
                    examples.append(_example(line, intent, where))
                except ValueError as e:
                    collect(errors, e)
        except ValueError as e:
            collect(errors, e)
    return examples


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _nlu_items(path: Path, root: yaml.Node | None) -> yaml.SequenceNode:
    if not isinstance(root, yaml.MappingNode):
        raise ValueError(f"{path}:1: expected a mapping with an 'nlu:' list, found {_kind(root)}")
    keys = {k.value: v for k, v in root.value}
    if "nlu" not in keys:
        raise ValueError(f"{path}:1: expected an 'nlu:' list, found keys {sorted(keys)}")
    items = keys["nlu"]
    if not isinstance(items, yaml.SequenceNode):
        raise ValueError(
            f"{path}:{_line(items)}: expected 'nlu:' to be a list, found {_kind(items)}"
        )
    return items


def _kind(node: yaml.Node | None) -> str:
    if node is None:
        return "an empty document"
    if isinstance(node, yaml.ScalarNode):
        return f"{node.value!r}"
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


def _example_lines(path: Path, item: yaml.Node) -> Iterator[tuple[int, str, str]]:
    """(line number, example text with markup, intent) of one `nlu:` item; notes skipped items."""
    where = f"{path}:{_line(item)}"
    if not isinstance(item, yaml.MappingNode):
        raise ValueError(f"{where}: expected an item '- intent: NAME', found {_kind(item)}")
    keys = {k.value: v for k, v in item.value}
    kind = next((k for k in ("intent", *_SKIPPED) if k in keys), None)
    if kind is None:
        raise ValueError(
            f"{where}: expected an item with one of intent, synonym, regex, lookup; "
            f"found keys {sorted(keys)}"
        )
    name = keys[kind]
    if not isinstance(name, yaml.ScalarNode) or not name.value.strip():
        raise ValueError(f"{where}: expected a name after '{kind}:', found {_kind(name)}")
    if kind != "intent":
        warnings.warn(
            f"{where}: {kind} {name.value!r} skipped: {_SKIPPED[kind]}", DataWarning, stacklevel=4
        )
        return
    examples = keys.get("examples")
    if examples is None:
        raise ValueError(f"{where}: expected 'examples:' under intent {name.value!r}, found none")
    for lineno, line in _lines(path, examples):
        yield lineno, line, name.value.strip()


def _lines(path: Path, node: yaml.Node) -> Iterator[tuple[int, str]]:
    """(line number, `- example`) of an `examples:` block or list."""
    if isinstance(node, yaml.SequenceNode):  # `- text: ...` items, the form that allows metadata
        for entry in node.value:
            text = None
            if isinstance(entry, yaml.MappingNode):
                text = {k.value: v for k, v in entry.value}.get("text")
            if not isinstance(text, yaml.ScalarNode):
                raise ValueError(
                    f"{path}:{_line(entry)}: expected '- text: ...', found {_kind(entry)}"
                )
            yield _line(text), "- " + text.value.strip()
        return
    if not isinstance(node, yaml.ScalarNode):
        raise ValueError(f"{path}:{_line(node)}: expected an 'examples: |' block, found a mapping")
    # A block scalar's text starts on the line after its `|`.
    first = _line(node) + (1 if node.style in ("|", ">") else 0)
    for offset, raw in enumerate(node.value.splitlines()):
        if raw.strip():
            yield first + offset, raw.strip()


def _example(line: str, intent: str, where: str) -> Example:
    if not line.startswith("-"):
        raise ValueError(f"{where}: expected an example line '- text', found {line!r}")
    text, entities = parse_markup(line[1:].strip(), where)
    return example_from_text(text, entities, intent, where)


def parse_markup(markup: str, where: str = "") -> tuple[str, list[CharSpan]]:
    """Plain text and entity spans of a Rasa example such as `fly to [Boston](city)`."""
    text, entities, position = "", [], 0
    for match in _MARKUP.finditer(markup):
        text += markup[position : match.start()]
        label, value = match.group("entity"), match.group("value")
        if match.group("dict") is not None:
            label, value = _entity_dict(match.group("dict"), where)
        start = len(text)
        text += match.group("text")
        entities.append(CharSpan(label.strip(), start, len(text), value))
        position = match.end()
    return text + markup[position:], entities


def _entity_dict(raw: str, where: str) -> tuple[str, str | None]:
    try:
        record = json.loads("{" + raw + "}")
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("entity"), str):
        raise ValueError(
            f'{where}: expected {{"entity": "type", ...}} after [text], found {{{raw}}}'
        )
    value = record.get("value")
    return record["entity"], None if value is None else str(value)


def dump_rasa(examples: Sequence[Example]) -> str:
    """Rasa 3.x YAML of examples, grouped by intent in order of first appearance.

    Raises:
        ValueError: an example whose text the markup cannot hold (brackets that read as an
            entity, a line break, entities sharing characters).
    """
    by_intent: dict[str, list[str]] = {}
    for e in examples:
        by_intent.setdefault(e.intent, []).append(_markup(e))
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in by_intent.items():
        lines.append(f"- intent: {_scalar(intent)}")
        lines.append("  examples: |")
        lines.extend(f"    - {t}" for t in texts)
    return "\n".join(lines) + "\n"


def _markup(example: Example) -> str:
    text, entities = text_of(example)
    out, position = "", 0
    for e in entities:
        out += text[position : e.start]
        if e.value is None and not re.search(r"[:()]", e.label):
            out += f"[{text[e.start : e.end]}]({e.label})"
        else:
            record = {"entity": e.label, **({"value": e.value} if e.value is not None else {})}
            out += f"[{text[e.start : e.end]}]{json.dumps(record, ensure_ascii=False)}"
        position = e.end
    out += text[position:]
    if parse_markup(out) != (text, list(entities)) or out != out.strip() or "\n" in out:
        raise ValueError(f"{example.source}: Rasa markup cannot hold the text {text!r}")
    return out


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: bare when YAML reads it back unchanged, else quoted."""
    try:
        plain = yaml.safe_load(f"k: {value}") == {"k": value}
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value, ensure_ascii=False)
