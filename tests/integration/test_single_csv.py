"""One CSV file from many part files: joined on S3 (multipart copy against the local S3 server) and
written by Spark with `write_single_csv`, locally and on S3."""

import csv
import io
import random
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError
from pyspark.sql import SparkSession

from featurizer import concat, outputs, storage
from featurizer.concat import plan_parts
from featurizer.outputs import write_single_csv
from tests.parts import HEADER, LAYOUTS, SCRATCH, TARGET, M, joined, write_parts


@pytest.fixture
def bucket(s3) -> str:
    name = f"concat-{uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def put_parts(client, bucket: str, sizes: list[int]) -> dict[str, bytes]:
    files = write_parts(sizes)
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=f"{SCRATCH}/{name}", Body=data)
    return files


@pytest.fixture
def copy_ranges() -> Iterator[list[str | None]]:
    """The CopySourceRange of every UploadPartCopy call (None: the whole object)."""
    ranges: list[str | None] = []

    def record(params: dict, **_: object) -> None:
        ranges.append(params.get("CopySourceRange"))

    events = storage.s3_client().meta.events
    events.register("provide-client-params.s3.UploadPartCopy", record)
    yield ranges
    events.unregister("provide-client-params.s3.UploadPartCopy", record)


def keys(client, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.parametrize("sizes", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_s3_parts_join_byte_for_byte_in_one_upload_at_s3s_real_minimum(
    s3,
    bucket: str,
    copy_ranges: list[str | None],
    sizes: list[int],
) -> None:
    files = put_parts(s3, bucket, sizes)
    plan = plan_parts([len(HEADER), *sizes])

    concat.concat_folder(f"s3://{bucket}/{SCRATCH}", f"s3://{bucket}/{TARGET}", HEADER)

    target = s3.get_object(Bucket=bucket, Key=TARGET)
    assert target["Body"].read() == joined(files)
    etag = target["ETag"].strip('"')
    assert (int(etag.rsplit("-", 1)[1]) if "-" in etag else 1) == max(len(plan), 1)
    copies = [part.spans[0] for part in plan if part.copy]
    assert copy_ranges == [
        None if (s.start, s.end) == (0, sizes[s.source - 1]) else f"bytes={s.start}-{s.end - 1}"
        for s in copies
    ]
    assert keys(s3, bucket) == [TARGET]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_failed_s3_join_aborts_the_upload_and_leaves_no_target(
    s3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_parts(s3, bucket, [2 * M])
    listed = storage.iter_sizes
    gone = f"s3://{bucket}/{SCRATCH}/part-00001-0f1e.csv"  # listed, then deleted by someone
    monkeypatch.setattr(storage, "iter_sizes", lambda uri: [*listed(uri), (gone, 2 * M)])

    with pytest.raises(ClientError):
        concat.concat_folder(f"s3://{bucket}/{SCRATCH}", f"s3://{bucket}/{TARGET}", HEADER)

    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert not storage.exists(f"s3://{bucket}/{TARGET}")


LABELS = ["Apple, red", 'the "best"', "two\nlines", "crlf\r\nline", "Crème brûlée", "日本", "", None]


@pytest.fixture
def spread(spark: SparkSession) -> Iterator[None]:
    """Tiny test data still spread over several sorted part files (AQE would coalesce them into one)."""
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    yield
    spark.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_write_single_csv_writes_one_sorted_file_with_one_header(
    spark: SparkSession,
    spread: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    where: str,
) -> None:
    root = f"s3://{request.getfixturevalue('bucket')}/runs/r1" if where == "s3" else str(tmp_path)
    target = storage.join(root, "pca.csv")
    ids = [f"img-{i:04d}" for i in range(300)]
    random.Random(3).shuffle(ids)
    rows = [(image_id, LABELS[i % len(LABELS)], i) for i, image_id in enumerate(ids)]
    frame = spark.createDataFrame(rows, "image_id string, label string, n int").repartition(4)
    part_files: list[str] = []

    def spy(folder: str, target: str, header: bytes) -> None:
        listed = [uri for uri, _ in storage.iter_sizes(folder)]
        part_files.extend(uri for uri in listed if uri.rsplit("/", 1)[-1].startswith("part-"))
        concat.concat_folder(folder, target, header)

    monkeypatch.setattr(outputs, "concat_folder", spy)

    count = write_single_csv(frame, target, order_by="image_id")

    read = list(csv.reader(io.StringIO(storage.read_bytes(target).decode(), newline="")))
    assert frame.rdd.getNumPartitions() == 4 and len(part_files) > 1
    assert read[0] == ["image_id", "label", "n"]
    assert read[1:] == [[image_id, label or "", str(n)] for image_id, label, n in sorted(rows)]
    assert count == len(rows) == 300
    assert not storage.folder_has_files(f"{target}._parts")


def test_an_empty_frame_gives_the_header_alone(spark: SparkSession, tmp_path: Path) -> None:
    frame = spark.createDataFrame([], "path string, reason string")

    count = write_single_csv(frame, str(tmp_path / "rejected.csv"), order_by="path")

    assert (tmp_path / "rejected.csv").read_bytes() == b"path,reason\n"
    assert count == 0
