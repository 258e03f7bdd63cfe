"""`nlu train [CONFIG] [--set key.sub=value ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import user_errors

DEFAULT_CONFIG = Path("configs/atis_bilstm_crf.yaml")


def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")] = DEFAULT_CONFIG,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field, e.g. --set model.hidden_dim=128."),
    ] = None,
) -> None:
    """Train a model from a YAML config and export it to runs/<name>/model."""
    from nlu.config import load_config

    with user_errors():
        cfg = load_config(config, overrides or [])
        from nlu.training.train import train as run_training  # Lightning loads here, not before

        result = run_training(cfg)
    typer.echo(f"best epoch {result.best_epoch + 1}, {result.seconds:.0f} s")
    for split, report in result.reports.items():
        s = report.summary()
        typer.echo(
            f"{split}: slot F1 {s['slot_f1']:.2f}  intent acc {s['intent_accuracy']:.2f}  "
            f"sentence acc {s['sentence_accuracy']:.2f}"
        )
    typer.echo(f"model: {result.model_dir}")
