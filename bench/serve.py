"""Load test of `nlu serve` on loopback: requests per second and latency at 1, 8 and 32 clients.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/serve.py --model runs/latest

Starts the server in a subprocess (without, then with, micro-batching), waits for /health, and
drives POST /model/parse with ATIS test utterances from asyncio clients. Every level is bounded
in requests and in seconds, and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nlu.readers import read_seqio, resolve_split


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, micro_batch: bool) -> subprocess.Popen:
    nlu = str(Path(sys.executable).parent / "nlu")
    cmd = [nlu, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port)]
    if micro_batch:
        cmd.append("--micro-batch")
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not come up within 60 s")


async def load(
    url: str, texts: list[str], clients: int, max_requests: int, max_seconds: float
) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    stop_at = time.perf_counter() + max_seconds

    async def client(c: httpx.AsyncClient, k: int) -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < stop_at:
            text = texts[(sent + k) % len(texts)]
            sent += 1
            started = time.perf_counter()
            response = await c.post(url, json={"text": text})
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        started = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "5xx": sum(n for code, n in statuses.items() if code >= 500),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/latest")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=3000, help="per level, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level, at most")
    args = parser.parse_args()
    texts = [" ".join(e.tokens) for e in read_seqio(resolve_split("atis", "test"))]
    rows = []
    for micro_batch in (False, True):
        port = free_port()
        server = start_server(args.model, port, micro_batch)
        try:
            url = f"http://127.0.0.1:{port}/model/parse"
            asyncio.run(load(url, texts, 4, 200, 5))  # warm up
            for clients in args.clients:
                row = asyncio.run(load(url, texts, clients, args.requests, args.seconds))
                row["micro_batch"] = micro_batch
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("| micro-batch | clients | requests | req/s | p50 ms | p99 ms | 5xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'on' if r['micro_batch'] else 'off'} | {r['clients']} | {r['requests']} | "
            f"{r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['5xx']} |"
        )


if __name__ == "__main__":
    main()
