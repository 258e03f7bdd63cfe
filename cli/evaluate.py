"""`nlu evaluate [--model DIR] --data atis --split test [--json FILE] [--report DIR]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli._output import (
    DataName,
    ModelDir,
    data_notes,
    default_model,
    rich_console,
    user_errors,
    write_atomic,
)


def evaluate(
    model: ModelDir = None,
    data: DataName = "atis",
    split: Annotated[str, typer.Option(help="Split folder to score.")] = "test",
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON.")
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a report directory: metrics.json, slots.md, intents.md, confusion.png, "
            "errors.md and a self-contained report.html.",
        ),
    ] = None,
) -> None:
    """Score a model: slot precision/recall/F1, intent and sentence accuracy, per-slot table."""
    from nlu.data.seqio import read_seqio, resolve_split
    from nlu.eval.evaluate import predict
    from nlu.eval.report import build_report
    from nlu.eval.report_dir import write_report
    from nlu.parser import Parser

    with user_errors(), data_notes():
        model_dir = default_model(model)
        parser = Parser.load(model_dir)
        examples = read_seqio(resolve_split(data, split))
        predicted = predict(parser, examples)
        meta = {"model": str(model_dir), "data": data, "split": split}
        known = _training_words(parser.config.data)
        evaluation = build_report(
            examples, predicted.tags, predicted.intents, f"{data}/{split}", meta, known
        )
    report = evaluation.report
    _render(report, f"{data}/{split}")
    if json_file is not None:
        write_atomic(json_file, json.dumps(report.to_dict(), indent=2))
    if report_dir is not None:
        with user_errors():
            write_report(evaluation, report_dir)
        typer.echo(
            f"report: {report_dir / 'report.html'} "
            f"({len(evaluation.errors)} utterances with an error in errors.md)"
        )


def _training_words(data_cfg):
    """The lower-cased words of the model's training split, read again from the data its
    config names; None (and a note) when that data cannot be read here."""
    from nlu.data.splits import load_splits
    from nlu.eval.metrics import known_words

    try:
        return known_words(e.tokens for e in load_splits(data_cfg).train)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"note: no unseen-word scores: the training data cannot be read ({error})")
        return None


def _render(report, title: str) -> None:
    from rich.table import Table

    console = rich_console()
    s = report.slot
    console.print(f"[bold]{title}[/bold]: {report.num_examples} utterances")
    console.print(f"slot       P {s.precision:6.2f}  R {s.recall:6.2f}  F1 {s.f1:6.2f}")
    if report.slot_unseen is not None:
        from nlu.eval.report import unseen_line

        console.print(f"           {unseen_line(report)}")
    console.print(
        f"intent     accuracy {report.intent_accuracy:6.2f}  "
        f"(any-of-gold rule {report.intent_accuracy_any:6.2f})"
    )
    console.print(f"sentence   accuracy {report.sentence_accuracy:6.2f}")
    if report.multi_intent:
        f1 = report.intent_f1
        console.print(
            f"intents    set accuracy {report.intent_set_accuracy:6.2f}  F1 {f1.f1:6.2f} "
            f"(P {f1.precision:6.2f}  R {f1.recall:6.2f})  overall accuracy "
            f"{report.overall_accuracy:6.2f}"
        )
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
