"""Progress lines for people watching a run: the stage, and images done / total while featurizing.

On a terminal the count is redrawn in place; in a log (EMR Serverless driver stdout) a line is printed
every `log_interval` seconds instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, log_interval: float = 15.0) -> None:
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._interval = 0.5 if self._interactive else log_interval

    def say(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

    @contextmanager
    def stage(
        self, name: str, total: int | None = None, done: Callable[[], int] | None = None
    ) -> Iterator[None]:
        self.say(f"[{name}] started" + (f" ({total:,} images)" if total is not None else ""))
        stop = threading.Event()
        ticker = None
        if total is not None and done is not None:
            ticker = threading.Thread(target=self._tick, args=(name, total, done, stop), daemon=True)
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker:
                ticker.join()

    def _tick(self, name: str, total: int, done: Callable[[], int], stop: threading.Event) -> None:
        last = -1
        while not stop.wait(self._interval):
            count = done()
            if count != last:
                self._line(f"[{name}] {count:,} / {total:,} images", final=False)
                last = count
        self._line(f"[{name}] {done():,} / {total:,} images", final=True)

    def _line(self, text: str, final: bool) -> None:
        if self._interactive:
            self._stream.write(f"\r{text}" + ("\n" if final else ""))
            self._stream.flush()
        else:
            self.say(text)
