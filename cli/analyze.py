"""`nlu analyze curves RUN_DIR`, `nlu analyze gradients [CONFIG]`: figures that explain training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import user_errors

app = typer.Typer(
    no_args_is_help=True,
    help="Figures that explain training: curves of a run, gradient flow through encoders.",
)


@app.command()
def curves(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (holds logs/metrics.csv).")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the PNG (default: RUN_DIR/curves.png).")
    ] = None,
) -> None:
    """Draw loss, dev slot F1 and dev accuracies per epoch from a run's CSV log.

    `nlu train` draws this at the end of every run; this redraws it, or draws it for older runs.
    """
    from nlu.curves import write_curves

    with user_errors():
        path = write_curves(run_dir, out)
    typer.echo(f"curves: {path}")
