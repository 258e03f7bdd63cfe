"""The server that heals, measured on loopback: overload, killed workers, live reloads, SIGTERM.

    .venv/bin/python bench/heal.py overload --model $MODELS/atis
    .venv/bin/python bench/heal.py chaos --model $MODELS/atis
    .venv/bin/python bench/heal.py reload --model $MODELS/atis --other $MODELS/snips
    .venv/bin/python bench/heal.py sigterm --model $MODELS/atis

Each scenario starts `nlu serve` in a subprocess, drives POST /model/parse with one ATIS
question from asyncio clients in this process (bench/serve.py's hand-written HTTP/1.1
connections), writes bench/results/heal/<scenario>.json and prints a table.

- overload: one worker pinned to CPU 0, this process to CPU 1 (on 2 cores the generator must
  not take the server's). Capacity is measured first, on a server with a queue too long to
  fill (closed loop, 32 connections); then an open-loop generator sends at a fixed arrival
  rate, 0.25x capacity ("unloaded") and 4x, to the server as configured.
  Latency runs from the moment a request was due, not sent, so a generator that falls behind
  counts against the server rather than hiding its slowness.
- chaos: two workers under a steady load (closed loop, 16 connections); every --every seconds
  for --seconds, SIGKILL of one worker (alternating). Counts every answer by status, every
  connection error, what each dead worker held (the supervisor's log line), and how long the
  worker count took to come back.
- reload: two workers, two models that disagree (different label sets); PUT /model
  alternates between them every --every seconds under load. Every answer must be one model's
  parse of the question, whole.
- sigterm: two workers under load, SIGTERM to the server after --seconds; every request sent
  before the signal must be answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import httpx
from _timing import percentile
from serve import Connection, free_port, run_loop

import nlu
from nlu.parser import Parser

TEXT = "show me flights from boston to denver on monday morning"
BODY = json.dumps({"text": TEXT}).encode()
RESULTS = Path(__file__).parent / "results" / "heal"
TOKEN = "bench-token"


def start(model: str, port: int, options: list[str], log: Path, cpus: str | None = None):
    nlu_cli = str(Path(sys.executable).parent / "nlu")
    command = [nlu_cli, "serve", "--model", model, "--port", str(port), *options]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    with log.open("w") as stderr:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    return server


def health(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
    except httpx.HTTPError:
        return None


def wait_ready(port: int, workers: int, besides: frozenset = frozenset(), timeout=60.0) -> float:
    """Seconds until `workers` workers are ready, none with a pid in `besides`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = health(port)
        if state is not None:
            ready = {w["pid"] for w in state["workers"]["each"] if w["ready"]}
            if state["workers"]["ready"] == workers and not ready & besides:
                return time.monotonic() - started
        time.sleep(0.02)
    raise RuntimeError(f"{workers} workers were not ready within {timeout} s")


def stop(server: subprocess.Popen) -> int:
    server.send_signal(signal.SIGTERM)
    return server.wait(timeout=60)


class Tally:
    """Outcomes of requests: latencies by status (ms), errors by kind."""

    def __init__(self) -> None:
        self.latencies: dict[int, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.bodies: list[bytes] | None = None  # the 200 answers' bodies, when a list

    def add(self, status: int, ms: float, body: bytes = b"") -> None:
        self.latencies.setdefault(status, []).append(ms)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self, seconds: float) -> dict:
        out = {"seconds": round(seconds, 2), "errors": self.errors}
        for status, values in sorted(self.latencies.items()):
            out[str(status)] = {
                "count": len(values),
                "per_s": round(len(values) / seconds, 1),
                "p50_ms": round(percentile(values, 50), 2),
                "p99_ms": round(percentile(values, 99), 2),
                "max_ms": round(max(values), 2),
            }
        return out


async def closed_loop(port: int, clients: int, seconds: float, tally: Tally, stop=None) -> float:
    """`clients` connections, each sending as soon as its last answer came back."""
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        connection = Connection("127.0.0.1", port, "/model/parse")
        while time.perf_counter() < deadline and not (stop and stop.is_set()):
            started = time.perf_counter()
            try:
                status, body = await connection.post_json(BODY)
                tally.add(status, (time.perf_counter() - started) * 1000)
                if tally.bodies is not None and status == 200:
                    tally.bodies.append(body)
            except (OSError, asyncio.IncompleteReadError) as e:
                tally.error(type(e).__name__)
                connection.close()
                await asyncio.sleep(0.01)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


class _Client(asyncio.Protocol):
    """One keep-alive connection of the open-loop generator, on asyncio's protocol callbacks
    (no coroutine or future per request): the generator must send four times what a server
    core parses, from one core of its own."""

    def __init__(self, generator: OpenLoop) -> None:
        self.generator = generator
        self.buffer = bytearray()
        self.due: float | None = None  # when the request in flight was due
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due: float) -> None:
        self.due = due
        self.transport.write(self.generator.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:") + len(b"content-length:")
        length = int(head[at : head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        self.generator.answered(self, int(head[9:12]), self.due, b"connection: close" in head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)


class OpenLoop:
    """Requests due at a fixed rate, each sent on an idle connection of a pool opened
    beforehand (when none is idle it waits for one); latency from the moment it was due."""

    def __init__(self, port: int, tally: Tally, connections: int = 512) -> None:
        self.port, self.tally, self.size = port, tally, connections
        self.request = (
            f"POST /model/parse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.idle: list[_Client] = []
        self.backlog: deque[float] = deque()  # due times of requests waiting for a connection
        self.outstanding = 0
        self.lags: list[float] = []
        self.loop = asyncio.get_running_loop()

    async def open(self) -> None:
        for _ in range(self.size):
            _, client = await self.loop.create_connection(
                lambda: _Client(self), "127.0.0.1", self.port
            )
            self.idle.append(client)

    def submit(self, due: float) -> None:
        self.outstanding += 1
        if self.idle:
            self._send(self.idle.pop(), due)
        else:
            self.backlog.append(due)

    def _send(self, client: _Client, due: float) -> None:
        self.lags.append((self.loop.time() - due) * 1000)
        client.send(due)

    def answered(self, client: _Client, status: int, due: float, closing: bool) -> None:
        self.outstanding -= 1
        self.tally.add(status, (self.loop.time() - due) * 1000)
        if closing:
            client.transport.close()
            return
        if self.backlog:
            self._send(client, self.backlog.popleft())
        else:
            self.idle.append(client)

    def lost(self, client: _Client) -> None:
        if client.due is not None and client in self.idle:
            self.idle.remove(client)
        elif client.due is not None:
            self.outstanding -= 1
            self.tally.error("ConnectionLost")
        client.due = None

    async def run(self, rate: float, seconds: float) -> tuple[float, float]:
        """Send for `seconds` at `rate`; returns (seconds until the last answer, generator lag
        p99 in ms: how late requests went out)."""
        total = int(rate * seconds)
        start_at = self.loop.time() + 0.05
        sent = 0
        while sent < total:
            now = self.loop.time()
            while sent < total and start_at + sent / rate <= now:
                self.submit(start_at + sent / rate)
                sent += 1
            await asyncio.sleep(0.0002)
        deadline = self.loop.time() + 30
        while self.outstanding > 0 and self.loop.time() < deadline:
            await asyncio.sleep(0.001)
        elapsed = self.loop.time() - start_at
        for client in self.idle:
            client.transport.close()
        return elapsed, round(percentile(self.lags, 99), 2)


async def open_loop(port: int, rate: float, seconds: float, tally: Tally) -> tuple[float, float]:
    generator = OpenLoop(port, tally)
    await generator.open()
    return await generator.run(rate, seconds)


def capacity(args, log: Path) -> dict:
    """What one worker parses a second when nothing is refused: 32 closed-loop connections
    against the same server with a queue too long to fill."""
    port = free_port()
    server = start(args.model, port, ["--workers", "1", *args.serve, "--max-queue", "100000"],
                   log, cpus="0")  # fmt: skip
    try:
        wait_ready(port, 1)
        run_loop(closed_loop(port, 8, 3, Tally()))  # warm up
        tally = Tally()
        seconds = run_loop(closed_loop(port, 32, args.seconds, tally))
        return tally.summary(seconds)
    finally:
        stop(server)


def overload(args) -> dict:
    os.sched_setaffinity(0, {1})  # the generator on CPU 1, the server on CPU 0
    log = Path(tempfile.mkdtemp()) / "serve.log"
    measured = capacity(args, log)
    port = free_port()
    server = start(args.model, port, ["--workers", "1", *args.serve], log, cpus="0")
    try:
        wait_ready(port, 1)
        run_loop(closed_loop(port, 8, 3, Tally()))  # warm up
        capacity_per_s = measured["200"]["per_s"]
        result = {"capacity_per_s": capacity_per_s, "capacity_run": measured}
        for name, factor in (("unloaded", 0.25), ("overload", 4.0)):
            tally = Tally()
            rate = factor * capacity_per_s
            seconds, lag = run_loop(open_loop(port, rate, args.seconds, tally))
            result[name] = {"rate_per_s": round(rate), "generator_lag_p99_ms": lag,
                            **tally.summary(seconds)}  # fmt: skip
        result["health"] = health(port)
    finally:
        result["exit_status"] = stop(server)
    unloaded = result["unloaded"]["200"]["p99_ms"]
    answered = result["overload"]["200"]["p99_ms"]
    result["answered_p99_over_unloaded_p99"] = round(answered / unloaded, 2)
    return result


DEATH = re.compile(
    r"worker (\d+) \(pid (\d+)\) was killed by SIGKILL after ([\d.]+) s, with (\d+) requests in "
    r"flight on (\d+) open connections"
)


def chaos(args) -> dict:
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "serve.log"
    server = start(args.model, port, ["--workers", "2"], log)
    recoveries = []
    try:
        wait_ready(port, 2)
        tally = Tally()

        async def scenario() -> float:
            load = asyncio.ensure_future(closed_loop(port, 16, args.seconds, tally))
            loop = asyncio.get_running_loop()
            kills = 0
            started = time.monotonic()
            while time.monotonic() - started < args.seconds - args.every:
                await asyncio.sleep(args.every)
                state = await loop.run_in_executor(None, health, port)
                victim = state["workers"]["each"][kills % 2]["pid"]
                os.kill(victim, signal.SIGKILL)
                kills += 1
                back = await loop.run_in_executor(
                    None, wait_ready, port, 2, frozenset({victim}), 30
                )
                recoveries.append(round(back, 3))
            return await load

        seconds = run_loop(scenario())
        result = {"load": tally.summary(seconds), "health": health(port)}
    finally:
        result["exit_status"] = stop(server)
    deaths = [m.groups() for m in DEATH.finditer(log.read_text())]
    result["kills"] = len(recoveries)
    result["deaths_logged"] = len(deaths)
    result["in_flight_at_deaths"] = sum(int(d[3]) for d in deaths)
    result["connections_at_deaths"] = sum(int(d[4]) for d in deaths)
    result["connection_errors"] = sum(tally.errors.values())
    result["back_to_2_workers_s"] = {"each": recoveries, "max": max(recoveries, default=None)}
    return result


def reload(args) -> dict:
    root = Path(tempfile.mkdtemp(prefix="nlu-models-"))
    models = []
    for name, source in (("a", args.model), ("b", args.other)):
        shutil.copytree(source, root / name)
        models.append(root / name)
    expected = [Parser.load(m).parse(TEXT).to_dict() for m in models]
    port = free_port()
    log = root / "serve.log"
    options = ["--workers", "2", "--token", TOKEN, "--model-root", str(root)]
    server = start(str(models[0]), port, options, log)
    puts = []
    try:
        wait_ready(port, 2)
        tally = Tally()
        tally.bodies = []

        async def scenario() -> float:
            load = asyncio.ensure_future(closed_loop(port, 8, args.seconds, tally))
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            k = 1
            while time.monotonic() - started < args.seconds - args.every:
                await asyncio.sleep(args.every)
                reply = await loop.run_in_executor(None, lambda k=k: httpx.put(
                    f"http://127.0.0.1:{port}/model", json={"model": models[k % 2].name},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120))  # fmt: skip
                answer = reply.json()
                answer["model"] = Path(answer.get("model", "")).name  # no machine paths
                puts.append({"status": reply.status_code, **answer})
                k += 1
            return await load

        # The load must carry the token too.
        Connection.extra_headers = f"Authorization: Bearer {TOKEN}\r\n"
        seconds = run_loop(scenario())
        result = {"load": tally.summary(seconds), "puts": puts}
    finally:
        result["exit_status"] = stop(server)
    which = [0, 0, 0]  # model a, model b, neither
    for body in tally.bodies:
        got = json.loads(body)
        which[next((i for i, e in enumerate(expected) if same(got, e)), 2)] += 1
    result["answers_by_model"] = {"a": which[0], "b": which[1], "mixed_or_other": which[2]}
    result["failed"] = sum(tally.errors.values()) + sum(
        len(v) for s, v in tally.latencies.items() if s != 200
    )
    shutil.rmtree(root, ignore_errors=True)
    return result


def same(got, expected) -> bool:
    """The same parse: equal labels, spans and ranking, probabilities within 1e-4 (batches of
    other sizes round differently)."""
    if isinstance(expected, float):
        return isinstance(got, float) and abs(got - expected) <= 1e-4
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(same(got[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(same(g, e) for g, e in zip(got, expected))
        )
    return got == expected


def sigterm(args) -> dict:
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "serve.log"
    server = start(args.model, port, ["--workers", "2"], log)
    wait_ready(port, 2)
    outcomes: list[tuple[float, object]] = []

    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        stop_load = asyncio.Event()

        async def client() -> None:
            connection = Connection("127.0.0.1", port, "/model/parse")
            while not stop_load.is_set():
                sent = time.monotonic()
                try:
                    status, _ = await connection.post_json(BODY)
                    outcomes.append((sent, status))
                except (OSError, asyncio.IncompleteReadError) as e:
                    outcomes.append((sent, type(e).__name__))
                    connection.close()
                    await asyncio.sleep(0.01)
            connection.close()

        clients = [asyncio.ensure_future(client()) for _ in range(16)]
        await asyncio.sleep(args.seconds)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = await loop.run_in_executor(None, server.wait, 60)
        stopped = time.monotonic()
        stop_load.set()
        await asyncio.gather(*clients)
        return signalled, stopped - signalled, status

    signalled, drain_s, status = run_loop(scenario())
    before = [o for s, o in outcomes if s < signalled]
    after = [o for s, o in outcomes if s >= signalled]
    return {
        "sent_before_signal": len(before),
        "answered_200_before_signal": sum(1 for o in before if o == 200),
        "not_answered_before_signal": [o for o in before if o != 200],
        "sent_after_signal": len(after),
        "answered_after_signal": sum(1 for o in after if o == 200),
        "exit_status": status,
        "signal_to_exit_s": round(drain_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["overload", "chaos", "reload", "sigterm"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--other", help="reload: the second model (its labels must differ)")
    parser.add_argument("--seconds", type=float, help="overload: per phase (10); chaos: 60; "
                        "reload: 30; sigterm: load before the signal (5)")  # fmt: skip
    parser.add_argument("--every", type=float, default=4.0, help="chaos, reload: seconds")
    parser.add_argument("--serve", nargs=argparse.REMAINDER, default=[],
                        help="overload: options for nlu serve (the rest of the line)")  # fmt: skip
    args = parser.parse_args()
    defaults = {"overload": 10.0, "chaos": 60.0, "reload": 30.0, "sigterm": 5.0}
    args.seconds = args.seconds or defaults[args.scenario]
    result = {"scenario": args.scenario, "model": Path(args.model).name, "nlu": nlu.__version__,
              "cpu_capability": cpu_capability(), **globals()[args.scenario](args)}  # fmt: skip
    if args.serve:
        result["serve_options"] = args.serve
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.scenario + ("_" + "_".join(a.strip("-") for a in args.serve) if args.serve else "")
    (RESULTS / f"{name}.json").write_text(text + "\n")


def cpu_capability() -> str:
    """torch's name for the CPU's vector instructions, asked in a child process (this one
    stays light)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
