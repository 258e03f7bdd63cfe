"""`nlu export [MODEL_DIR] --format onnx [--out DIR]`: the graph the torch-free runtime runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import default_model, fail, user_errors

FORMATS = ("onnx",)


def export(
    model_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A model directory, or a run directory holding model/ (default: runs/latest)."
        ),  # fmt: skip
    ] = None,
    format: Annotated[str, typer.Option("--format", help="Only onnx for now.")] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of into the model directory.")
    ] = None,
) -> None:
    """Export a trained model for `--backend onnx`: model.onnx, runtime.json and
    decode.safetensors, checked with onnx.checker."""
    if format not in FORMATS:
        raise fail(f"--format: expected one of {list(FORMATS)}, found {format!r}")
    with user_errors():
        from nlu.export import export_onnx

        graph = export_onnx(default_model(model_dir), out)
    typer.echo(f"wrote {graph}")
