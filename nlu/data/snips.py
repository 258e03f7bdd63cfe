"""snips-nlu JSON datasets.

```
{"intents": {"turnLightOn": {"utterances": [
    {"data": [{"text": "turn on the "}, {"text": "hall", "entity": "room", "slot_name": "place"}]}
]}}, "entities": {...}, "language": "en"}
```

The text of an utterance is its chunks joined; a chunk with an entity is a span whose tag is
its `slot_name`. The top-level `entities` (values, synonyms) are not used.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
from pathlib import Path
from typing import Any

from nlu.data.align import example_from_text
from nlu.data.readers import collect, read_text
from nlu.schema import CharSpan, Example


class _Object(dict):
    """A decoded JSON object that remembers the line it started on."""

    line = 0


def load_json(path: Path) -> Any:
    """Decode a JSON file; every object is a `dict` with a `.line` for error messages.

    Raises:
        ValueError: invalid JSON, with the line and column of the problem.
    """
    text = read_text(path)
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def parse_object(s_and_end, *args):
        obj, end = json.decoder.JSONObject(s_and_end, *args)
        located = _Object(obj)
        located.line = bisect.bisect_left(newlines, s_and_end[1]) + 1
        return located, end

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # the C scanner ignores the hook
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}:{e.lineno}: expected valid JSON, found {e.msg} (column {e.colno})"
        ) from None


def read_snips(path: str | Path, errors: list[str] | None = None) -> list[Example]:
    """Read the utterances of a snips-nlu dataset into examples, intent by intent.

    Args:
        path: the JSON file.
        errors: if given, a bad utterance is appended here and skipped instead of raised.

    Raises:
        ValueError: invalid JSON, or a missing `intents`, `utterances`, `data` or `text`.
    """
    path = Path(path)
    dataset = load_json(path)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("intents"), dict):
        found = f"keys {sorted(dataset)}" if isinstance(dataset, dict) else type(dataset).__name__
        raise ValueError(f"{path}:1: expected an object with an 'intents' object, found {found}")
    intents = dataset["intents"]
    examples: list[Example] = []
    for intent, body in intents.items():
        where = f"{path}:{_line(body, intents)}"
        utterances = body.get("utterances") if isinstance(body, dict) else None
        if not isinstance(utterances, list):
            collect(
                errors,
                ValueError(
                    f"{where}: expected intent {intent!r} to have a list 'utterances', found none"
                ),
            )
            continue
        for utterance in utterances:
            try:
                examples.append(_example(path, utterance, intent, _line(utterance, body)))
            except ValueError as e:
                collect(errors, e)
    return examples


def _line(value: Any, parent: Any) -> int:
    return getattr(value, "line", 0) or getattr(parent, "line", 0)


def _example(path: Path, utterance: Any, intent: str, line: int) -> Example:
    where = f"{path}:{line}"
    chunks = utterance.get("data") if isinstance(utterance, dict) else None
    if not isinstance(chunks, list):
        raise ValueError(f"{where}: expected an utterance with a list 'data', found {utterance!r}")
    text, entities = "", []
    for chunk in chunks:
        chunk_where = f"{path}:{_line(chunk, utterance)}"
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            raise ValueError(
                f"{chunk_where}: expected a chunk with a string 'text', found {chunk!r}"
            )
        if "entity" in chunk:
            slot = chunk.get("slot_name")
            if not isinstance(slot, str) or not slot:
                raise ValueError(
                    f"{chunk_where}: expected a 'slot_name' with entity {chunk['entity']!r}, "
                    "found none"
                )
            entities.append(CharSpan(slot, len(text), len(text) + len(chunk["text"])))
        text += chunk["text"]
    return example_from_text(text, entities, intent, where)
