"""Resident memory per backend: one `nlu tag` process, and one `nlu serve` worker after 200
parses.

    .venv/bin/python bench/memory.py --model runs/latest

`nlu tag` runs first with ONNX, then with torch; its figure is the peak resident set of the
process (`ru_maxrss`). Each server is asked to parse 200 times, then its `VmRSS` is read.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TEXT = "book a flight to London"


def parse_request(port: int) -> urllib.request.Request:
    body = json.dumps({"text": TEXT}).encode()
    return urllib.request.Request(f"http://127.0.0.1:{port}/model/parse", data=body,
                                  headers={"Content-Type": "application/json"})  # fmt: skip


def server_rss_mb(nlu: str, model: str, backend: str, port: int) -> float:
    server = subprocess.Popen(
        [nlu, "serve", "--model", model, "--backend", backend, "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        request = parse_request(port)
        for _ in range(150):  # until it answers
            try:
                urllib.request.urlopen(request).read()
                break
            except OSError:
                time.sleep(0.2)
        for _ in range(200):
            urllib.request.urlopen(request).read()
        # The workers are the supervisor's children: the largest of them.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as reply:
            pids = [w["pid"] for w in json.load(reply)["workers"]["each"] if w["pid"]]
        return max(rss_mb(pid) for pid in pids)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/latest")
    args = parser.parse_args()
    nlu = str(Path(sys.executable).parent / "nlu")
    print("| process | ONNX MB | torch MB |")
    print("|---|---:|---:|")
    peaks = []
    for backend in ("onnx", "torch"):  # ru_maxrss of children is the largest so far
        subprocess.run([nlu, "tag", "--model", args.model, "--backend", backend, TEXT],
                       check=True, capture_output=True)  # fmt: skip
        peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(f"| `nlu tag` (peak) | {peaks[0]:.0f} | {peaks[1]:.0f} |")
    served = [server_rss_mb(nlu, args.model, b, 8931 + i) for i, b in enumerate(("onnx", "torch"))]
    print(f"| `nlu serve` worker after 200 parses | {served[0]:.0f} | {served[1]:.0f} |")


if __name__ == "__main__":
    main()
