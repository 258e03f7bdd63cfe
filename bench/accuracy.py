"""Train a config once per seed and report test scores as mean ± std, with wall time.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/accuracy.py configs/atis_bilstm_crf.yaml --seeds 1 2 3

Writes bench/results/<config name>.json and prints a Markdown table row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from nlu.config import load_config
from nlu.training.train import train

METRICS = ("slot_f1", "intent_accuracy", "intent_accuracy_any", "sentence_accuracy")


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs-dir", default="runs/bench")
    args = parser.parse_args()

    runs = []
    for seed in args.seeds:
        overrides = [
            *args.overrides,
            f"train.seed={seed}",
            "train.progress_bar=false",
            f"runs_dir={args.runs_dir}",
        ]
        cfg = load_config(args.config, overrides)
        started = time.perf_counter()
        result = train(cfg)
        seconds = time.perf_counter() - started
        test = result.reports["test"].summary()
        runs.append(
            {
                "seed": seed,
                "seconds": seconds,
                "best_epoch": result.best_epoch + 1,
                "run_dir": str(result.run_dir),
                **{m: test[m] for m in METRICS},
            }
        )
        print(json.dumps(runs[-1]), flush=True)

    summary = {m: mean_std([r[m] for r in runs]) for m in METRICS}
    summary["seconds"] = mean_std([r["seconds"] for r in runs])
    out = {
        "config": str(args.config),
        "overrides": args.overrides,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "runs": runs,
        "summary": summary,
    }
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    name = load_config(args.config, args.overrides).name
    Path(f"bench/results/{name}.json").write_text(json.dumps(out, indent=2))
    print(
        f"| {name} | {len(runs)} | {summary['slot_f1']} | {summary['intent_accuracy']} | "
        f"{summary['sentence_accuracy']} | {summary['intent_accuracy_any']} | {summary['seconds']} |"
    )


if __name__ == "__main__":
    main()
