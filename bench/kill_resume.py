"""`kill -9` a training run in the middle of an epoch, resume it, and compare it with an
uninterrupted run of the same config and seed.

    python bench/kill_resume.py --runs-dir runs/kill9 --whole RUN_DIR_OF_THE_UNINTERRUPTED_RUN

Starts `nlu train CONFIG --set runs_dir=RUNS_DIR` (seed 1 unless --set says otherwise), waits
until the checkpoint holds `--epoch - 1` whole epochs, lets the next one run for two seconds,
sends SIGKILL, then runs `nlu train --resume RUN_DIR` to the end. Prints and writes
bench/results/scale/kill_resume.json: the epoch killed, both runs' best epoch and dev / test
scores, and whether the exported weights are the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "scale"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--whole", required=True, type=Path, help="the uninterrupted run")
    parser.add_argument("--config", default="configs/atis_bilstm_crf.yaml")
    parser.add_argument("--epoch", type=int, default=10, help="1-based epoch to kill in")
    parser.add_argument("extra", nargs="*", help="more nlu train options, after --")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = (OUT / "kill_resume.log").open("w")
    command = [sys.executable, "-m", "cli.main", "train", args.config,
               "--set", f"runs_dir={args.runs_dir}", *args.extra]  # fmt: skip
    log.write("$ nlu " + " ".join(command[3:]) + "\n")
    log.flush()
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    run_dir = wait_for_whole_epochs(args.runs_dir, args.epoch - 1, process)
    time.sleep(2.0)  # into epoch --epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.write(f"# SIGKILL during epoch {args.epoch}\n$ nlu train --resume {run_dir}\n")
    log.flush()
    resume = [sys.executable, "-m", "cli.main", "train", "--resume", str(run_dir)]
    subprocess.run(resume, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    result = {
        "killed_in_epoch": args.epoch,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "resumed": outcome(run_dir),
        "uninterrupted": outcome(args.whole),
    }
    result["same_weights"] = result["resumed"].pop("sha256") == result["uninterrupted"].pop(
        "sha256"
    )
    (OUT / "kill_resume.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def wait_for_whole_epochs(runs: Path, epochs: int, process: subprocess.Popen) -> Path:
    """The run directory, once its checkpoint holds `epochs` whole epochs."""
    while True:
        for info in runs.glob("*/checkpoints/last.json"):
            try:
                if json.loads(info.read_text())["epoch"] + 1 >= epochs:
                    return info.parent.parent
            except (ValueError, KeyError):
                pass  # being replaced
        if process.poll() is not None:
            raise SystemExit(f"the run ended (status {process.returncode}) before epoch {epochs}")
        time.sleep(0.05)


def outcome(run_dir: Path) -> dict:
    info = json.loads((run_dir / "model" / "info.json").read_text())
    weights = (run_dir / "model" / "model.safetensors").read_bytes()
    return {
        "run": run_dir.name,
        "best_epoch": info["best_epoch"] + 1,
        "metrics": {
            split: {k: round(v, 2) for k, v in scores.items()}
            for split, scores in info["metrics"].items()
        },
        "sha256": hashlib.sha256(weights).hexdigest(),
    }


if __name__ == "__main__":
    main()
