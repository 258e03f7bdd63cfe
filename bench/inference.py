"""Inference speed and confidence calibration of a trained model, on ATIS (or another dataset).

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/inference.py --model runs/latest

Measures, in one run and one process:
- `Parser.parse` one utterance at a time over the test split: p50 / p99 latency;
- `Parser.parse_batch` throughput at batch 256, next to the model forward pass + pytorch-crf's
  own `decode` (the pre-vectorisation path) on the same batches;
- expected calibration error (ECE) of slot and intent confidence on the dev split;
- the test scores;
for each precision asked for (float32, and the int8 and bfloat16 versions of the same model).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from _timing import parse_times_ms, percentile

from nlu.data.seqio import read_seqio, resolve_split
from nlu.eval.evaluate import evaluate
from nlu.features import collate, featurize
from nlu.parser import Parser
from nlu.tags import spans


def latency(parser: Parser, texts: list[str], repeats: int) -> dict[str, float]:
    times = parse_times_ms(parser, texts, repeats, warmup=50)
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "mean_ms": statistics.mean(times),
    }


def throughput(parser: Parser, texts: list[str], batch_size: int, repeats: int) -> float:
    parser.parse_batch(texts[:batch_size], batch_size=batch_size)
    started = time.perf_counter()
    for _ in range(repeats):
        parser.parse_batch(texts, batch_size=batch_size)
    return repeats * len(texts) / (time.perf_counter() - started)


@torch.inference_mode()
def pytorch_crf_throughput(
    parser: Parser, sentences: list[list[str]], batch_size: int, repeats: int
) -> float:
    """Forward pass + pytorch-crf's decode: the tags only, no confidence, no parse objects."""
    crf = parser.model.tag_head.crf.crf
    started = time.perf_counter()
    for _ in range(repeats):
        for lo in range(0, len(sentences), batch_size):
            chunk = sentences[lo : lo + batch_size]
            batch = collate([featurize(s, parser.vocabs, parser.tokenizer) for s in chunk])
            output = parser.model.forward_batch(batch)
            crf.decode(output.tag_scores, mask=batch.mask)
    return repeats * len(sentences) / (time.perf_counter() - started)


def expected_calibration_error(pairs: list[tuple[float, bool]], bins: int = 10) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins (percent)."""
    total, error = len(pairs), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(c, ok) for c, ok in pairs if lo < c <= hi or (b == 0 and c == 0.0)]
        if members:
            confidence = statistics.mean(c for c, _ in members)
            accuracy = statistics.mean(ok for _, ok in members)
            error += len(members) / total * abs(accuracy - confidence)
    return 100 * error


def calibration(parser: Parser, examples) -> dict[str, float]:
    predictions = parser.predict([e.tokens for e in examples], n_best=0)
    slot_pairs, intent_pairs = [], []
    intents = parser.vocabs.intents.itos
    for example, prediction in zip(examples, predictions):
        gold = set(spans(example.tags))
        slot_pairs.extend((confidence, span in gold) for span, confidence in prediction.spans)
        best = max(range(len(intents)), key=prediction.intent_probs.__getitem__)
        intent_pairs.append((prediction.intent_probs[best], intents[best] == example.intent))
    return {
        "slot_ece": expected_calibration_error(slot_pairs),
        "slot_mean_confidence": 100 * statistics.mean(c for c, _ in slot_pairs),
        "slot_precision": 100 * statistics.mean(ok for _, ok in slot_pairs),
        "intent_ece": expected_calibration_error(intent_pairs),
        "predicted_slots": len(slot_pairs),
    }


def measure(parser: Parser, test, dev, repeats: int, speed_only: bool = False) -> dict:
    texts = [" ".join(e.tokens) for e in test]
    if speed_only:
        return {
            "parse": latency(parser, texts, repeats),
            "parse_batch_256_per_s": throughput(parser, texts, 256, repeats),
        }
    report = evaluate(parser, test)
    return {
        "test_scores": {
            "slot_f1": report.slot.f1,
            "intent_accuracy": report.intent_accuracy,
            "sentence_accuracy": report.sentence_accuracy,
        },
        "parse": latency(parser, texts, repeats),
        "parse_batch_256_per_s": throughput(parser, texts, 256, repeats),
        "calibration_dev": calibration(parser, dev),
    }


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser_.add_argument("--model", default="runs/latest")
    parser_.add_argument("--data", default="atis")
    parser_.add_argument("--threads", type=int, default=0)
    parser_.add_argument(
        "--batch-workers",
        type=int,
        default=1,
        help="Threads parse_batch runs batches in (Parser.load(batch_workers=...)).",
    )
    parser_.add_argument("--repeats", type=int, default=3)
    parser_.add_argument(
        "--precisions",
        default="float32,int8,bfloat16",
        help="Comma-separated Parser.load precisions to measure, one after the other in this "
        "process (run one per process for figures unaffected by the others).",
    )
    parser_.add_argument("--out", help="Also write the results to this JSON file.")
    parser_.add_argument(
        "--speed-only",
        action="store_true",
        help="Only parse latency and parse_batch throughput (a quick run, e.g. to alternate two "
        "checkouts through PYTHONPATH).",
    )
    parser_.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after loading the models, as `nlu serve` and `nlu tag` do.",
    )
    args = parser_.parse_args()
    precisions = args.precisions.split(",")
    parsers = {
        precision: Parser.load(
            args.model,
            num_threads=args.threads or None,
            precision=precision,
            batch_workers=args.batch_workers,
            backend="torch",  # the torch backend's figures; bench/backends.py compares ONNX
        )
        for precision in precisions
    }
    test = read_seqio(resolve_split(args.data, "test"))
    dev = read_seqio(resolve_split(args.data, "valid"))
    if args.gc_freeze:
        gc.freeze()
    results = {
        "model": args.model,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "batch_workers": args.batch_workers,
        "gc_freeze": args.gc_freeze,
        "utterances": len(test),
    }
    for precision in precisions:
        results[precision] = measure(parsers[precision], test, dev, args.repeats, args.speed_only)
        if precision == "float32" and not args.speed_only:
            results["forward_plus_pytorch_crf_decode_256_per_s"] = pytorch_crf_throughput(
                parsers["float32"], [list(e.tokens) for e in test], 256, args.repeats
            )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
