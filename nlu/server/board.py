"""What the supervisor and its workers know of each other, in shared memory.

One array of 64-bit integers, no locks: each field has one writer. The supervisor writes the
header (workers expected, restarts) and clears a dead worker's slot; each worker writes its
own slot (pid, open connections, requests in flight, ready). Readers may see a value a moment
old, which is all `/health` and a death's log line need.
"""

from __future__ import annotations

from typing import Any

HEADER = ("expected", "restarts")
FIELDS = ("pid", "connections", "in_flight", "ready")


class Slot:
    """One worker's fields on the board."""

    def __init__(self, array: Any, offset: int) -> None:
        object.__setattr__(self, "_array", array)
        object.__setattr__(self, "_offset", offset)

    def __getattr__(self, name: str) -> int:
        return self._array[self._offset + FIELDS.index(name)]

    def __setattr__(self, name: str, value: int) -> None:
        self._array[self._offset + FIELDS.index(name)] = value

    def clear(self) -> None:
        for i in range(len(FIELDS)):
            self._array[self._offset + i] = 0

    def as_dict(self) -> dict[str, int]:
        return {name: self._array[self._offset + i] for i, name in enumerate(FIELDS)}


class Board:
    """The shared array of a supervisor with `slots` workers (picklable to a spawned worker,
    built with a multiprocessing context's `RawArray`)."""

    def __init__(self, context: Any, slots: int) -> None:
        self.slots = slots
        self.array = context.RawArray("q", len(HEADER) + slots * len(FIELDS))
        self.array[0] = slots

    def slot(self, index: int) -> Slot:
        return Slot(self.array, len(HEADER) + index * len(FIELDS))

    @property
    def restarts(self) -> int:
        return self.array[HEADER.index("restarts")]

    def count_restart(self) -> int:
        self.array[HEADER.index("restarts")] += 1
        return self.restarts

    def summary(self) -> dict[str, Any]:
        """Workers expected, ready and restarted so far, and each one's slot."""
        slots = [self.slot(i).as_dict() for i in range(self.slots)]
        return {
            "expected": self.array[HEADER.index("expected")],
            "ready": sum(1 for s in slots if s["ready"] and s["pid"]),
            "restarts": self.restarts,
            "each": slots,
        }
