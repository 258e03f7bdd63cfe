"""JSON lines, one utterance per line, in either of two shapes:

```
{"text": "fly to Boston", "intent": "fly", "entities": [{"start": 7, "end": 13, "entity": "city"}]}
{"tokens": ["fly", "to", "boston"], "tags": ["O", "O", "B-city"], "intent": "fly"}
```

Entities may also carry a "value" (a normalized form of the text). Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlu.data.align import example_from_text
from nlu.data.readers import gather, read_text, tagged_example
from nlu.schema import CharSpan, Example


def read_jsonl(path: str | Path, errors: list[str] | None = None) -> list[Example]:
    """Read a JSON-lines file into examples.

    Args:
        path: the file.
        errors: if given, a bad line is appended here and skipped instead of raised.

    Raises:
        ValueError: invalid JSON, a missing or mistyped field, tags that do not match the tokens.
    """
    path = Path(path)
    lines = (
        (n, line) for n, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()
    )

    def record(lineno: int, line: str) -> tuple[Example, int]:
        where = f"{path}:{lineno}"
        return example_from_record(parse_object(line, where), where)

    examples = gather(lines, record, errors, path)
    if not examples and errors is None:
        raise ValueError(f"{path}: expected one JSON object per line, found no lines")
    return examples


def parse_object(line: str, where: str) -> dict[str, Any]:
    """The JSON object on one line; errors name `where` (file:line)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{where}: expected a JSON object, found invalid JSON ({e.msg} at column {e.colno})"
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, found {type(record).__name__}")
    return record


def _field(record: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        found = "none" if key not in record else f"{value!r}"
        raise ValueError(f"{where}: expected {kind.__name__} field {key!r}, found {found}")
    return value


def example_from_record(record: dict[str, Any], where: str) -> tuple[Example, int]:
    """The example of one JSON object in either shape, and whether its tags were repaired."""
    intent = _field(record, "intent", str, where)
    if "tokens" in record or "tags" in record:
        tokens = _strings(_field(record, "tokens", list, where), "tokens", where)
        tags = _strings(_field(record, "tags", list, where), "tags", where)
        return tagged_example(tokens, tags, intent, where)
    if "text" not in record:
        raise ValueError(
            f"{where}: expected 'text' (with 'entities') or 'tokens' and 'tags', "
            f"found keys {sorted(record)}"
        )
    text = _field(record, "text", str, where)
    raw = record.get("entities", [])
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected list field 'entities', found {raw!r}")
    entities = [_entity(e, f"{where}: entities[{i}]") for i, e in enumerate(raw)]
    return example_from_text(text, entities, intent, where), 0


def _strings(values: list, key: str, where: str) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected {key} to be strings, found {value!r}")
    return values


def _entity(record: Any, where: str) -> CharSpan:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object, found {record!r}")
    value = record.get("value")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: expected str field 'value', found {value!r}")
    return CharSpan(
        _field(record, "entity", str, where),
        _field(record, "start", int, where),
        _field(record, "end", int, where),
        value,
    )


def dump_jsonl(examples: Sequence[Example]) -> str:
    """JSON lines of examples: the text shape when the example has text, else the token shape."""
    return "".join(json.dumps(to_record(e), ensure_ascii=False) + "\n" for e in examples)


def to_record(example: Example) -> dict[str, Any]:
    """The JSON object of one example."""
    if example.text is None:
        return {
            "tokens": list(example.tokens),
            "tags": list(example.tags),
            "intent": example.intent,
        }
    entities = []
    for e in example.entities:
        entity: dict[str, Any] = {"start": e.start, "end": e.end, "entity": e.label}
        if e.value is not None:
            entity["value"] = e.value
        entities.append(entity)
    return {"text": example.text, "intent": example.intent, "entities": entities}
