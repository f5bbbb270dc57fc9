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
from featurizer.options import MAX_IMAGE_BYTES

# Requests in flight per worker: two inference batches' worth at the default batch size, one S3
# connection each.
FETCH_THREADS = storage.MAX_CONNECTIONS
GONE = "file not found: it was listed, then deleted or moved before it was read"
TOO_LARGE = "file too large"


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="fetch")


def too_large(size: int, limit: int) -> str:
    return (
        f"{TOO_LARGE}: {size} bytes, over the limit of {limit} "
        "(--max-image-bytes; raise it to read this file)"
    )


def read(path: str, length: int | None = None, max_bytes: int = MAX_IMAGE_BYTES) -> bytes | str:
    """A file's bytes, or the reason they are gone or too many. A file the listing found over `max_bytes`
    is not requested; one that grew past it since is refused on its size, before its body is read. Any
    other failure (access, network) raises, naming the file: Spark retries the task, and a lasting failure
    fails the run with that message."""
    if length is not None and length > max_bytes:
        return too_large(length, max_bytes)
    try:
        return storage.read_bytes(path, max_bytes)
    except storage.TooLarge as error:
        return too_large(error.size, max_bytes)
    except storage.AccessDenied:
        raise
    except Exception as error:
        if storage.is_missing(error):
            return GONE
        raise storage.StorageError(f"cannot read {path}: {error}") from error


def read_batches(
    paths: Sequence[str],
    size: int,
    lengths: Sequence[int | None] | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
) -> Iterator[list[bytes | str]]:
    """The files' contents (or reasons), `size` paths at a time and in order, one batch read ahead;
    `lengths` are the listing's sizes of the files, `max_bytes` the most `read` takes of one."""
    known = lengths if lengths is not None else [None] * len(paths)

    def submit(start: int) -> list[Future[bytes | str]]:
        end = start + size
        return [
            _pool().submit(read, path, length, max_bytes)
            for path, length in zip(paths[start:end], known[start:end], strict=True)
        ]

    if paths and storage.is_s3(paths[0]):
        storage.s3_client()  # created once, here: boto3 creates clients unsafely across threads
    ahead = submit(0)
    for start in range(0, len(paths), size):
        current, ahead = ahead, submit(start + size)
        yield [future.result() for future in current]
