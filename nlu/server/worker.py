"""One worker process of `nlu serve`: its own model, its own SO_REUSEPORT socket, a uvicorn
server that drains on SIGTERM, and a pipe to the supervisor (`nlu.server.supervisor`).

The worker tells the supervisor what it is doing through a shared `Board` (its pid, open
connections, requests in flight, readiness), so that the supervisor can say what a dead
worker took with it. Over the pipe, the supervisor asks it to reload a model, and it asks the
supervisor to reload the others after a `PUT /model`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvicorn

from nlu.server.app import (
    ModelOptions,
    ReloadFailed,
    ServerSettings,
    ServerState,
    create_app,
    early_refusal,
)
from nlu.server.board import Board, Slot
from nlu.server.metrics import ServerMetrics

log = logging.getLogger("nlu.server")
DEFAULT_GRACE_S = 20.0  # SIGTERM: how long requests in flight may take to finish
LINGER_S = 1.0  # SIGTERM: how long idle keep-alive connections may still bring a request
RELOAD_TIMEOUT_S = 120.0
REUSE_PORT = hasattr(socket, "SO_REUSEPORT")  # Linux, macOS and the BSDs; not Windows


@dataclass(frozen=True)
class WorkerSpec:
    """What each worker process loads and how it serves (picklable: it crosses to the
    process)."""

    model: str
    options: ModelOptions = field(default_factory=ModelOptions)
    settings: ServerSettings = field(default_factory=ServerSettings)
    grace_s: float = DEFAULT_GRACE_S
    log_level: str = "warning"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port) with SO_REUSEPORT.

    Each worker process holds one such socket on the same port, and the kernel spreads the new
    connections between them by a hash of their addresses. With one socket shared by all the
    workers (uvicorn's and gunicorn's workers), whichever process woke first accepted a whole
    burst of connections: 31 of 32 went to one worker in one benchmark run, and p99 latency
    followed. When a worker's socket closes (it died, or drains), the kernel sends new
    connections to the others.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(
    spec: WorkerSpec, index: int, host: str, port: int, board: Board, pipe: Connection
) -> None:
    """The body of worker process `index`: load the model, then listen and serve until SIGTERM
    (exit 0 once drained)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    slot = board.slot(index)
    slot.pid = os.getpid()
    state = ServerState()
    parser = spec.options.load(spec.model)  # before listening: no connection waits on a load
    link = SupervisorLink(pipe, board, state)
    app = create_app(parser, spec.settings, spec.options, link, ServerMetrics(), state)
    link.swap = app.state.swap
    state.on_change = lambda: setattr(slot, "in_flight", state.in_flight)
    state.on_ready = lambda ready: setattr(slot, "ready", int(ready))
    link.start()
    sock = listening_socket(host, port)
    config = uvicorn.Config(
        app,
        log_level=spec.log_level,
        access_log=False,  # ours: ServerSettings.access_log
        http=worker_protocol(slot, early_refusal(app, spec.settings.access_log)),
        timeout_graceful_shutdown=int(spec.grace_s) or None,
    )
    DrainingServer(config, state, spec.grace_s).run(sockets=[sock])


def worker_protocol(slot: Slot, refuse: Callable[[dict], bytes | None]) -> type:
    """uvicorn's HTTP protocol, counting this worker's open connections on its board slot, and
    answering `refuse`'s 503 itself, before any ASGI work, when the queue is full (with
    httptools; uvicorn's pure-Python h11 protocol leaves that to the app)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class WorkerProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            slot.connections += 1
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            slot.connections -= 1
            super().connection_lost(exc)

        if hasattr(AutoHTTPProtocol, "_start_asgi_task"):  # httptools

            def _start_asgi_task(self, cycle: Any, app: Any) -> None:
                response = refuse(cycle.scope)
                if response is None:
                    super()._start_asgi_task(cycle, app)
                    return
                # The cycle is answered: its body, when it comes, is dropped, and the
                # connection goes on (or closes, as the request or a drain asks).
                cycle.response_started = cycle.response_complete = True
                self.transport.write(response)
                if not cycle.keep_alive or b"connection: close" in response:
                    self.transport.close()
                    return
                self.on_response_complete()

    return WorkerProtocol


class DrainingServer(uvicorn.Server):
    """uvicorn's server, stopped gently: on SIGTERM (or SIGINT) it stops accepting and says
    `Connection: close` on every answer, gives idle keep-alive connections `LINGER_S` to bring
    a last request, then lets uvicorn finish what is in flight within the grace period, and
    returns (exit 0: the signal is not raised again)."""

    def __init__(self, config: uvicorn.Config, state: ServerState, grace_s: float) -> None:
        super().__init__(config)
        self.state = state
        self.grace_s = grace_s
        self.drain_started: float | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.drain_started is None:  # later signals change nothing
            self.drain_started = time.monotonic()
            self.state.draining = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_started is not None and not self.should_exit:
            for server in self.servers:
                server.close()  # stop accepting; new connections go to the other workers
            elapsed = time.monotonic() - self.drain_started
            idle = elapsed >= LINGER_S and self.state.in_flight == 0
            if not self.server_state.connections or idle or elapsed >= self.grace_s:
                self.config.timeout_graceful_shutdown = max(1.0, self.grace_s - elapsed)
                self.should_exit = True
        return await super().on_tick(counter)


class SupervisorLink:
    """The worker's side of the pipe to the supervisor, and the app's `Workers`.

    A thread reads the pipe: the supervisor's "reload" commands (load, check and swap in this
    worker, then answer) and its answers to this worker's own requests. Sends are serialized
    by a lock: a `Connection` is not safe to write from two threads at once.
    """

    def __init__(self, pipe: Connection, board: Board, state: ServerState) -> None:
        self.pipe = pipe
        self.board = board
        self.state = state
        self.swap: Any = None  # the app's swap coroutine function, set once the app exists
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}

    def start(self) -> None:
        threading.Thread(target=self._read, name="nlu-supervisor-link", daemon=True).start()

    def send(self, message: tuple) -> None:
        with self._send_lock:
            self.pipe.send(message)

    async def reload(self, path: Path) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ask = next(self._ids)
        answer = loop.create_future()
        self._pending[ask] = answer
        self.send(("reload_others", ask, str(path)))
        try:
            return await asyncio.wait_for(answer, RELOAD_TIMEOUT_S)
        finally:
            self._pending.pop(ask, None)

    def status(self) -> dict[str, Any]:
        return {"workers": self.board.summary()}

    def _read(self) -> None:
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):  # the supervisor is gone; SIGTERM follows or did
                return
            kind = message[0]
            if kind == "answer":
                _, ask, result = message
                future = self._pending.get(ask)
                loop = self.state.loop
                if future is not None and loop is not None:
                    loop.call_soon_threadsafe(_settle, future, result)
            elif kind == "reload":
                _, command, path = message
                self.send(("reloaded", command, *self._reload(path)))

    def _reload(self, path: str) -> tuple[bool, str]:
        """Swap `path` in (from the reader thread, through the event loop); (ok, message)."""
        self.state.started.wait()
        future = asyncio.run_coroutine_threadsafe(self.swap(Path(path)), self.state.loop)
        try:
            return True, future.result(RELOAD_TIMEOUT_S)
        except ReloadFailed as e:
            return False, str(e)
        except Exception as e:  # noqa: BLE001 - reported to the supervisor, who restarts us
            return False, f"{type(e).__name__}: {e}"


def _settle(future: asyncio.Future, result: Any) -> None:
    if not future.done():
        future.set_result(result)
