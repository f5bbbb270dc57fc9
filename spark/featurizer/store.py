"""The feature store: every image featurized under a dataset's output, kept so no run featurizes it again.

An image is known by what the listing alone tells (its id, from its path under the input, its size, and
its version: an S3 ETag or a local modification time), in a table of one model file (its sha256) and one
preprocessing version: rows of another model are never in the table a run reads.

A table is immutable parts plus commits (docs/feature-store.md). A run writes its newly featurized images
as a part, a folder no reader looks at, then commits it by writing one small JSON file under `commits/`,
named by the run and a random id: a single PUT, atomic on S3 and (by a rename) on a local disk. Readers
take the parts that commits name. So a run killed mid-write leaves a part nobody reads, and two runs at
once add two commits that both stand; an image both featurized is in both, and a reader keeps one.
When a table holds more than COMPACT_AT commits, a run rewrites the smaller ones as one part, committed
as superseding them. What no reader can still need (superseded commits and parts no commit names) is
deleted once it is older than any run can be.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from featurizer import storage
from featurizer.decode import PREPROCESSING_VERSION, TOO_MANY_PIXELS
from featurizer.featurize import FEATURIZED_SCHEMA
from featurizer.fetch import GONE, TOO_LARGE
from featurizer.outputs import write_parquet

log = logging.getLogger("featurizer")

KEY = ("image_id", "length", "version")
# A part holds the rows as featurize wrote them, with what keys them.
PART_SCHEMA = f"{FEATURIZED_SCHEMA}, length long, version string"
STORED = (*KEY, "features", "error")
COMMITS, PARTS = "commits", "parts"
COMPACT_AT = 16
# Longer than any run may read a table: EMR Serverless ends a job run after at most 7 days.
RETENTION = timedelta(days=8)
COMMIT_TIME = "%Y%m%dT%H%M%S%fZ"  # how a commit's (and its part's) name begins, before its first "-"
LISTINGS = 3  # tries at a whole listing of commits/ while a vacuum deletes in it
# Rejections a run may not repeat (the file was gone, or over a limit the next run may raise) are kept
# out of what a reader reuses: such a file is read again.
UNSETTLED_REJECTIONS = (GONE, TOO_LARGE, TOO_MANY_PIXELS)


@dataclass(frozen=True)
class Reuse:
    """What the store saved a run: the images it featurized anew, and those the store holds that the input
    no longer lists (by image id: an image whose content changed is featurized again). Every other image
    featurized was reused (rejections the store remembers are in neither)."""

    images_featurized_new: int = 0
    images_removed: int = 0

    def as_counts(self, images_featurized: int) -> dict[str, int]:
        return {"images_reused": images_featurized - self.images_featurized_new, **asdict(self)}


@dataclass(frozen=True)
class Commit:
    """One commit file: the part it adds, its rows, and the commits it supersedes (a compaction)."""

    name: str
    part: str
    rows: int
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """The store's table for one model file and preprocessing version, under the store's root."""

    uri: str

    @classmethod
    def for_model(cls, store: str, model_sha256: str) -> Table:
        return cls(storage.join(store, f"{model_sha256[:16]}-p{PREPROCESSING_VERSION}"))

    def live_commits(self) -> list[Commit]:
        """The commits whose parts a reader takes: every commit not superseded by another."""
        commits, _ = self._listed()
        superseded = {name for commit in commits for name in commit.supersedes}
        return sorted((c for c in commits if c.name not in superseded), key=lambda c: c.name)

    def vacuum(self, now: datetime) -> list[str]:
        """Delete the commits (file, then part) superseded by a compaction made more than RETENTION before
        `now`, and the parts no commit file names that were begun that long ago (a killed run's): no run
        can still be reading them. Returns the parts deleted. With a commit file it cannot read, it
        deletes no part that file may name."""
        listed, unreadable = self._listed()
        commits = {commit.name: commit for commit in listed}
        settled = [c for c in commits.values() if c.supersedes and _made(c.name) < now - RETENTION]
        superseded = {name for c in settled for name in c.supersedes if name in commits}
        doomed = sorted(name for name in superseded if commits[name].part == f"{PARTS}/{name}")
        for name in doomed:
            storage.delete_file(storage.join(self.uri, COMMITS, f"{name}.json"))
            storage.delete_tree(storage.join(self.uri, commits[name].part))
        orphans = [] if unreadable else self._orphans(listed, now)
        for part in orphans:
            storage.delete_tree(storage.join(self.uri, part))
        deleted = [commits[name].part for name in doomed] + orphans
        if deleted:
            log.info("feature store %s: %d parts no reader needs deleted", self.uri, len(deleted))
        return deleted

    def read(self, spark: SparkSession, commits: list[Commit]) -> DataFrame | None:
        """The stored rows of `commits` that a run may reuse (STORED columns; a key may be there twice,
        `one_per_key` keeps one); None when there are none."""
        if not commits:
            return None
        return self._parts(spark, [c.part for c in commits]).where(_settled(F.col("error"))).select(*STORED)

    def add(self, rows: DataFrame, run_id: str) -> DataFrame:
        """Write `rows` (PART_SCHEMA) as a new part and commit it; returns the part as read back."""
        commit = self._commit(rows, _commit_name(run_id))
        log.info("feature store %s: %s adds %d images", self.uri, commit.name, commit.rows)
        return self._parts(rows.sparkSession, [commit.part])

    def compact(self, spark: SparkSession, run_id: str) -> Commit | None:
        """With more than COMPACT_AT live commits, all but the largest rewritten as one part (each image
        once), committed as superseding them; None when there was nothing to do. The superseded parts
        stay: a run that read the table before may still be reading them."""
        commits = self.live_commits()
        if len(commits) <= COMPACT_AT:
            return None
        merged = sorted(commits, key=lambda c: c.rows)[:-1]
        rows = one_per_key(self._parts(spark, [c.part for c in merged]).where(_settled(F.col("error"))))
        commit = self._commit(rows, _commit_name(f"{run_id}-compacted"), tuple(c.name for c in merged))
        log.info("feature store %s: %d commits compacted into %s", self.uri, len(merged), commit.name)
        return commit

    def _orphans(self, listed: list[Commit], now: datetime) -> list[str]:
        """The parts no commit file names (by its part or its own name) begun more than RETENTION ago."""
        named = {commit.part for commit in listed} | {f"{PARTS}/{commit.name}" for commit in listed}
        folders = storage.list_folders(storage.join(self.uri, PARTS))
        parts = [f"{PARTS}/{folder}" for folder in folders if _made(folder) < now - RETENTION]
        return [part for part in parts if part not in named]

    def _listed(self) -> tuple[list[Commit], int]:
        """Every commit file listed and read (and how many could not be read). A file deleted between the
        listing and its reading (a vacuum) means the table changed: it is listed again, and a vacuum
        deletes older commits first, so a second listing is whole."""
        for _ in range(LISTINGS):
            try:
                return self._read_listing()
            except _Vacuumed:
                continue
        raise storage.StorageError(
            f"{storage.join(self.uri, COMMITS)} changed while it was read, {LISTINGS} times: run again"
        )

    def _read_listing(self) -> tuple[list[Commit], int]:
        files = [entry.uri for entry in storage.iter_files(storage.join(self.uri, COMMITS))]
        named = [uri for uri in files if uri.endswith(".json") and not _name(uri).startswith(".")]
        loaded = [_load(uri) for uri in named]
        return [commit for commit in loaded if commit is not None], loaded.count(None)

    def _parts(self, spark: SparkSession, parts: list[str]) -> DataFrame:
        uris = [storage.spark_uri(storage.join(self.uri, part)) for part in parts]
        return spark.read.schema(PART_SCHEMA).parquet(*uris)

    def _commit(self, rows: DataFrame, name: str, supersedes: tuple[str, ...] = ()) -> Commit:
        """`rows` written as the part `name`, then its commit: readers see all of the part or none."""
        part = f"{PARTS}/{name}"
        write_parquet(rows, storage.join(self.uri, part))
        commit = Commit(name, part, self._parts(rows.sparkSession, [part]).count(), supersedes)
        self._write(commit)
        return commit

    def _write(self, commit: Commit) -> None:
        payload = {"part": commit.part, "rows": commit.rows, "supersedes": list(commit.supersedes)}
        storage.write_json(storage.join(self.uri, COMMITS, f"{commit.name}.json"), payload)


def _commit_name(run_id: str) -> str:
    """Unique, and in the order commits were made (readers list them sorted)."""
    return f"{datetime.now(UTC).strftime(COMMIT_TIME)}-{run_id}-{uuid.uuid4().hex[:12]}"


def _made(name: str) -> datetime:
    """When a commit or part was begun, from its name; the far future (never deleted) for a name that
    does not begin with a time."""
    try:
        return datetime.strptime(name.partition("-")[0], COMMIT_TIME).replace(tzinfo=UTC)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


class _Vacuumed(Exception):
    """A listed commit file was gone when read."""


def _load(uri: str) -> Commit | None:
    """A commit file; None (and a warning) for one that cannot be read: the store is a cache, and an
    image it does not give is featurized again."""
    try:
        payload: dict[str, Any] = json.loads(storage.read_bytes(uri))
        name = _name(uri).removesuffix(".json")
        return Commit(name, str(payload["part"]), int(payload["rows"]), tuple(payload.get("supersedes", ())))
    except (ValueError, KeyError, TypeError, storage.StorageError):
        log.warning("feature store: %s is not a commit, left out", uri, exc_info=True)
        return None
    except Exception as error:  # botocore's NoSuchKey, or FileNotFoundError
        if storage.is_missing(error):
            raise _Vacuumed(uri) from error
        raise


def one_per_key(rows: DataFrame) -> DataFrame:
    """One row per key (two runs at once may both have featurized an image), a featurized one where there
    is one: every pass over the result (features/, rejected.csv) then finds the image on the same side."""
    first = F.row_number().over(Window.partitionBy(*KEY).orderBy(F.col("error").isNotNull()))
    return rows.withColumn("_first", first).where(F.col("_first") == 1).drop("_first")


def _settled(error: Column) -> Column:
    unsettled = [error.startswith(reason) for reason in UNSETTLED_REJECTIONS]
    condition = unsettled[0]
    for other in unsettled[1:]:
        condition = condition | other
    return error.isNull() | ~condition
