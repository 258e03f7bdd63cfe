"""`nlu analyze curves RUN_DIR`, `nlu analyze gradients [CONFIG]`: figures that explain training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import rich_console, user_errors

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
    from nlu.analysis.curves import write_curves

    with user_errors():
        path = write_curves(run_dir, out)
    typer.echo(f"curves: {path}")


@app.command()
def gradients(
    config: Annotated[
        Path | None,
        typer.Argument(help="YAML of GradientConfig fields (default: the built-in defaults)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field, e.g. --set seq_len=200."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for gradients.csv/.png, summary.json.")] = Path(
        "runs/gradients"
    ),
) -> None:
    """Gradient flow through rnn, irnn, lstm and gru encoders of equal size.

    Measures the norm of the loss gradient with respect to the hidden state t steps before the
    loss, on long sequences, at initialisation and after some training; writes the numbers as
    CSV and one line per encoder on a log scale as PNG.
    """
    from nlu.analysis.gradients import GradientConfig, measure, summary, write_gradient_flow
    from nlu.config import load_section

    with user_errors():
        cfg = load_section(GradientConfig, config, overrides or [])
        flow = measure(cfg)
        write_gradient_flow(flow, cfg, out)
    _render_gradients(summary(flow, cfg), out)


def _render_gradients(result: dict, out: Path) -> None:
    from rich.table import Table

    console = rich_console()
    for stage, by_kind in result["decay"].items():
        distances = list(next(iter(by_kind.values())))
        table = Table(title=f"{stage}: ‖∂L/∂h‖ at distance d over distance 0", show_edge=False)
        table.add_column("encoder")
        for d in distances:
            table.add_column(f"d={d}", justify="right")
        if stage == "trained":
            table.add_column("accuracy", justify="right")
        for kind, decay in by_kind.items():
            accuracy = [f"{result['accuracy'][kind]:.0f}%"] if stage == "trained" else []
            table.add_row(kind, *(f"{decay[d]:.1e}" for d in distances), *accuracy)
        console.print(table)
    for stage, ratio in result.get("rnn_vs_lstm_decay_30", {}).items():
        if ratio is not None:
            console.print(
                f"{stage}: over 30 steps the rnn's gradient shrinks {ratio:.3g} times more "
                "than the lstm's"
            )
    console.print(
        f"{result['seconds']:.0f} s; wrote {out}/gradients.csv, gradients.png, summary.json"
    )
