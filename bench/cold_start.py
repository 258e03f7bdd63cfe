"""Cold-start wall time of `nlu tag` (each backend) next to `python -c "import torch"`,
interleaved in one run.

.venv/bin/python bench/cold_start.py --model runs/latest --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/latest")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    nlu = str(Path(sys.executable).parent / "nlu")
    commands = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "nlu --help": [nlu, "--help"],
        **{
            f"nlu tag --backend {backend} (one sentence)": [
                nlu, "tag", "--model", args.model, "--backend", backend, "book a flight to London"
            ]
            for backend in ("onnx", "torch")
        },
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():
        wall(cmd)  # warm the file cache once
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c 'import torch'"])
    print("| command | median s | min s | ratio to import torch |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| `{name}` | {med:.3f} | {min(values):.3f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
