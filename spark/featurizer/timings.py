"""Seconds per stage. Each stage ends on a Spark action, so its time is its own and not its successor's.

One exception: the model is saved in the background from the end of fit, so the save's time is spread
over evaluate and write (write waits for it), hidden where it overlaps them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.current: str | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.current = name
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(time.perf_counter() - start, 3)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._started, 3)

    def as_dict(self) -> dict[str, object]:
        return {"stages": dict(self.stages), "total_seconds": self.total}
