"""The accuracy issue's ablation table: per row, parameters, epoch seconds, dev beside test,
slot F1 on unseen-word spans, and int8 serving speed.

    # scores: from bench/train_scale.py's results (bench/results/scale/NAME.json) and the runs:
    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/ablation.py --runs-dir runs/scale \\
        --row "today's default=snips:snips,atis:one" \\
        --row "+ label attention=snips:screen_snips_label_attention,atis:screen_atis_label_attention"
    # the training cost: one plain-loop epoch (training and dev pass) of each row's config on
    # the whole machine (bench/train_step.py, one process at a time), and
    # speed: parse p50 and parse_batch throughput of each row's seed-1 model, int8, one
    # torch thread, two batch workers, gc frozen (bench/inference.py --speed-only, one process
    # per model), alternating the rows over --rounds rounds; medians kept in --speed-out:
    ... --speed --rounds 3 --speed-out bench/results/ablation/speed.json

A row names, per dataset, the train_scale result it reads (its seeds' mean ± std when it has
several); `RESULT@OTHER` reads the scores from RESULT and counts and times OTHER's seed-1 model
(for a result whose runs are gone: the same config trained again). Prints a markdown table per dataset. The training runs' own epoch lines are not used
for the cost: screens ran two at a time, one thread each.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
SCALE = ROOT / "bench" / "results" / "scale"
SCORES = ("slot_f1", "intent_accuracy", "sentence_accuracy", "slot_f1_unseen")


def parse_row(text: str) -> tuple[str, dict[str, str]]:
    label, sep, rest = text.rpartition("=")
    if not sep:
        raise SystemExit(f"--row: expected LABEL=dataset:result,..., found {text!r}")
    results = dict(part.split(":", 1) for part in rest.split(","))
    return label, results


def scores_of(result: str) -> str:
    return result.partition("@")[0]


def model_of(result: str) -> str:
    scores, _, model = result.partition("@")
    return model or scores


def seed1_model(runs: Path, result: str) -> Path | None:
    """The model directory of the result's first seed; None when its runs are gone."""
    summary = json.loads((SCALE / f"{result}.json").read_text())
    seed = summary["seeds"][0]["seed"]
    found = sorted((runs / result).glob(f"*-seed{seed}/model"))
    return found[0] if found else None


def parameters(model: Path) -> int:
    with safe_open(str(model / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def cell(seeds: list[dict], key: str) -> str:
    values = [s[key] for s in seeds if key in s]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def epoch_once(model: Path) -> float:
    """Seconds of one plain-loop epoch (training and dev pass) of the config a model was
    trained with (its config.yaml), at torch's default threads."""
    command = [sys.executable, str(ROOT / "bench" / "train_step.py"), "--config",
               str(model / "config.yaml"), "--set", "train.num_threads=0"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    timed = re.search(r"^timed epoch ([\d.]+) s", out, re.M)
    dev = re.search(r"^dev pass ([\d.]+) s", out, re.M)
    return float(timed.group(1)) + float(dev.group(1))


def speed_once(model: Path, data: str) -> tuple[float, float]:
    command = [sys.executable, str(ROOT / "bench" / "inference.py"), "--model", str(model),
               "--data", data, "--threads", "1", "--batch-workers", "2", "--gc-freeze",
               "--speed-only", "--precisions", "int8", "--repeats", "2"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)["int8"]
    return result["parse"]["p50_ms"], result["parse_batch_256_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--row", action="append", required=True, help="LABEL=data:result,...")
    parser.add_argument("--speed", action="store_true", help="measure int8 serving speed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epoch", action="store_true", help="time a plain-loop epoch per row")
    parser.add_argument("--speed-out", type=Path, help="JSON of the speed medians and epoch "
                        "seconds (read back for what this run does not measure)")  # fmt: skip
    args = parser.parse_args()
    rows = [parse_row(r) for r in args.row]
    datasets = list(dict.fromkeys(d for _, results in rows for d in results))
    speed: dict = {}
    if args.speed_out and args.speed_out.exists():
        speed = json.loads(args.speed_out.read_text())
    if args.epoch:
        for _, results in rows:
            for result in results.values():
                epochs = speed.setdefault("epoch_seconds", {})
                model = seed1_model(args.runs_dir, model_of(result))
                # rows that share a model share the figure
                if model is not None and model_of(result) not in epochs:
                    epochs[model_of(result)] = epoch_once(model)
                    print(f"epoch {result}: {epochs[model_of(result)]:.2f}", file=sys.stderr)
    if args.speed:
        samples: dict[str, list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            order = rows if round_ % 2 == 0 else rows[::-1]  # a drift falls on every row
            for _, results in order:
                for data, result in results.items():
                    model = seed1_model(args.runs_dir, model_of(result))
                    if model is None or len(samples.get(model_of(result), [])) > round_:
                        continue  # runs gone, or the model of another row
                    samples.setdefault(model_of(result), []).append(speed_once(model, data))
                    print(f"round {round_ + 1} {result}: {samples[model_of(result)][-1]}",
                          file=sys.stderr)  # fmt: skip
        for result, s in samples.items():
            speed[result] = [statistics.median(p for p, _ in s), statistics.median(t for _, t in s)]
    if args.speed or args.epoch:
        speed["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if args.speed_out:
            args.speed_out.parent.mkdir(parents=True, exist_ok=True)
            args.speed_out.write_text(json.dumps(speed, indent=2) + "\n")
    for data in datasets:
        print(f"\n{data} (CPU capability {speed.get('cpu_capability', '?')})\n")
        print("| row | seeds | params | epoch s | dev slot F1 | dev intent | dev sentence | "
              "dev unseen F1 | test slot F1 | test intent | test sentence | test unseen F1 | "
              "p50 ms (int8) | batch/s (int8) |")  # fmt: skip
        print("|" + "---|" * 14)
        for label, results in rows:
            if data not in results:
                continue
            result = results[data]
            seeds = json.loads((SCALE / f"{scores_of(result)}.json").read_text())["seeds"]
            model = seed1_model(args.runs_dir, model_of(result))
            params = f"{parameters(model) / 1e6:.2f} M" if model is not None else "–"
            epoch = speed.get("epoch_seconds", {}).get(model_of(result))
            scores = [cell(seeds, f"{split}_{key}") for split in ("dev", "test") for key in SCORES]
            p50, per_s = speed.get(model_of(result), (None, None))
            timing = [f"{p50:.2f}", f"{per_s:,.0f}"] if p50 is not None else ["–", "–"]
            epoch_cell = f"{epoch:.1f}" if epoch is not None else "–"
            cells = [label, str(len(seeds)), params, epoch_cell, *scores, *timing]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
