"""Progress for people watching a run: the stage, and images done / total while featurizing, as log lines
and as the run's `progress.json` (which the API shows).

On a terminal the count is redrawn in place; in a log (EMR Serverless driver stdout) a line is printed
every `log_interval` seconds instead.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from featurizer import storage

log = logging.getLogger(__name__)
PROGRESS_FILE = (
    "progress.json"  # in the run's folder (lambda/common/runs.py's copy; a contract test compares)
)
# How often progress.json is rewritten at most (an S3 PUT each time: at most 360 an hour, and 240 in a log,
# whose count ticks every 15 s).
PROGRESS_FILE_SECONDS = 10.0


class Progress:
    def __init__(self, stream: TextIO | None = None, log_interval: float = 15.0) -> None:
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._interval = 0.5 if self._interactive else log_interval

    def say(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

    @contextmanager
    def stage(
        self,
        name: str,
        total: int | None = None,
        done: Callable[[], int] | None = None,
        counted: Callable[[int], None] | None = None,
    ) -> Iterator[None]:
        """Show the stage; with `total` and `done`, its count every interval, also handed to `counted`."""
        self.say(f"[{name}] started" + (f" ({total:,} images)" if total is not None else ""))
        stop = threading.Event()
        ticker = None
        if total is not None and done is not None:
            args = (name, total, done, stop, counted or (lambda _: None))
            ticker = threading.Thread(target=self._tick, args=args, daemon=True)
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker:
                ticker.join()

    def _tick(
        self,
        name: str,
        total: int,
        done: Callable[[], int],
        stop: threading.Event,
        counted: Callable[[int], None],
    ) -> None:
        last = -1
        while not stop.wait(self._interval):
            count = done()
            if count != last:
                self._line(f"[{name}] {count:,} / {total:,} images", final=False)
                counted(count)
                last = count
        self._line(f"[{name}] {done():,} / {total:,} images", final=True)

    def _line(self, text: str, final: bool) -> None:
        if self._interactive:
            self._stream.write(f"\r{text}" + ("\n" if final else ""))
            self._stream.flush()
        else:
            self.say(text)


@dataclass
class ProgressFile:
    """`progress.json` in the run's folder: the stage and its images done so far, which GET /runs/<id>
    shows while the run goes. At most one write every `every_seconds` (but each stage's start); a write
    that fails is logged, never the run's failure."""

    uri: str
    every_seconds: float = PROGRESS_FILE_SECONDS
    _written_at: float = field(default=-math.inf, init=False)

    def publish(
        self, stage: str, done: int | None = None, total: int | None = None, start: bool = False
    ) -> None:
        now = time.monotonic()
        if not start and now - self._written_at < self.every_seconds:
            return
        payload = {
            "stage": stage,
            "images_done": done,
            "images_total": total,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            storage.write_json(self.uri, payload)
        except Exception:  # botocore, OSError: the run goes on without it
            log.warning("could not write %s", self.uri, exc_info=True)
        self._written_at = now
