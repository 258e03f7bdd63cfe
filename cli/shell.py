"""`nlu shell [--model DIR]`: type utterances, see the intent ranking and the slots."""

from __future__ import annotations

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
    highlighted,
    user_errors,
)

HISTORY = Path("~/.nlu_history").expanduser()
QUIT = {":quit", ":q", ":exit"}


def shell(
    model: ModelDir = None,
    top: Annotated[int, typer.Option(help="Intents to show in the ranking.")] = 3,
    precision: PrecisionOption = None,
    quantize: Quantize = False,
    backend: BackendOption = "auto",
) -> None:
    """Interactive prompt: each line is parsed and shown; :quit or Ctrl-D leaves."""
    from rich.console import Console

    from nlu.parser import Parser

    with user_errors():
        parser = Parser.load(
            default_model(model), precision=chosen_precision(precision, quantize), backend=backend
        )
    console = Console(highlight=False)
    _load_history()
    console.print(f"[dim]{parser.config.name}: type an utterance; :quit or Ctrl-D leaves[/dim]")
    try:
        while True:
            try:
                line = input("nlu> ")
            except EOFError:
                console.print()
                break
            except KeyboardInterrupt:
                console.print()
                continue
            if line.strip() in QUIT:
                break
            if line.strip():
                _show(console, parser.parse(line), top)
    finally:
        _save_history()


def _show(console, parse, top: int) -> None:

    console.print(highlighted(parse))
    for e in parse.entities:
        console.print(f"  [cyan]{e.entity}[/cyan] = {e.value!r}  ({e.confidence:.2f})")
    ranking = "  ".join(f"{name} {conf:.2f}" for name, conf in parse.intent_ranking[:top])
    console.print(f"  intent: [bold]{parse.intent}[/bold]   [dim]{ranking}[/dim]")


def _load_history() -> None:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: no history, still works
        return
    try:
        readline.read_history_file(HISTORY)
    except OSError:
        pass


def _save_history() -> None:
    try:
        import readline

        readline.set_history_length(1000)
        readline.write_history_file(HISTORY)
    except (ImportError, OSError):
        pass
