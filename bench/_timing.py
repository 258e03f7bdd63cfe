"""Parse-latency timing and percentiles shared by the bench scripts.

The scripts run as `python bench/<script>.py`, which puts this folder on `sys.path`, so they
import it by its bare name.
"""

from __future__ import annotations

import time


def parse_times_ms(parser, texts: list[str], repeats: int = 1, warmup: int = 10) -> list[float]:
    """Wall time of `parser.parse` on each text, one utterance at a time, in ms, after parsing
    the first `warmup` texts untimed."""
    for text in texts[:warmup]:
        parser.parse(text)
    times = []
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            parser.parse(text)
            times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile of `values` (0-100), nearest rank: no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
