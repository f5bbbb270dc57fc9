"""Read the images' bytes in the Python worker: a batch at a time, the next one while the model runs.

Spark's binaryFile reader opens a task's files one after another, and on S3 every small object costs a
request's latency (tens of milliseconds for a 5 kB image), during which the model would wait. Here the
objects of an inference batch are fetched concurrently, and the next batch's are on their way while
the current one is decoded and run through the model. Local files go the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache

from featurizer import storage

# Requests in flight per worker: two inference batches' worth at the default batch size, one S3
# connection each.
FETCH_THREADS = storage.MAX_CONNECTIONS
GONE = "file not found: it was listed, then deleted or moved before it was read"


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="fetch")


def read(path: str) -> bytes | str:
    """A file's bytes, or the reason they are gone. Any other failure (access, network) raises, naming
    the file: Spark retries the task, and a lasting failure fails the run with that message."""
    try:
        return storage.read_bytes(path)
    except storage.AccessDenied:
        raise
    except Exception as error:
        if storage.is_missing(error):
            return GONE
        raise storage.StorageError(f"cannot read {path}: {error}") from error


def read_batches(paths: Sequence[str], size: int) -> Iterator[list[bytes | str]]:
    """The files' contents (or reasons), `size` paths at a time and in order, one batch read ahead."""

    def submit(start: int) -> list[Future[bytes | str]]:
        return [_pool().submit(read, path) for path in paths[start : start + size]]

    if paths and storage.is_s3(paths[0]):
        storage.s3_client()  # created once, here: boto3 creates clients unsafely across threads
    ahead = submit(0)
    for start in range(0, len(paths), size):
        current, ahead = ahead, submit(start + size)
        yield [future.result() for future in current]
