"""The torch and ONNX backends side by side on one model: equality, test scores and speed.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/backends.py \\
        --model runs/latest --data atis --out bench/results/backends/atis.json

The model directory needs its graph (`nlu train` writes it; `nlu export` for older models).
Measures, in one process and one run:
- equality on the split: tags and intent of every utterance, ONNX float32 against torch float32
  (and the largest difference of any confidence: intent ranking and entities), and each int8
  against its backend's float32 (the share of utterances with the same tags and intent, and the
  largest confidence difference where they are the same);
- the scores of each backend and precision on the split;
- speed, alternated over `--rounds` rounds so that the machine's drift hits every row alike:
  `parse` p50 / p99 one utterance at a time (one thread), and `parse_batch` throughput at
  `--batch-size` (the Parser's default) with two batch workers of one thread each (the median of `--passes` passes a round).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _timing import parse_times_ms, percentile

from nlu.data.seqio import read_seqio, resolve_split
from nlu.eval.evaluate import evaluate
from nlu.parser import BATCH_SIZE, Parser

ROWS = [("torch", "float32"), ("torch", "int8"), ("onnx", "float32"), ("onnx", "int8")]


def confidences(parse) -> list[float]:
    return [p for _, p in parse.intent_ranking] + [e.confidence for e in parse.entities]


def compare(reference: list, other: list) -> dict[str, float]:
    """Share of utterances with the same tags and intent, and the largest confidence difference
    among those."""
    same = [(r, o) for r, o in zip(reference, other) if r.tags == o.tags and r.intent == o.intent]
    gaps = [abs(a - b) for r, o in same for a, b in zip(confidences(r), confidences(o))]
    return {
        "same_share": round(100 * len(same) / len(reference), 3),
        "different": len(reference) - len(same),
        "max_confidence_difference": max(gaps, default=0.0),
    }


def speed(
    model: Path, texts: list[str], rounds: int, passes: int, batch_size: int
) -> dict[str, dict[str, float]]:
    single = {row: Parser.load(model, num_threads=1, backend=row[0], precision=row[1])
              for row in ROWS}  # fmt: skip
    batched = {row: Parser.load(model, num_threads=1, backend=row[0], precision=row[1],
                                batch_workers=2) for row in ROWS}  # fmt: skip
    times: dict[tuple, list[float]] = {row: [] for row in ROWS}
    rates: dict[tuple, list[float]] = {row: [] for row in ROWS}
    for parser in batched.values():
        parser.parse_batch(texts)  # warm up: word caches, thread pools
    for _ in range(rounds):
        for row in ROWS:
            times[row] += parse_times_ms(single[row], texts, warmup=50)
            for _ in range(passes):  # one pass is a fifth of a second: too short alone
                started = time.perf_counter()
                batched[row].parse_batch(texts, batch_size=batch_size)
                rates[row].append(len(texts) / (time.perf_counter() - started))
    result = {}
    for row in ROWS:
        result["/".join(row)] = {
            "p50_ms": round(percentile(times[row], 50), 3),
            "p99_ms": round(percentile(times[row], 99), 3),
            "batch_per_s": round(statistics.median(rates[row])),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", default="atis")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=5, help="parse_batch passes a row a round")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="parse_batch's")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    examples = read_seqio(resolve_split(args.data, args.split))
    texts = [" ".join(e.tokens) for e in examples]
    parsers = {row: Parser.load(args.model, backend=row[0], precision=row[1]) for row in ROWS}
    parses = {row: parsers[row].parse_batch(texts) for row in ROWS}
    result = {
        "model": str(args.model),
        "data": f"{args.data}/{args.split}",
        "utterances": len(texts),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "equality": {
            "onnx/float32 vs torch/float32": compare(
                parses["torch", "float32"], parses["onnx", "float32"]
            ),
            "onnx/int8 vs onnx/float32": compare(parses["onnx", "float32"], parses["onnx", "int8"]),
            "torch/int8 vs torch/float32": compare(
                parses["torch", "float32"], parses["torch", "int8"]
            ),
        },  # fmt: skip
        "scores": {},
    }
    for row, p in parsers.items():
        report = evaluate(p, examples)
        result["scores"]["/".join(row)] = {
            "slot_f1": round(report.slot.f1, 2),
            "intent_accuracy": round(report.intent_accuracy, 2),
            "sentence_accuracy": round(report.sentence_accuracy, 2),
        }
    if args.rounds:
        result["batch_size"] = args.batch_size
        result["speed"] = speed(args.model, texts, args.rounds, args.passes, args.batch_size)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
