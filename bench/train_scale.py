"""Train a config over seeds and summarise each run: epoch time, training time, dev and test.

    # one process, torch's default threads (2 on the 2-core machine):
    python bench/train_scale.py --name one --runs-dir runs/scale
    # two DDP processes on the CPU (gloo), one thread each:
    python bench/train_scale.py --name ddp2 --runs-dir runs/scale -- \\
        --set train.strategy=ddp --set train.devices=2 --set train.num_threads=1

Runs `nlu train CONFIG --seeds SEEDS --set runs_dir=RUNS_DIR/NAME [extra]` with no terminal, so
every epoch is one line on stderr; keeps that output in bench/results/scale/NAME.log and
writes bench/results/scale/NAME.json: per seed, the mean and median seconds of an epoch (training
and dev pass, from the epoch lines), `train_seconds` (the whole run as it reports it), the best epoch,
and the dev and test scores. `--summarise` rebuilds the JSON from an earlier log and runs.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "scale"
SEED_RUN = re.compile(r"^(\S+-seed(\d+)): best epoch")
EPOCH = re.compile(r"^epoch (\d+)/\d+ .* (\d+\.\d) s  best:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--config", default="configs/atis_bilstm_crf.yaml")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--summarise", action="store_true", help="only rebuild the JSON")
    parser.add_argument("extra", nargs="*", help="more nlu train options, after --")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{args.name}.log"
    runs = args.runs_dir / args.name
    if not args.summarise:
        command = [sys.executable, "-m", "cli.main", "train", args.config, "--seeds", args.seeds,
                   "--set", f"runs_dir={runs}", *args.extra]  # fmt: skip
        with log.open("w") as out:
            out.write("$ nlu " + " ".join(command[3:]) + "\n")
            out.flush()
            subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True)
    summary = summarise(log.read_text(), runs)
    summary["command"] = log.read_text().splitlines()[0].removeprefix("$ ")
    summary["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    (OUT / f"{args.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["mean"], indent=2))


def summarise(text: str, runs: Path) -> dict:
    """Per seed and in the mean over seeds: epoch seconds, train seconds, best epoch, scores."""
    groups: list[list[float]] = []  # each run's epoch seconds, in the order the runs ran
    runs_found = []
    for line in text.splitlines():
        if m := EPOCH.match(line):
            if m.group(1) == "1":
                groups.append([])
            groups[-1].append(float(m.group(2)))
        elif m := SEED_RUN.match(line):
            runs_found.append((m.group(1), int(m.group(2))))
    seeds = []
    for (name, seed), times in zip(runs_found, groups, strict=True):
        info = json.loads((runs / name / "metrics.json").read_text())
        scores = {
            f"{split}_{key}": round(value, 2)
            for split, split_scores in info["metrics"].items()
            for key, value in split_scores.items()
            if key in ("slot_f1", "intent_accuracy", "sentence_accuracy", "slot_f1_unseen")
        }
        # The median as well: an epoch slowed by other work on the machine skews the mean.
        seeds.append({"seed": seed, "epoch_seconds": round(statistics.mean(times), 2),
                      "epoch_seconds_median": round(statistics.median(times), 2),
                      "train_seconds": info["train_seconds"],
                      "best_epoch": info["best_epoch"] + 1, **scores})  # fmt: skip
    keys = [k for k in seeds[0] if k != "seed"]
    mean = {
        k: f"{statistics.mean(s[k] for s in seeds):.2f}"
        + (f" ± {statistics.stdev(s[k] for s in seeds):.2f}" if len(seeds) > 1 else "")
        for k in keys
    }
    return {"seeds": seeds, "mean": mean}


if __name__ == "__main__":
    main()
