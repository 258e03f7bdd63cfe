"""`nlu export [MODEL_DIR] --format onnx [--out DIR]`: the graph the torch-free runtime runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import data_notes, default_model, fail, user_errors

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
    data: Annotated[
        str | None,
        typer.Option(
            help="Check int8 against float32 on this dataset's dev split; int8 "
            "becomes the default precision if no score drops by more than 0.1."
        ),
    ] = None,  # fmt: skip
    split: Annotated[str, typer.Option(help="The held-out split --data reads.")] = "valid",
) -> None:
    """Export a trained model for `--backend onnx`: embed.onnx, model.onnx, model.int8.onnx,
    runtime.json and decode.safetensors, the graphs checked with onnx.checker."""
    if format not in FORMATS:
        raise fail(f"--format: expected one of {list(FORMATS)}, found {format!r}")
    with user_errors(), data_notes():
        from nlu.archive import resolve_model_dir
        from nlu.export import choose_precision, export_onnx

        graph = export_onnx(default_model(model_dir), out)
        if data is not None:
            from nlu.data.seqio import read_seqio, resolve_split

            if out is not None and out != resolve_model_dir(default_model(model_dir)):
                raise ValueError("--data checks the graph inside the model directory: drop --out")
            chosen = choose_precision(graph.parent, read_seqio(resolve_split(data, split)))
            typer.echo(f"default precision {chosen['default_precision']}: "
                       f"{chosen['precision_chosen_by']}")  # fmt: skip
    typer.echo(f"wrote {graph}")
