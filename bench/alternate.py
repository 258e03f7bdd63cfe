"""Alternate `bench/inference.py --speed-only` between two checkouts, one process per run.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/alternate.py OLD_TREE NEW_TREE \\
        --model runs/latest --pairs 5 --precisions int8,float32,bfloat16 --batch-workers 2

Each tree runs its own `bench/inference.py` with `PYTHONPATH` set to it (make the trees with
`git worktree add`); the order is swapped every pair, so a drift of the machine's speed falls on
both. Prints each pair, then per precision the medians and the range of NEW / OLD over the pairs,
and the run-to-run spread (max - min over the median) of each tree's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def run(tree: str, args: argparse.Namespace, precision: str) -> tuple[float, float, float]:
    command = [
        sys.executable, f"{tree}/bench/inference.py", "--model", args.model, "--threads", "1",
        "--repeats", str(args.repeats), "--gc-freeze", "--speed-only",
        "--batch-workers", str(args.batch_workers), "--precisions", precision,
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)[precision]
    return result["parse"]["p50_ms"], result["parse"]["p99_ms"], result["parse_batch_256_per_s"]


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--model", default="runs/latest")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-workers", type=int, default=1)
    parser.add_argument("--precisions", default="int8,float32")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    found: dict[tuple[str, str], list[tuple[float, float, float]]] = {
        (tree, p): [] for tree in ("old", "new") for p in precisions
    }
    for pair in range(args.pairs):
        for p in precisions:
            order = [("old", args.old), ("new", args.new)]
            for name, tree in order if pair % 2 == 0 else order[::-1]:
                found[(name, p)].append(run(tree, args, p))
            old, new = found[("old", p)][-1], found[("new", p)][-1]
            print(
                f"pair {pair} {p}: old p50 {old[0]:.3f} p99 {old[1]:.3f} batch {old[2]:.0f} | "
                f"new p50 {new[0]:.3f} p99 {new[1]:.3f} batch {new[2]:.0f}",
                flush=True,
            )
    for p in precisions:
        old, new = found[("old", p)], found[("new", p)]
        line = [f"{p}:"]
        for k, name in ((0, "p50"), (1, "p99"), (2, "batch")):
            ratios = [b[k] / a[k] for a, b in zip(old, new)]
            line.append(
                f"{name} old {statistics.median(a[k] for a in old):.3f} "
                f"new {statistics.median(b[k] for b in new):.3f} "
                f"new/old {min(ratios):.3f}..{max(ratios):.3f} "
                f"(median {statistics.median(ratios):.3f}), spread old "
                f"{spread([a[k] for a in old]):.3f} new {spread([b[k] for b in new]):.3f};"
            )
        print(" ".join(line))


if __name__ == "__main__":
    main()
