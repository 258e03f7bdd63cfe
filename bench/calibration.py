"""Intent temperature scaling on trained models: expected calibration error before and after.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/calibration.py runs/bench/atis_ils10-*-seed*/model

For each model: load it as exported, measure slot and intent ECE on the dev and test splits,
fit the intent temperature on dev (`nlu.eval.calibration`), and measure again. Test scores are
printed too: the temperature must leave them unchanged. Nothing is written back to the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inference import calibration

from nlu.data.seqio import read_seqio, resolve_split
from nlu.eval.calibration import calibrate_intents
from nlu.eval.evaluate import evaluate
from nlu.parser import Parser


def scores(parser: Parser, test) -> dict[str, float]:
    report = evaluate(parser, test)
    return {
        "slot_f1": report.slot.f1,
        "intent_accuracy": report.intent_accuracy,
        "sentence_accuracy": report.sentence_accuracy,
    }


def measure(parser: Parser, dev, test) -> dict:
    """Test scores, and slot and intent ECE on dev and test."""
    return {
        "test": scores(parser, test),
        "dev_ece": calibration(parser, dev),
        "test_ece": calibration(parser, test),
    }


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser_.add_argument("models", nargs="+")
    parser_.add_argument("--data", default="atis")
    parser_.add_argument("--out", help="Also write the results to this JSON file.")
    args = parser_.parse_args()
    dev = read_seqio(resolve_split(args.data, "valid"))
    test = read_seqio(resolve_split(args.data, "test"))
    results = []
    for model in args.models:
        parser = Parser.load(model, num_threads=1, backend="torch")  # the temperature's home
        parser.model.intent_head.temperature.fill_(1.0)  # as trained, whatever was exported
        row = {"model": model, "before": measure(parser, dev, test)}
        row["temperature"] = calibrate_intents(parser, dev)
        row["after"] = measure(parser, dev, test)
        print(json.dumps(row), flush=True)
        results.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
