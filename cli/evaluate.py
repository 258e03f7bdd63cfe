"""`nlu evaluate [--model DIR] --data atis --split test [--json FILE]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli._output import default_model, user_errors, write_atomic


def evaluate(
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: $NLU_MODEL, else runs/latest).")
    ] = None,
    data: Annotated[
        str, typer.Option(help="Dataset name under $NLU_DATA_DIR, or a folder.")
    ] = "atis",
    split: Annotated[str, typer.Option(help="Split folder to score.")] = "test",
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON.")
    ] = None,
) -> None:
    """Score a model: slot precision/recall/F1, intent and sentence accuracy, per-slot table."""
    from nlu.evaluate import evaluate as run_evaluation
    from nlu.parser import Parser
    from nlu.readers import read_seqio, resolve_split

    with user_errors():
        parser = Parser.load(default_model(model))
        examples = read_seqio(resolve_split(data, split))
        report = run_evaluation(parser, examples)
    _render(report, f"{data}/{split}")
    if json_file is not None:
        write_atomic(json_file, json.dumps(report.to_dict(), indent=2))


def _render(report, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    s = report.slot
    console.print(f"[bold]{title}[/bold]: {report.num_examples} utterances")
    console.print(f"slot       P {s.precision:6.2f}  R {s.recall:6.2f}  F1 {s.f1:6.2f}")
    console.print(
        f"intent     accuracy {report.intent_accuracy:6.2f}  "
        f"(any-of-gold rule {report.intent_accuracy_any:6.2f})"
    )
    console.print(f"sentence   accuracy {report.sentence_accuracy:6.2f}")
    table = Table(title="per slot", show_edge=False)
    for column in ("slot", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "slot" else "right")
    for label, score in sorted(report.per_slot.items(), key=lambda kv: -kv[1].support):
        table.add_row(
            label,
            f"{score.precision:.2f}",
            f"{score.recall:.2f}",
            f"{score.f1:.2f}",
            str(score.support),
        )
    console.print(table)
