"""Read, first step: list the input's files on the executors; the driver opens a few folders only.

Spark's file sources (binaryFile included) list every file on the driver and hold the listing there
for the whole scan, so the driver's memory would grow with the input (docs/performance.md, "Scaling
without the driver"). Here the driver opens folders breadth-first, one request each, until there are
enough of them to list in parallel; tasks then list the files under them (S3 pages of 1,000 keys,
streamed) into a DataFrame that stays on the executors. Nothing per file reaches the driver.

Paths are spelled as Spark spells them (`file:/data/a.jpg`, `s3://bucket/key`), and names under the
input are skipped by Spark's rule for its file sources (`is_hidden`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from pyspark.sql import DataFrame, SparkSession

from featurizer import storage
from featurizer.partitioning import TASKS_PER_SLOT

LISTING_SCHEMA = "path string, length long, version string"
# A folder with more files than this directly in it (one S3 page) is listed by a task, not opened by
# the driver: the driver's requests grow with the number of folders, never with the number of files.
PEEK_FILES = 1_000
MAX_OPEN_DEPTH = 3


@dataclass(frozen=True)
class Folder:
    """A listing task: the files directly in `uri`, or (recursive) every file under it."""

    uri: str
    recursive: bool


def is_hidden(name: str) -> bool:
    """Spark's rule for the names its file sources skip (`_x` and `.x`, but not `_key=value` folders or
    `_metadata` files; and files still being copied), plus the empty name of a `//` in an S3 key."""
    private = (name.startswith("_") and "=" not in name) or name.startswith(".")
    kept = name.startswith(("_metadata", "_common_metadata"))
    return not name or name.endswith("._COPYING_") or (private and not kept)


def storage_root(input_uri: str) -> str:
    """The input folder as `storage` lists it: s3://bucket/prefix, or an absolute local path."""
    if storage.is_s3(input_uri):
        return input_uri.rstrip("/")
    return str(storage.local_path(input_uri).resolve())


def path_root(input_uri: str) -> str:
    """The input folder as the listing's `path` column spells it (`file:/data`, `s3://bucket/prefix`)."""
    root = storage_root(input_uri)
    return root if storage.is_s3(root) else f"file:{root}"


def plan(input_uri: str, wanted: int) -> list[Folder]:
    """Listing tasks for the input: folders opened breadth-first (hidden ones skipped) until there are
    `wanted` to list, or MAX_OPEN_DEPTH levels were opened. An opened folder keeps a task for the files
    directly in it; a folder too big to open in one request is listed whole by one task."""
    tasks: list[Folder] = []
    frontier = [storage_root(input_uri)]
    for _ in range(MAX_OPEN_DEPTH):
        if len(frontier) >= wanted:
            break
        opened: list[str] = []
        for uri in frontier:
            names = storage.peek_folders(uri, PEEK_FILES)
            if names is None:
                tasks.append(Folder(uri, recursive=True))
                continue
            tasks.append(Folder(uri, recursive=False))
            opened += [storage.join(uri, name) for name in names if not is_hidden(name)]
        frontier = opened
    return tasks + [Folder(uri, recursive=True) for uri in frontier]


def files_under(folder: Folder, root: str) -> Iterator[tuple[str, int, str]]:
    """(path, length, version) of the visible files of one listing task; runs in a Python worker."""
    for entry in storage.iter_files(folder.uri, folder.recursive):
        if not any(is_hidden(part) for part in entry.uri[len(root) + 1 :].split("/")):
            path = entry.uri if storage.is_s3(entry.uri) else f"file:{entry.uri}"
            yield (path, entry.size, entry.version)


def list_input(spark: SparkSession, input_uri: str, slots: int) -> DataFrame:
    """Every visible file under the input, as (path, length, version): listed by tasks when an action runs.

    Each action lists again: cache the result when it is used more than once.
    """
    folders = plan(input_uri, TASKS_PER_SLOT * slots)
    # Folders dealt into at most TASKS_PER_SLOT tasks per slot: the listing's partitions are also those of
    # every pass over it until the images are dealt into featurize tasks.
    tasks = min(len(folders), TASKS_PER_SLOT * slots)
    rdd = spark.sparkContext.parallelize(folders, tasks).flatMap(
        partial(files_under, root=storage_root(input_uri))
    )
    return spark.createDataFrame(rdd, LISTING_SCHEMA)
