"""Peak resident memory of a local Spark job: the driver (Python + JVM) and the Python workers.

A thread samples /proc every 0.2 s. The driver is the Python process and the first JVM under it (in
local mode that JVM is also the executor); executor JVMs (local-cluster mode) run under the driver's
JVM; the Python workers are the `pyspark.daemon` processes the executors fork.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process exited after it was found
        return []
    found = []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class PeakMemory:
    driver_python: int = 0
    driver_jvm: int = 0
    executor_jvm: int = 0
    worker_max: int = 0
    workers_total: int = 0
    samples: int = field(default=0, repr=False)

    @property
    def driver(self) -> int:
        return self.driver_python + self.driver_jvm

    def sample(self, root: int) -> None:
        jvms, workers, stack = [], [], [(pid, 0) for pid in _children(root)]
        while stack:
            pid, jvms_above = stack.pop()
            command = _command(pid)
            is_jvm = "java" in command.split(" ", 1)[0]
            if is_jvm:
                jvms.append((jvms_above, _rss(pid)))
            elif "pyspark" in command:
                workers.append(_rss(pid))
            stack += [(child, jvms_above + is_jvm) for child in _children(pid)]
        self.driver_python = max(self.driver_python, _rss(root))
        self.driver_jvm = max([self.driver_jvm, *(rss for depth, rss in jvms if depth == 0)])
        self.executor_jvm = max([self.executor_jvm, *(rss for depth, rss in jvms if depth > 0)])
        self.worker_max = max([self.worker_max, *workers])
        self.workers_total = max(self.workers_total, sum(workers))
        self.samples += 1


def run_measured(command: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, PeakMemory]:
    """Run `command`, sampling its process tree; (exit status, peaks)."""
    peaks = PeakMemory()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peaks.sample(process.pid)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        status = process.wait()
        done.set()
        watcher.join()
    return status, peaks
