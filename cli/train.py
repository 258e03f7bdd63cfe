"""`nlu train [CONFIG] [--set key.sub=value ...] [--seeds 1,2,3]`, `nlu train --resume RUN_DIR`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli._output import data_notes, user_errors

DEFAULT_CONFIG = Path("configs/atis_bilstm_crf.yaml")


def train(
    config: Annotated[
        Path | None, typer.Argument(help=f"Experiment YAML file [default: {DEFAULT_CONFIG}].")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field, e.g. --set model.hidden_dim=128."),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Train one run per seed, e.g. 1,2,3, and write their mean ± std."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Go on with a stopped run: its directory, with the config it recorded."),
    ] = None,
) -> None:
    """Train a model from a YAML config and export it to runs/<name>/model.

    Every epoch ends with a checkpoint in the run directory; a run stopped by Ctrl-C, SIGTERM
    or a crash goes on from it with --resume (only resume runs you made: checkpoints are
    pickles).
    """
    from nlu.analysis.runs import parse_seeds
    from nlu.config import load_config

    with user_errors(), data_notes():
        if resume is not None and (config is not None or overrides or seeds):
            raise ValueError("--resume: expected no CONFIG, --set or --seeds with it (the run "
                             "goes on with the config it recorded)")  # fmt: skip
        if resume is not None:
            cfg = load_config(_recorded_config(resume), [])
        else:
            cfg = load_config(config or DEFAULT_CONFIG, overrides or [])
        seed_list = parse_seeds(seeds) if seeds is not None else []
        from nlu.training.seeds import train_seeds  # Lightning loads here, not before
        from nlu.training.train import TrainingStopped
        from nlu.training.train import train as run_training

        try:
            if not seed_list:
                result = run_training(cfg, resume)
                if result.rank_zero:  # DDP: one report, from rank 0
                    _echo_result(result)
                return
            outcome = train_seeds(cfg, seed_list)
        except TrainingStopped as stop:
            typer.echo(f"nlu train: {stop}", err=True)
            raise typer.Exit(stop.exit_code) from None
    if all(r.rank_zero for r in outcome.results):
        _echo_seeds(outcome)


def _recorded_config(run_dir: Path) -> Path:
    from nlu.training.rundir import RUN_CONFIG  # plain Python: Lightning is not loaded yet

    path = run_dir / RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; --resume expects a run directory of nlu train")
    return path


def _echo_result(result) -> None:
    typer.echo(f"best epoch {result.best_epoch + 1}, {result.seconds:.0f} s")
    for split, report in result.reports.items():
        s = report.summary()
        typer.echo(
            f"{split}: slot F1 {s['slot_f1']:.2f}  intent acc {s['intent_accuracy']:.2f}  "
            f"sentence acc {s['sentence_accuracy']:.2f}"
        )
    metrics = result.run_dir / "metrics.json"
    served = json.loads(metrics.read_text()).get("served") if metrics.is_file() else None
    if served and "test" in served["metrics"]:
        s = served["metrics"]["test"]
        typer.echo(
            f"test as served ({served['backend']} {served['precision']}): slot F1 "
            f"{s['slot_f1']:.2f}  intent acc {s['intent_accuracy']:.2f}  "
            f"sentence acc {s['sentence_accuracy']:.2f}"
        )
    typer.echo(f"model: {result.model_dir}")


def _echo_seeds(outcome) -> None:
    from cli.compare import render_groups
    from nlu.analysis.runs import group_runs, read_aggregate

    for result in outcome.results:
        typer.echo(f"{result.run_dir.name}: best epoch {result.best_epoch + 1}")
    groups = group_runs(read_aggregate(outcome.aggregate_dir))
    for split in ("dev", "test"):
        render_groups(groups, split, each=True)
    typer.echo(f"aggregate: {outcome.aggregate_dir}")
