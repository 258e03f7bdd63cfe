"""Batches of similar length, run in one thread or several at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchRunner:
    """Runs a function over batches of items of similar length (less padding), in `workers`
    threads at once, and returns the results in input order.

    Torch, onnxruntime and NumPy release the GIL in their kernels, so on 2 cores two threads
    overlap one batch's recurrent pass with another's Python work (BENCHMARKS.md, inference).
    The threads start on first use.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"batch_workers: expected at least 1, found {workers}")
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def run(
        self, items: Sequence[T], batch_size: int, run: Callable[[list[T]], list[R]]
    ) -> list[R]:
        """`run` of each batch of `items` (sorted by `len`)."""
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        chunks = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]

        def run_chunk(indices: list[int]) -> list[R]:
            return run([items[i] for i in indices])

        if self.workers > 1 and len(chunks) > 1:
            done = self._threads().map(run_chunk, chunks)
        else:
            done = map(run_chunk, chunks)
        results: list[R | None] = [None] * len(items)
        for indices, outputs in zip(chunks, done):
            for i, output in zip(indices, outputs):
                results[i] = output
        return results  # type: ignore[return-value]

    @property
    def started(self) -> bool:
        """Whether the worker threads have run a batch."""
        return self._pool is not None

    def _threads(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nlu-batch")
            return self._pool
