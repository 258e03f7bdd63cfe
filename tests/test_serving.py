"""`nlu serve` as an operator runs it: real processes on loopback, bounded in time.

A worker killed under load is replaced, and the load loses no more requests than the dead
worker held; a model reloaded under load switches every worker with no failed or mixed answer;
SIGTERM under load answers every request sent before it, then exits 0.
"""

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from nlu.parser import Parser
from nlu.server import REUSE_PORT
from tests.conftest import split_floats
from tests.test_server import disagreeing_model

pytestmark = pytest.mark.skipif(not REUSE_PORT, reason="the supervisor needs SO_REUSEPORT")
TEXT = "taxi in dallas"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def health(self) -> dict:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            return client.get("/health").json()

    def wait_ready(self, workers: int, timeout: float = 120.0, besides: set[int] = frozenset()):
        """Wait until `workers` workers are ready, none of them with a pid in `besides`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.health()["workers"]
                pids = {w["pid"] for w in state["each"] if w["ready"]}
                if state["ready"] == workers and not pids & besides:
                    return state
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)


@contextmanager
def serving(model_dir, tmp_path, *options: str, workers: int = 2):
    port = free_port()
    nlu = str(Path(sys.executable).parent / "nlu")
    log = tmp_path / f"serve-{port}.log"
    args = ["serve", "--model", str(model_dir), "--port", str(port), "--workers", str(workers)]
    with log.open("w") as stderr:
        process = subprocess.Popen([nlu, *args, *options], stderr=stderr)
    server = Server(process, port, log)
    try:
        server.wait_ready(workers)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


class Load:
    """Clients that parse TEXT in a loop on keep-alive connections, each in its own thread,
    recording (time sent, status or error, body) for every request."""

    def __init__(self, url: str, clients: int, headers: dict | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.results: list[tuple[float, object, dict | None]] = []
        self.stop = threading.Event()
        self.refused: httpx.Response | None = None  # one 503 answer
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _client(self) -> None:
        client = httpx.Client(base_url=self.url, timeout=30, headers=self.headers)
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                reply = client.post("/model/parse", json={"text": TEXT})
                body = reply.json() if reply.status_code == 200 else None
                if reply.status_code == 503:
                    self.refused = reply
                self.results.append((sent, reply.status_code, body))
            except httpx.TransportError as e:
                self.results.append((sent, type(e).__name__, None))
                client.close()
                client = httpx.Client(base_url=self.url, timeout=30, headers=self.headers)
        client.close()

    def errors(self) -> list:
        return [r for r in self.results if not isinstance(r[1], int)]


def test_killed_workers_are_replaced_and_only_their_requests_are_lost(trained, tmp_path):
    kills = 3
    with serving(trained.model_dir, tmp_path) as server, Load(server.url, clients=6) as load:
        time.sleep(1.0)
        for k in range(kills):
            each = server.health()["workers"]["each"]
            victim = each[k % 2]["pid"]
            subprocess.run(["kill", "-9", str(victim)], check=True)
            killed = time.monotonic()
            server.wait_ready(2, timeout=10, besides={victim})
            assert time.monotonic() - killed < 10  # back to two workers within seconds
            time.sleep(1.0)
        health = server.health()["workers"]
        with httpx.Client(base_url=server.url) as client:
            metrics = client.get("/metrics").text
    assert health["ready"] == 2 and health["restarts"] == kills
    assert f"nlu_worker_restarts_total {float(kills)}" in metrics
    deaths = re.findall(
        r"killed by SIGKILL .* with (\d+) requests in flight on (\d+) open connections",
        server.log.read_text(),
    )
    assert len(deaths) == kills
    statuses = {r[1] for r in load.results if isinstance(r[1], int)}
    assert statuses <= {200, 503} and 200 in statuses
    # Each open connection of a killed worker loses at most its one request (in flight, or
    # the next one on it); nothing else fails.
    held = sum(int(connections) for _, connections in deaths)
    assert len(load.errors()) <= held, (load.errors(), deaths)
    assert len(load.results) > 100


def same_parse(got: dict, expected: dict) -> bool:
    mine, theirs = [], []
    if split_floats(got, mine) != split_floats(expected, theirs):
        return False
    return all(abs(a - b) <= 1e-4 for a, b in zip(mine, theirs))


def test_a_reload_under_load_switches_every_worker_with_no_mixed_answer(trained, parser, tmp_path):
    root = tmp_path / "models"
    new = disagreeing_model(parser, root)
    old_parse = Parser.load(trained.model_dir).parse(TEXT).to_dict()
    new_parse = Parser.load(new).parse(TEXT).to_dict()
    options = ("--token", "s3cret", "--model-root", str(root))
    token = {"Authorization": "Bearer s3cret"}
    with serving(trained.model_dir, tmp_path, *options) as server:
        with Load(server.url, clients=4, headers=token) as load:
            time.sleep(1.0)
            with httpx.Client(base_url=server.url, timeout=120, headers=token) as client:
                reply = client.put("/model", json={"model": new.name})
            switched = time.monotonic()
            time.sleep(1.0)
        assert reply.status_code == 200, reply.text
        assert reply.json()["switched"] == 2 and reply.json()["workers"] == 2
        # New connections, so both workers answer: all of them serve the new model.
        after = []
        for _ in range(12):
            with httpx.Client(base_url=server.url, headers=token) as client:
                after.append(client.post("/model/parse", json={"text": TEXT}).json())
        # SIGHUP reloads the path being served, in every worker.
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while server.log.read_text().count("2 of 2 workers switched") < 2:
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
        assert f"SIGHUP: reloading {new}" in server.log.read_text()
    assert not load.errors() and {r[1] for r in load.results} == {200}
    assert all(same_parse(b, old_parse) or same_parse(b, new_parse) for _, _, b in load.results)
    assert any(same_parse(b, new_parse) for sent, _, b in load.results if sent > switched)
    assert all(same_parse(b, new_parse) for b in after)


def test_sigterm_under_load_answers_every_request_sent_before_it(trained, tmp_path):
    with serving(trained.model_dir, tmp_path) as server, Load(server.url, clients=8) as load:
        time.sleep(1.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=60)
        stopped = time.monotonic()
    before = [r for r in load.results if r[0] < signalled]
    assert len(before) > 50
    assert all(r[1] == 200 for r in before), [r[1] for r in before if r[1] != 200]
    assert status == 0
    assert stopped - signalled < 15, "drained within the grace period"
    assert "stopping: draining 2 workers" in server.log.read_text()


def test_a_full_queue_is_refused_by_the_worker_with_retry_after(trained, tmp_path):
    options = ("--max-queue", "1")
    with serving(trained.model_dir, tmp_path, *options, workers=1) as server:
        with Load(server.url, clients=12) as load:
            time.sleep(2.0)
        health = server.health()
        with httpx.Client(base_url=server.url) as client:
            metrics = client.get("/metrics").text
    counts = {s: sum(1 for r in load.results if r[1] == s) for s in (200, 503)}
    assert not load.errors() and counts[200] + counts[503] == len(load.results)
    assert counts[200] > 0 and counts[503] > 0, counts
    refused = load.refused
    assert refused.headers["retry-after"] == "1" and len(refused.headers["x-request-id"]) == 32
    assert refused.json()["detail"].startswith("busy, retry")
    assert health["queue"]["limit"] == 1 and health["queue"]["shed"] == counts[503]
    shed = re.search(r"nlu_shed_requests_total ([\d.]+)", metrics)
    assert float(shed.group(1)) == counts[503]
