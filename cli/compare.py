"""`nlu compare RUN... [--split test] [--each]`: runs side by side, seeds as mean ± std."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import rich_console, user_errors

COLUMNS = {
    "slot_f1": "slot F1",
    "intent_accuracy": "intent acc",
    "intent_accuracy_any": "intent acc (any)",
    "sentence_accuracy": "sentence acc",
    "slot_f1_unseen": "slot F1 unseen",  # spans with a word unseen in training; – before 62d327a
    "intent_f1": "intent F1",  # over single intents (multi-intent data); – in older runs
    "overall_accuracy": "overall acc",  # the intent set and every tag right
}


def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories, seeds aggregates (nlu train --seeds), or folders of them."
        ),
    ],
    split: Annotated[str, typer.Option(help="Which scores to show: dev or test.")] = "test",
    each: Annotated[
        bool, typer.Option("--each", help="Also list every run under its group.")
    ] = False,
) -> None:
    """Print runs side by side; runs of one config are grouped into mean ± std over seeds."""
    from nlu.analysis.runs import group_runs, read_runs

    with user_errors():
        groups = group_runs(read_runs(runs))
    render_groups(groups, split, each)


def render_groups(groups, split: str, each: bool = False) -> None:
    """A rich table: one row per group (mean ± std), and optionally one per run."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{split} scores (mean ± sample std over runs)", show_edge=False)
    table.add_column("config", overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("seeds")
    for label in COLUMNS.values():
        table.add_column(label, justify="right")
    for group in groups:
        cells = [_cell(group.stat(split, metric)) for metric in COLUMNS]
        seeds = ",".join("?" if s is None else str(s) for s in group.seeds)
        label = escape(group.label)  # "[train.lr=0.01]" is text, not a rich style
        table.add_row(label, str(len(group.runs)), seeds, *cells, style="bold")
        if each and len(group.runs) > 1:
            for run in group.runs:
                scores = run.metrics.get(split, {})
                values = [_number(scores.get(metric)) for metric in COLUMNS]
                table.add_row(f"  {run.path.name}", "", str(run.seed), *values, style="dim")
    rich_console().print(table)


def _cell(stat) -> str:
    return "–" if stat is None else str(stat)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
