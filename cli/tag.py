"""`nlu tag TEXT ...`, `nlu tag -` (stdin), `nlu tag --input FILE --output FILE.jsonl`."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from cli._output import (
    BackendOption,
    ModelDir,
    PrecisionOption,
    Quantize,
    chosen_precision,
    default_model,
    fail,
    highlighted,
    user_errors,
)

CHUNK = 256  # utterances parsed per batch when streaming


def tag(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Utterances to tag; '-' reads one per line from stdin."),
    ] = None,
    model: ModelDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each parse as one JSON line.")
    ] = False,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="A .txt (one utterance a line) or .jsonl file.")
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", help="Write parses here as JSON lines.")
    ] = None,
    n_best: Annotated[int, typer.Option(help="Also give the k best tag sequences.")] = 0,
    precision: PrecisionOption = None,
    quantize: Quantize = False,
    backend: BackendOption = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Parse this many batches at once, in threads (for files; about 1.3x the "
            "throughput with 2 on 2 cores). Default: one per core, at most 4.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Say on stderr how the model runs.")
    ] = False,
) -> None:
    """Tag utterances: the intent with its confidence and each slot with its span."""
    from nlu.parser import Parser

    if input_file is None and not texts:
        raise fail("give texts to tag, '-' to read stdin, or --input FILE")
    with user_errors():
        parser = Parser.load(
            default_model(model),
            precision=chosen_precision(precision, quantize),
            num_threads=1,  # faster than the default here, one utterance or a batch
            batch_workers=workers,
            backend=backend,
        )
        if verbose:
            how = parser.describe()
            typer.echo(
                f"{parser.config.name}: backend {how['backend']}, precision {how['precision']} "
                f"({how['precision_chosen_by']}), {how['num_threads']} thread(s), "
                f"{how['batch_workers']} batch worker(s)",
                err=True,
            )
        # Torch, NumPy and the model stay for the whole run: out of the collector's reach, the
        # full collections that a file's many parses trigger do not walk them
        # (docs/benchmarks-history.md).
        gc.freeze()
        if input_file is not None:
            lines, total = _read_input(input_file), _count_utterances(input_file)
        elif texts == ["-"]:
            lines, total = (line.rstrip("\n") for line in sys.stdin), None
        else:
            lines, total = iter(texts), len(texts)
        parses = _parse_stream(parser, lines, n_best, CHUNK * parser.batches.workers)
        if output_file is not None:
            _write_with_progress(output_file, parses, total)
            return
        for parse in parses:
            if as_json:
                typer.echo(json.dumps(parse.to_dict(), ensure_ascii=False))
            else:
                _render(parse)


def _read_input(path: Path) -> Iterator[str]:
    """Utterances of a .txt file (a line each) or a .jsonl file (a `text` field each)."""
    from nlu.data.jsonl import parse_object

    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if path.suffix != ".jsonl":
                yield line.rstrip("\n")
                continue
            if not line.strip():
                continue
            record = parse_object(line, f"{path}:{lineno}")
            if not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{lineno}: expected an object with a string field 'text'")
            yield record["text"]


def _count_utterances(path: Path) -> int | None:
    """How many utterances `_read_input` will yield, for the progress bar (no JSON parsing)."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        if path.suffix == ".jsonl":
            return sum(1 for line in f if line.strip())
        return sum(1 for _ in f)


def _parse_stream(parser, lines: Iterable[str], n_best: int, size: int) -> Iterator:
    """Parses of `lines` in order, `size` at a time: one `parse_batch` call, which runs its
    batches of `CHUNK` in the parser's batch workers."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield from parser.parse_batch(chunk, batch_size=CHUNK, n_best=n_best)
            chunk = []
    if chunk:
        yield from parser.parse_batch(chunk, batch_size=CHUNK, n_best=n_best)


def _write_with_progress(path: Path, parses: Iterator, total: int | None) -> None:
    from rich.progress import Progress

    from nlu.files import write_lines_atomic

    with Progress(transient=True) as progress:
        task = progress.add_task("tagging", total=total)

        def lines() -> Iterator[str]:
            for parse in parses:
                progress.advance(task)
                yield json.dumps(parse.to_dict(), ensure_ascii=False)

        write_lines_atomic(path, lines())


def _render(parse) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(highlighted(parse))
    console.print(f"intent: [bold]{parse.intent}[/bold] ({parse.intent_confidence:.3f})")
    if not parse.entities:
        console.print("slots: none")
        return
    table = Table(show_edge=False)
    for column in ("slot", "value", "span", "confidence"):
        table.add_column(column)
    for e in parse.entities:
        table.add_row(e.entity, e.value, f"{e.start}-{e.end}", f"{e.confidence:.3f}")
    console.print(table)
