"""Shared CLI helpers: turning library errors into one line, and writing files atomically."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

MODEL_ENV = "NLU_MODEL"

# Options that several commands share.
ModelDir = Annotated[
    Path | None, typer.Option(help="Model directory (default: $NLU_MODEL, else runs/latest).")
]
DataName = Annotated[str, typer.Option(help="Dataset name under $NLU_DATA_DIR, or a folder.")]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="float32 (the model as trained); int8 (int8 weights for the recurrent and larger "
        "linear layers: faster on CPU, tags can differ on a few sentences); bfloat16 (torch: "
        "batches run the recurrent layers in bfloat16, fast on CPUs with bfloat16 "
        "instructions). Default: the model's, chosen on dev when it was exported.",
    ),
]
Quantize = Annotated[bool, typer.Option("--quantize", help="Shorthand for --precision int8.")]
BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="What runs the model: onnx (the graph `nlu export` wrote, under onnxruntime), "
        "torch (the weights as trained), or auto: onnx when the model has a graph for the "
        "precision and onnxruntime is installed, else torch.",
    ),
]


def chosen_precision(precision: str | None, quantize: bool) -> str | None:
    """The precision that --precision and --quantize ask for together (None: the model's)."""
    if quantize and precision not in (None, "float32", "int8"):
        raise fail(f"--quantize means --precision int8, not {precision}: give one of the two")
    return "int8" if quantize else precision


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr and return the exit to raise (code 1)."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code=1)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report the errors a user can fix (bad paths, bad data, bad config) as one line."""
    try:
        yield
    except (FileNotFoundError, ValueError, KeyError) as e:
        message = e.args[0] if e.args else repr(e)
        raise fail(str(message)) from None


@contextlib.contextmanager
def data_notes() -> Iterator[None]:
    """Show data warnings (repaired tags, skipped Rasa items) as one `warning: ...` line each,
    not Python's two-line warning with a source line."""
    from nlu.data.readers import DataWarning  # pure Python, light

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, DataWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def rich_console():  # -> rich.console.Console
    """A rich console for tables; piped into a file or a log it is wide, so rows do not wrap
    at rich's 80-column default for non-terminals."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def default_model(model: Path | None) -> Path:
    """`--model`, else `$NLU_MODEL`, else `runs/latest`."""
    if model is not None:
        return model
    return Path(os.environ.get(MODEL_ENV) or "runs/latest")


def write_atomic(path: Path, text: str) -> None:
    """Write `text`, ending in exactly one newline, to `path` through a temporary file."""
    from nlu.files import write_text_atomic

    write_text_atomic(path, text.removesuffix("\n") + "\n")


def highlighted(parse):
    """The parse's text as a rich `Text` with its slot spans highlighted."""
    from rich.text import Text

    sentence = Text(parse.text)
    for e in parse.entities:
        sentence.stylize("bold cyan underline", e.start, e.end)
    return sentence
