"""Prometheus metrics of the server, through `prometheus-client`.

Under `nlu serve` every worker process writes its values to files in the directory that
`PROMETHEUS_MULTIPROC_DIR` names (the supervisor makes one and sets it before any worker
starts), and `GET /metrics`, whichever worker answers it, sums them over all the workers, the
dead ones included for counters: that is what an operator scrapes. Without that variable (an
app built in-process, as in tests), the metrics live in this process alone, in a registry of
their own.

The client library picks its mode when it is first imported, so this module imports it inside
`ServerMetrics`, after the supervisor has set the variable.
"""

from __future__ import annotations

import os

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Request latencies, in seconds: a parse takes about a millisecond, a full queue tens.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def multiprocess() -> bool:
    """Whether the metrics are shared by worker processes (`PROMETHEUS_MULTIPROC_DIR`)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class ServerMetrics:
    """The server's metrics: requests, latency, the wait queue, refused requests, batch sizes,
    model reloads, and the worker restarts that the supervisor counts."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "nlu_requests", "HTTP requests answered", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "nlu_request_seconds", "Time to answer a request", ["path"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue = Gauge(
            "nlu_queue_texts", "Texts waiting for a batch, summed over the workers",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.shed = Counter(
            "nlu_shed_requests", "Requests refused with 503 because the wait queue was full",
            registry=r,
        )  # fmt: skip
        self.batches = Histogram(
            "nlu_batch_texts", "Texts per batch the model parsed", buckets=BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "nlu_model_reloads", "Model reloads by this worker", ["result"], registry=r
        )
        self.restarts = Counter(
            "nlu_worker_restarts", "Worker processes started again after one died", registry=r
        )

    # What a Scheduler reports (`nlu.server.scheduler.SchedulerMetrics`).
    def queue_length(self, texts: int) -> None:
        self.queue.set(texts)

    def shed_request(self) -> None:
        self.shed.inc()

    def batch_size(self, texts: int) -> None:
        self.batches.observe(texts)

    def answered(self, path: str, status: int, seconds: float) -> None:
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of `GET /metrics`: every worker's values summed when they
        are shared, else this process's."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if not multiprocess():
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges from the sums (its counters stay)."""
    if multiprocess():
        from prometheus_client import multiprocess as shared

        shared.mark_process_dead(pid)
