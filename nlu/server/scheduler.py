"""One worker's parsing: a bounded wait queue in front of one inference thread.

Every parse of a worker, single or batch, goes through its `Scheduler`:
- **Admission.** A request waits in a queue that holds at most `max_queue` texts. One that
  does not fit is refused at once (`Overloaded`, which the app answers with 503 and
  Retry-After), so that overload costs some clients a fast "busy, retry" instead of costing
  everyone seconds of latency. A request larger than the whole queue still runs when nothing
  waits.
- **Batching.** With micro-batching, the next batch takes the waiting requests in arrival
  order, up to `max_batch` texts: a request that finds the model idle runs alone, and under
  load batches grow by themselves. Without it, one request is one batch.
- **Swapping models.** `swap` hands in another Parser; the batch being parsed finishes with
  the one it started with, and the next batch takes the new one, so no request is parsed by
  two models.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from nlu.parser import Parser

# Texts that may wait in a worker's queue. The wait is bounded by about max_queue / (the
# worker's rate): on the 2026-12-03 machine one worker parsed about 3,000 ATIS questions a
# second in micro-batches, so 16 texts wait at most about 5 ms. Under four times that load
# (bench/heal.py overload), refusals came back in 7.9 ms p99 and answers in 24.8 ms; with 32,
# 16.4 and 50.7 ms; with 4, 5.8 and 11.0 ms. The price of a short queue: a burst the workers
# could absorb is refused in part (32 keep-alive clients on two workers, which the kernel
# spreads unevenly, got a 503 on 7.6 % of their requests with 16, none with 32).
DEFAULT_MAX_QUEUE = 16
RETRY_AFTER_S = 1  # what a refused client is told to wait


class Overloaded(Exception):
    """The wait queue is full."""


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def parse_to_json(parser: Parser, texts: list[str]) -> list[bytes]:
    """The JSON bodies of the parses of `texts`, built in the inference thread: the event loop
    only moves bytes."""
    return [encode(parse.to_dict()) for parse in parser.parse_batch(texts)]


class SchedulerMetrics(Protocol):
    """What a Scheduler reports as it goes (`nlu.server.metrics.ServerMetrics`)."""

    def queue_length(self, texts: int) -> None: ...
    def shed_request(self) -> None: ...
    def batch_size(self, texts: int) -> None: ...


class _NoMetrics:
    def queue_length(self, texts: int) -> None:
        pass

    def shed_request(self) -> None:
        pass

    def batch_size(self, texts: int) -> None:
        pass


@dataclass
class _Request:
    texts: list[str]
    future: asyncio.Future


class Scheduler:
    """See the module docstring. Start it (and stop it) in the event loop that calls `parse`.

    `metrics` hears of the queue's length, refused requests and batch sizes; `parse_texts` does
    the work in the inference thread (`parse_to_json`; tests put in one that blocks).
    """

    def __init__(
        self,
        parser: Parser,
        max_queue: int = DEFAULT_MAX_QUEUE,
        micro_batch: bool = True,
        max_batch: int = 64,
        wait_ms: float = 0.0,
        parse_texts: Callable[[Parser, list[str]], list[bytes]] = parse_to_json,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue: expected at least 1, found {max_queue}")
        self.parser = parser
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.micro_batch = micro_batch
        self.wait = wait_ms / 1000.0
        self.parse_texts = parse_texts
        self.metrics = metrics or _NoMetrics()
        self.shed = 0  # requests refused since the start
        self._queue: deque[_Request] = deque()
        self._waiting = 0  # texts in the queue
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # One thread does all model work: requests running the model in many threads at once
        # only fight over the cores (throughput fell as clients rose).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-inference")

    @property
    def waiting(self) -> int:
        """Texts in the queue, not yet in a batch."""
        return self._waiting

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop taking batches (after the one running) and release the inference thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=False)

    def swap(self, parser: Parser) -> Parser:
        """Parse the next batches with `parser`; return the one it replaces."""
        old, self.parser = self.parser, parser
        return old

    def refuse(self) -> Overloaded:
        """Count a refused request; the error that says why."""
        self.shed += 1
        self.metrics.shed_request()
        return Overloaded(f"{self._waiting} texts wait; the queue holds {self.max_queue}")

    async def parse(self, texts: list[str]) -> list[bytes]:
        """The JSON bodies of the parses of `texts`; raises `Overloaded` at once when they do
        not fit in the queue."""
        if self._waiting and self._waiting + len(texts) > self.max_queue:
            raise self.refuse()
        request = _Request(texts, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._waiting += len(texts)
        self.metrics.queue_length(self._waiting)
        self._wake.set()
        return await request.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self.wait > 0 and self.micro_batch and self._waiting < self.max_batch:
                await asyncio.sleep(self.wait)  # hold the batch open for more requests
            batch = self._take()
            self.metrics.queue_length(self._waiting)
            if not self._queue:
                self._wake.clear()
            if not batch:
                continue
            texts = [text for request in batch for text in request.texts]
            parser = self.parser  # read once: one model parses the whole batch
            self.metrics.batch_size(len(texts))
            try:
                bodies = await loop.run_in_executor(self._thread, self.parse_texts, parser, texts)
            except Exception as e:  # noqa: BLE001 - handed to every request of the batch
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(e)
                continue
            start = 0
            for request in batch:
                end = start + len(request.texts)
                if not request.future.done():  # its client may have gone
                    request.future.set_result(bodies[start:end])
                start = end

    def _take(self) -> list[_Request]:
        """The next batch: waiting requests in arrival order, up to `max_batch` texts (one
        request without micro-batching, however large); requests whose clients left are
        dropped."""
        batch: list[_Request] = []
        size = 0
        while self._queue:
            request = self._queue[0]
            if batch and (not self.micro_batch or size + len(request.texts) > self.max_batch):
                break
            self._queue.popleft()
            self._waiting -= len(request.texts)
            if request.future.done():  # cancelled: the client went away while it waited
                continue
            batch.append(request)
            size += len(request.texts)
        return batch
