"""Every data format behind one `read_examples(path, fmt)` and one `dump_examples(examples, fmt)`.

| format | what                                                          | read | write |
|--------|---------------------------------------------------------------|------|-------|
| seqio  | a folder with seq.in / seq.out / label (ATIS, SNIPS)          | yes  | yes   |
| conll  | `token tag` lines, blank line between sentences, `# intent =` | yes  | yes   |
| jsonl  | {"text", "intent", "entities"} or {"tokens", "tags", "intent"} | yes  | yes   |
| rasa   | Rasa 3.x NLU YAML                                             | yes  | yes   |
| snips  | snips-nlu JSON dataset                                        | yes  | no    |
| hf     | a Hugging Face `datasets` dataset (hub name or local file)    | yes  | no    |
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from nlu.config import HFConfig
from nlu.data.conll import dump_conll, read_conll
from nlu.data.jsonl import dump_jsonl, read_jsonl
from nlu.data.rasa import dump_rasa, read_rasa
from nlu.data.readers import read_text
from nlu.data.seqio import SEQIO_FILES, dump_seqio, read_seqio
from nlu.data.snips import read_snips
from nlu.files import write_text_atomic
from nlu.schema import Example

FORMATS = ("seqio", "conll", "jsonl", "rasa", "snips", "hf")
WRITABLE = ("jsonl", "conll", "seqio", "rasa")
EXTENSIONS = {
    ".conll": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yml": "rasa",
    ".yaml": "rasa",
    ".csv": "hf",
    ".parquet": "hf",
}
_READERS: dict[str, Callable[..., list[Example]]] = {
    "seqio": read_seqio,
    "conll": read_conll,
    "jsonl": read_jsonl,
    "rasa": read_rasa,
    "snips": read_snips,
}
_HF_SAVED = ("dataset_info.json", "dataset_dict.json", "state.json")  # `save_to_disk` folders


def detect_format(path: str | Path) -> str:
    """The format of a file or folder, from its extension and, where that is unclear, content.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: the format cannot be told; the message says how to name it.
    """
    path = Path(path)
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        if all(n in names for n in SEQIO_FILES):
            return "seqio"
        if any(n in names for n in _HF_SAVED):
            return "hf"
        raise ValueError(
            f"{path}: expected a folder with {', '.join(SEQIO_FILES)}, found {names[:8]}"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder (a Hugging Face hub dataset needs format hf)"
        )
    if path.suffix.lower() in EXTENSIONS:
        return EXTENSIONS[path.suffix.lower()]
    return _sniff(path, read_text(path))


def _sniff(path: Path, text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            record = None  # a JSON document spread over lines
        if isinstance(record, dict) and "intents" not in record:
            return "jsonl"
        if '"intents"' in text:
            return "snips"
    elif re.search(r"^nlu\s*:", text, re.MULTILINE):
        return "rasa"
    elif len(first.split()) >= 2 or first.startswith("# "):
        return "conll"
    raise ValueError(
        f"{path}: expected a file in one of the formats {', '.join(FORMATS)}, found none "
        f"that fits its first line {first[:60]!r}; name the format (data.format or --from)"
    )


def read_examples(
    path: str | Path,
    fmt: str = "auto",
    errors: list[str] | None = None,
    hf: HFConfig | None = None,
) -> list[Example]:
    """Read examples from a file or folder in any format.

    Args:
        path: a file or folder; for `hf`, a hub name or local file with an optional ":split".
        fmt: one of `FORMATS`, or "auto" to detect it.
        errors: if given, bad utterances are appended here and skipped instead of raised.
        hf: the column mapping of `hf` datasets.

    Raises:
        FileNotFoundError, ValueError: with the file and line, what was expected and found.
    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "hf":
        from nlu.data.hf import read_hf  # imports `datasets` only when asked for

        examples = read_hf(str(path), hf or HFConfig(), errors)
    elif fmt in _READERS:
        examples = _READERS[fmt](Path(path), errors)
    else:
        raise ValueError(f"unknown data format {fmt!r}; expected auto or one of {FORMATS}")
    if not examples and errors is None:
        raise ValueError(f"{path}: expected at least one utterance, found none")
    return examples


def dump_examples(examples: Sequence[Example], fmt: str) -> dict[str, str]:
    """Relative file name -> text; "" names the single file of every format but seqio."""
    if fmt == "seqio":
        return dump_seqio(examples)
    writers = {"jsonl": dump_jsonl, "conll": dump_conll, "rasa": dump_rasa}
    if fmt not in writers:
        raise ValueError(f"cannot write format {fmt!r}; expected one of {WRITABLE}")
    return {"": writers[fmt](examples)}


def write_examples(examples: Sequence[Example], fmt: str, target: str | Path) -> Path:
    """Write examples in `fmt` to `target` (a folder for seqio, a file otherwise), every file
    through a temporary name. All files are made before the first is written."""
    target = Path(target)
    for name, text in dump_examples(examples, fmt).items():
        write_text_atomic(target / name if name else target, text)
    return target
