"""The parent process of `nlu serve`: starts the workers, starts another when one dies, spreads
model reloads, and stops them all gently.

Why our own supervisor: the per-worker SO_REUSEPORT sockets spread connections evenly
(`nlu.server.worker.listening_socket`), and the process managers at hand (uvicorn's
`--workers`, gunicorn) restart workers but share one socket among them, which sent 31 of 32
connections to one worker in our benchmark. So the parent of those sockets supervises:
- a worker that exits or dies is logged in one line (what it held: requests in flight, open
  connections) and started again: at once after a worker that served a while, with a
  back-off doubling from `BACKOFF_S` to `MAX_BACKOFF_S` while it keeps dying before it is
  ready or within `STABLE_S` of its start;
- `PUT /model` at one worker, or SIGHUP here, reloads the model in every worker;
- SIGTERM or SIGINT drains every worker (`nlu.server.worker.DrainingServer`) and exits 0.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from nlu.server.board import Board
from nlu.server.metrics import MULTIPROC_ENV
from nlu.server.worker import RELOAD_TIMEOUT_S, WorkerSpec, run_worker

log = logging.getLogger("nlu.server")
BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_S = 3.0  # a worker that served this long died by accident, not of a fault at start
EXIT_MARGIN_S = 10.0  # past the grace period, stragglers are killed


def restart_delay(quick_deaths: int) -> float:
    """Seconds before a dead worker starts again, after `quick_deaths` deaths in a row before
    it was ready or within `STABLE_S` of its start: none after a worker that served a while,
    then `BACKOFF_S`, doubling up to `MAX_BACKOFF_S`."""
    if quick_deaths == 0:
        return 0.0
    return min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (quick_deaths - 1))


@dataclass
class _Worker:
    index: int
    process: Any = None  # multiprocessing.Process
    pipe: Connection | None = None  # the supervisor's end
    started: float = 0.0
    quick_deaths: int = 0  # in a row, each within STABLE_S of its start
    start_at: float | None = None  # when to start it again (None: running, or stopping)


@dataclass
class _Broadcast:
    """A reload being spread: which workers are still to answer, and what they said."""

    command: int
    path: str
    origin: tuple[int, int] | None  # (worker index, its request id), or None for SIGHUP
    waiting: set[int]
    switched: int
    deadline: float
    failed: list[str] = field(default_factory=list)
    restarting: int = 0


class Supervisor:
    """Runs `workers` processes of `spec` on (host, port); `run` returns the exit status."""

    def __init__(self, spec: WorkerSpec, host: str, port: int, workers: int) -> None:
        self.spec = spec
        self.host, self.port = host, port
        # spawn, not fork: the parent may have imported torch, whose threads do not survive a
        # fork, and each worker should start from a clean interpreter anyway.
        self.context = multiprocessing.get_context("spawn")
        self.board = Board(self.context, workers)
        self.workers = [_Worker(i) for i in range(workers)]
        self.stopping = False
        self.hangup = False
        self.commands = itertools.count(1)
        self.broadcasts: list[_Broadcast] = []  # the first one is being spread
        self.requests: list[tuple[int, int, str]] = []  # reloads asked, not yet spread
        self.metrics: Any = None

    def run(self) -> int:
        metrics_dir = tempfile.mkdtemp(prefix="nlu-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir  # before prometheus_client is imported
        handlers = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, self._stop),
            signal.SIGINT: signal.signal(signal.SIGINT, self._stop),
        }
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
        try:
            from nlu.server.metrics import ServerMetrics

            self.metrics = ServerMetrics()
            for worker in self.workers:
                self._start(worker)
            while not self.stopping:
                self._step()
            return self._stop_all()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            for worker in self.workers:
                if worker.process is not None and worker.process.is_alive():
                    worker.process.kill()
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)

    # Signals only set flags; the loop acts on them.
    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _hangup(self, signum: int, frame: Any) -> None:
        self.hangup = True

    def _start(self, worker: _Worker) -> None:
        here, there = self.context.Pipe()
        worker.process = self.context.Process(
            target=run_worker,
            args=(self.spec, worker.index, self.host, self.port, self.board, there),
            name=f"nlu-worker-{worker.index}",
        )
        worker.process.start()
        there.close()  # the worker holds its end now
        worker.pipe = here
        worker.started = time.monotonic()
        worker.start_at = None

    def _step(self) -> None:
        """One turn of the loop: deaths, messages, due restarts, reloads, signals."""
        running = [w for w in self.workers if w.process is not None]
        ready = wait(
            [w.process.sentinel for w in running] + [w.pipe for w in running if w.pipe],
            timeout=0.2,
        )
        for worker in running:
            if worker.pipe in ready:
                self._receive(worker)
        for worker in running:
            if worker.process.sentinel in ready and not self.stopping:
                self._died(worker)
        now = time.monotonic()
        for worker in self.workers:
            if worker.start_at is not None and now >= worker.start_at and not self.stopping:
                self._start(worker)
        if self.hangup:
            self.hangup = False
            log.info("SIGHUP: reloading %s in every worker", self.spec.model)
            self.requests.append((-1, 0, self.spec.model))
        self._spread_reloads(now)

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.pipe.recv()
        except (EOFError, OSError):  # it died; its sentinel says so too
            worker.pipe = None
            return
        kind = message[0]
        if kind == "reload_others":
            _, ask, path = message
            self.requests.append((worker.index, ask, path))
        elif kind == "reloaded":
            _, command, ok, detail = message
            if self.broadcasts and self.broadcasts[0].command == command:
                spread = self.broadcasts[0]
                spread.waiting.discard(worker.index)
                if ok:
                    spread.switched += 1
                else:
                    spread.failed.append(f"worker {worker.index}: {detail}")
                    log.warning("worker %d could not load %s (%s); restarting it",
                                worker.index, spread.path, detail)  # fmt: skip
                    worker.process.terminate()  # it comes back with the new model

    def _died(self, worker: _Worker) -> None:
        """Log a worker's death, clear its slot and schedule its restart."""
        process = worker.process
        process.join()
        slot = self.board.slot(worker.index)
        held = slot.as_dict()
        slot.clear()
        from nlu.server.metrics import mark_dead

        mark_dead(process.pid)
        lived = time.monotonic() - worker.started
        quick = not held["ready"] or lived < STABLE_S
        worker.quick_deaths = worker.quick_deaths + 1 if quick else 0
        delay = restart_delay(worker.quick_deaths)
        restarts = self.board.count_restart()
        self.metrics.restarts.inc()
        code = process.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        log.warning(
            "worker %d (pid %d) %s after %.1f s, with %d requests in flight on %d open "
            "connections; starting another in %.1f s (restart %d)",
            worker.index, process.pid, how, lived, held["in_flight"], held["connections"],
            delay, restarts,
        )  # fmt: skip
        if worker.pipe is not None:
            worker.pipe.close()
        worker.process, worker.pipe = None, None
        worker.start_at = time.monotonic() + delay
        for spread in self.broadcasts[:1]:
            if worker.index in spread.waiting:
                spread.waiting.discard(worker.index)
                spread.restarting += 1  # it comes back with the new model

    def _spread_reloads(self, now: float) -> None:
        """Start the next asked reload when none is being spread; finish the current one when
        every worker answered (or died, or the time ran out)."""
        if not self.broadcasts and self.requests:
            origin, ask, path = self.requests.pop(0)
            # Workers (re)started from now on load the new model.
            self.spec = replace(self.spec, model=path)
            command = next(self.commands)
            others = [w for w in self.workers if w.index != origin and w.pipe is not None]
            spread = _Broadcast(
                command, path, (origin, ask) if origin >= 0 else None,
                {w.index for w in others}, switched=1 if origin >= 0 else 0,
                deadline=now + RELOAD_TIMEOUT_S,
            )  # fmt: skip
            spread.restarting = sum(1 for w in self.workers if w.index != origin and w.pipe is None)
            self.broadcasts.append(spread)
            for worker in others:
                worker.pipe.send(("reload", command, path))
        if self.broadcasts:
            spread = self.broadcasts[0]
            if spread.waiting and now < spread.deadline:
                return
            self.broadcasts.pop(0)
            if spread.waiting:
                spread.failed += [f"worker {i}: no answer" for i in sorted(spread.waiting)]
            result = {"workers": len(self.workers), "switched": spread.switched,
                      "restarting": spread.restarting, "failed": spread.failed}  # fmt: skip
            log.info("reloaded %s: %d of %d workers switched", spread.path,
                     spread.switched, len(self.workers))  # fmt: skip
            if spread.origin is not None:
                index, ask = spread.origin
                pipe = self.workers[index].pipe
                if pipe is not None:
                    pipe.send(("answer", ask, result))

    def _stop_all(self) -> int:
        """Drain every worker (SIGTERM), kill what outlives the grace period; exit status 0
        when every worker stopped by itself."""
        log.info("stopping: draining %d workers", len(self.workers))
        alive = [w.process for w in self.workers if w.process is not None]
        for process in alive:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.grace_s + EXIT_MARGIN_S
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
        status = 0
        for process in alive:
            if process.is_alive():
                log.warning("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
                status = 1
        return status
