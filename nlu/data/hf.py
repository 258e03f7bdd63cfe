"""Hugging Face `datasets` datasets, by hub name or from local files, through a column mapping.

`datasets` (with pyarrow and pandas) is imported inside `read_hf` only: reading any other format,
and everything on the inference path, never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlu.config import HFConfig
from nlu.data.jsonl import example_from_record
from nlu.data.readers import gather
from nlu.schema import Example

BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
_HEADER_LINES = {".jsonl": 0, ".csv": 1}  # rows of these files have a line number


def split_source(source: str) -> tuple[str, str]:
    """("name or file", "split") of "name[:split]"; the split defaults to "train"."""
    # The split follows the first ":" after the last "/": "user/atis:train[:10%]".
    colon = source.find(":", source.rfind("/") + 1)
    if Path(source).exists() or colon < 0:
        return source, "train"
    return source[:colon], source[colon + 1 :] or "train"


def read_hf(
    source: str,
    columns: HFConfig | None = None,
    errors: list[str] | None = None,
    cache_dir: str | None = None,
) -> list[Example]:
    """Read one split of a Hugging Face dataset into examples.

    Args:
        source: "name[:split]": a hub name (needs internet the first time), a local .json,
            .jsonl, .csv or .parquet file, or a folder written by `save_to_disk`.
        columns: which column holds the text, entities, tokens, tags and intent.
        errors: if given, a bad row is appended here and skipped instead of raised.
        cache_dir: where `datasets` caches what it loads (default: its own cache).

    Raises:
        ValueError: the dataset cannot be loaded, or lacks a mapped column.
    """
    columns = columns or HFConfig()
    dataset = _load(source, columns.subset, cache_dir)
    names = dataset.column_names
    if columns.intent not in names:
        raise ValueError(
            f"{source}: expected an intent column {columns.intent!r} (data.hf.intent), "
            f"found columns {names}"
        )
    if columns.tokens not in names and columns.text not in names:
        raise ValueError(
            f"{source}: expected a column {columns.tokens!r} (data.hf.tokens) or "
            f"{columns.text!r} (data.hf.text), found columns {names}"
        )
    if columns.tokens in names and columns.tags not in names:
        raise ValueError(
            f"{source}: expected a tags column {columns.tags!r} (data.hf.tags) beside "
            f"{columns.tokens!r}, found columns {names}"
        )
    intent_names = _label_names(dataset.features[columns.intent])
    tag_names = None
    if columns.tokens in names:
        tag_names = _label_names(getattr(dataset.features[columns.tags], "feature", None))
    name, _ = split_source(source)
    offset = _HEADER_LINES.get(Path(name).suffix.lower()) if Path(name).is_file() else None

    def example(number: int, row: dict[str, Any]) -> tuple[Example, int]:
        # number counts rows from 1; a file's line adds the lines above its first row.
        where = f"{name}:{number + offset}" if offset is not None else f"{source} row {number - 1}"
        return example_from_record(_record(row, columns, intent_names, tag_names), where)

    return gather(enumerate(dataset, start=1), example, errors, source)


def _load(source: str, subset: str, cache_dir: str | None) -> Any:
    import datasets  # heavy and training-only; see the module docstring

    datasets.disable_progress_bars()  # a few rows of local data do not need bars
    name, split = split_source(source)
    path = Path(name)
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        if path.is_file():
            builder = BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise ValueError(f"expected a file ending in one of {sorted(BUILDERS)}")
            return datasets.load_dataset(
                builder, data_files=str(path), split=split, cache_dir=cache_dir
            )
        return datasets.load_dataset(name, subset or None, split=split, cache_dir=cache_dir)
    except (OSError, ValueError, KeyError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{source}: expected a Hugging Face dataset (hub name or local file), found an "
            f"error loading it: {message}"
        ) from None


def _label_names(feature: Any) -> list[str] | None:
    """The names of a `ClassLabel` feature, or None for a column of strings."""
    names = getattr(feature, "names", None)
    return list(names) if names else None


def _record(
    row: dict[str, Any],
    columns: HFConfig,
    intent_names: list[str] | None,
    tag_names: list[str] | None,
) -> dict[str, Any]:
    """The row as a JSON-lines record (see `nlu.data.jsonl`), with ids mapped to names."""
    intent = row[columns.intent]
    if intent_names is not None and isinstance(intent, int):
        intent = intent_names[intent]
    if columns.tokens in row:
        tags = row.get(columns.tags)
        if tag_names is not None and isinstance(tags, list):
            tags = [tag_names[t] if isinstance(t, int) else t for t in tags]
        return {"tokens": row[columns.tokens], "tags": tags, "intent": intent}
    return {
        "text": row[columns.text],
        "intent": intent,
        "entities": row.get(columns.entities) or [],
    }
