"""`nlu tag [--model DIR] [--json] TEXT ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli._output import default_model, user_errors


def tag(
    texts: Annotated[list[str], typer.Argument(help="Utterances to tag.")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory [default: $NLU_MODEL or runs/latest].")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each parse as one JSON line.")
    ] = False,
) -> None:
    """Tag utterances: the intent with its confidence and each slot with its span."""
    from nlu.parser import Parser

    with user_errors():
        parser = Parser.load(default_model(model))
    for parse in parser.parse_batch(texts):
        if as_json:
            typer.echo(json.dumps(parse.to_dict(), ensure_ascii=False))
        else:
            _render(parse)


def _render(parse) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    sentence = Text(parse.text)
    for e in parse.entities:
        sentence.stylize("bold cyan underline", e.start, e.end)
    console.print(sentence)
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
