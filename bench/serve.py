"""Load test of `nlu serve` on loopback: requests per second and latency at 1, 8 and 32 clients.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/serve.py --model runs/latest

Starts the server in a subprocess (without, then with, micro-batching; `--only on|off` for one
of them, `--only defaults` for nlu serve's own choice), waits for /health, and drives POST /model/parse with ATIS test utterances from asyncio
clients, each on its own keep-alive connection. Every level is bounded in requests and in
seconds, and talks only to 127.0.0.1. `--quantize`, `--precision`, `--backend`, `--workers N`
and `--threads N` pass through to `nlu serve`.
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

from nlu.data.seqio import read_seqio, resolve_split


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    model: str, port: int, micro_batch: bool | None, options: list[str]
) -> subprocess.Popen:
    nlu = str(Path(sys.executable).parent / "nlu")
    cmd = [nlu, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), *options]
    if micro_batch is not None:  # None: nlu serve's default (micro-batching on)
        cmd.append("--micro-batch" if micro_batch else "--no-micro-batch")
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


class Connection:
    """A keep-alive HTTP/1.1 client connection on asyncio streams.

    The load generator shares the machine's two cores with the server, so it must cost as little
    as possible per request: no client library, the request bytes built by hand, the response
    read by its Content-Length.
    """

    extra_headers = ""  # more header lines, each ending in CRLF (bench/heal.py's token)

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{self.extra_headers}\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        status_line, *header_lines = (
            (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        )
        length, closing = 0, False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                closing = True  # a draining server: the next request opens a new connection
        payload = await self.reader.readexactly(length)
        if closing:
            self.close()
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(
    port: int, texts: list[str], clients: int, max_requests: int, max_seconds: float
) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    sent = 0
    stop_at = time.perf_counter() + max_seconds

    async def client(k: int) -> None:
        nonlocal sent
        connection = Connection("127.0.0.1", port, "/model/parse")
        try:
            while sent < max_requests and time.perf_counter() < stop_at:
                body = bodies[(sent + k) % len(bodies)]
                sent += 1
                started = time.perf_counter()
                status, _ = await connection.post_json(body)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
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


def run_loop(coroutine):
    """asyncio.run, on uvloop when it is installed (as it is with the server's dependencies)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/latest")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=3000, help="per level, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level, at most")
    parser.add_argument("--quantize", action="store_true", help="serve the int8 model")
    parser.add_argument("--precision", help="float32, int8 or bfloat16 (nlu serve --precision)")
    parser.add_argument("--backend", help="auto, onnx or torch (nlu serve --backend)")
    parser.add_argument("--threads", type=int, help="the server's torch threads (default: 1)")
    parser.add_argument("--wait-ms", type=float, help="micro-batch gathering time")
    parser.add_argument("--workers", type=int, help="server processes (default: nlu serve's)")
    parser.add_argument("--max-queue", type=int, help="texts waiting per worker (nlu serve's)")
    parser.add_argument("--only", choices=["off", "on", "defaults"],
                        help="only without / with micro-batching, or nlu serve's defaults "
                        "(with no other options: what a user gets with no flags)")  # fmt: skip
    args = parser.parse_args()
    options = [] if args.threads is None else ["--threads", str(args.threads)]
    if args.quantize:
        options.append("--quantize")
    if args.precision:
        options += ["--precision", args.precision]
    if args.backend:
        options += ["--backend", args.backend]
    if args.workers is not None:
        options += ["--workers", str(args.workers)]
    if args.max_queue is not None:
        options += ["--max-queue", str(args.max_queue)]
    if args.wait_ms is not None:
        options += ["--micro-batch-wait-ms", str(args.wait_ms)]
    modes = {"off": [False], "on": [True], "defaults": [None], None: [False, True]}[args.only]
    texts = [" ".join(e.tokens) for e in read_seqio(resolve_split("atis", "test"))]
    rows = []
    for micro_batch in modes:
        port = free_port()
        server = start_server(args.model, port, micro_batch, options)
        try:
            run_loop(load(port, texts, 4, 200, 5))  # warm up
            for clients in args.clients:
                row = run_loop(load(port, texts, clients, args.requests, args.seconds))
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
            f"| {({True: 'on', False: 'off'}).get(r['micro_batch'], 'default')} | {r['clients']} | {r['requests']} | "
            f"{r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['5xx']} |"
        )


if __name__ == "__main__":
    main()
