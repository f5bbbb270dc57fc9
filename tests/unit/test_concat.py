import csv
import io
import random
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError
from pyspark.sql import SparkSession

from featurizer import concat, outputs, storage
from featurizer.concat import MAX_COPY_SIZE, MAX_PARTS, MIN_PART_SIZE, ConcatError, Part, Span, plan_parts
from featurizer.outputs import csv_header, write_single_csv
from tests.integration.test_s3 import s3  # noqa: F401  (the moto server fixture, for S3 tests)

HEADER = b'image_id,"label, as written",split\n'
K, M = 1024, MIN_PART_SIZE
SCRATCH, TARGET = "runs/r1/pca.csv._parts", "runs/r1/pca.csv"

LAYOUTS = {
    "header only": [],
    "empty parts": [0, 0],
    "many small": [200 * K] * 40,
    "small-large": [100 * K, 2 * M + 100 * K],  # the large one tops the buffer up, then a ranged copy
    "large-small": [2 * M, 100 * K],
    "large-large": [2 * M, 2 * M],  # the second one is copied whole
    "large with a tail under the minimum": [100 * K, M + 100 * K],  # buffered across two parts
}


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def write_parts(sizes: list[int]) -> dict[str, bytes]:
    """Part files named as Spark names them, and the files Spark writes beside them."""
    parts = {f"part-{i:05d}-0f1e.csv": blob(i, size) for i, size in enumerate(sizes)}
    return {"_SUCCESS": b"", ".part-00000-0f1e.csv.crc": b"crc", **parts}


def joined(files: dict[str, bytes]) -> bytes:
    return HEADER + b"".join(data for name, data in sorted(files.items()) if name.startswith("part-"))


def test_every_plan_covers_every_byte_once_in_order_with_parts_s3_accepts() -> None:
    # Header sizes, then up to three part files, around a minimum part size of 10.
    for header in (1, 4, 10, 23):
        for files in (f for n in range(4) for f in product((0, 3, 9, 10, 11, 25), repeat=n)):
            sizes = [header, *files]
            parts = plan_parts(sizes, min_part_size=10)

            spans = [span for part in parts for span in part.spans]
            planned = [(span.source, offset) for span in spans for offset in range(span.start, span.end)]
            assert planned == [(source, at) for source, size in enumerate(sizes) for at in range(size)], sizes
            lengths = [sum(span.end - span.start for span in part.spans) for part in parts]
            assert all(length >= 10 for length in lengths[:-1]), sizes
            assert all(length <= 10 for length, part in zip(lengths, parts, strict=True) if not part.copy), (
                sizes
            )
            assert all(len(part.spans) == 1 and part.spans[0].source > 0 for part in parts if part.copy), (
                sizes
            )
            assert all(span.end > span.start for span in spans), sizes


def test_a_large_part_tops_up_a_partly_full_buffer_and_the_rest_is_copied_with_a_range() -> None:
    assert plan_parts([3, 25, 25], min_part_size=10) == [
        Part((Span(0, 0, 3), Span(1, 0, 7))),
        Part((Span(1, 7, 25),), copy=True),
        Part((Span(2, 0, 25),), copy=True),  # the buffer is empty: a whole-object copy
    ]


def test_small_parts_and_a_short_tail_fill_the_buffer_one_minimum_part_at_a_time() -> None:
    assert plan_parts([3, 4, 12, 2], min_part_size=10) == [
        Part((Span(0, 0, 3), Span(1, 0, 4), Span(2, 0, 3))),
        Part((Span(2, 3, 12), Span(3, 0, 1))),
        Part((Span(3, 1, 2),)),
    ]


def test_copies_longer_than_s3s_largest_part_are_split_evenly() -> None:
    parts = plan_parts([5, M + 11 * 1024**3], min_part_size=M)

    copies = [part.spans[0] for part in parts if part.copy]
    assert len(copies) == 3
    assert all(M <= span.end - span.start <= MAX_COPY_SIZE for span in copies)


def test_more_parts_than_s3_allows_is_an_error_before_anything_is_uploaded() -> None:
    with pytest.raises(ConcatError, match=f"10002 multipart parts and S3 allows {MAX_PARTS}"):
        plan_parts([1] * (MAX_PARTS + 2), min_part_size=1)


@pytest.mark.parametrize(
    "sizes",
    [[], [0, 0], [7] * 50, [3, 40_000, 5], [40_000, 3], [40_000, 40_000]],
    ids=["no parts", "empty parts", "many small", "small-large-small", "large-small", "large-large"],
)
def test_local_files_join_byte_for_byte_and_the_folder_goes(tmp_path: Path, sizes: list[int]) -> None:
    folder = tmp_path / "pca.csv._parts"
    folder.mkdir()
    files = write_parts(sizes)
    for name, data in reversed(files.items()):  # created out of order: the names give the order
        (folder / name).write_bytes(data)

    concat.concat_folder(str(folder), f"file://{tmp_path}/pca.csv", HEADER)

    assert (tmp_path / "pca.csv").read_bytes() == joined(files)
    assert not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pca.csv"]


def test_a_joined_file_of_the_wrong_size_is_an_error_naming_both_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "part-00000.csv").write_bytes(b"a,b\n")
    listed = storage.iter_sizes
    monkeypatch.setattr(storage, "iter_sizes", lambda uri: ((u, size + 1) for u, size in listed(uri)))

    with pytest.raises(ConcatError, match=rf"has {len(HEADER) + 4} bytes, .* have {len(HEADER) + 5}"):
        concat.concat_folder(str(folder), str(tmp_path / "out.csv"), HEADER)
    assert folder.exists()  # kept, to see what went wrong


@pytest.fixture
def bucket(s3) -> str:  # noqa: F811
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
    s3,  # noqa: F811
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
    s3,  # noqa: F811
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


def test_the_header_is_quoted_as_spark_quotes_it() -> None:
    assert csv_header(["image_id", "label, as written", 'say "hi"', "é"]) == (
        'image_id,"label, as written","say ""hi""",é\n'.encode()
    )


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
        part_files.extend(u for u in storage.list_files(folder) if u.rsplit("/", 1)[-1].startswith("part-"))
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


def test_parts_join_in_number_order_and_leftovers_of_failed_attempts_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    (folder / "_temporary" / "0").mkdir(parents=True)
    (folder / "part-100000-x.csv").write_bytes(b"last\n")
    (folder / "part-20000-x.csv").write_bytes(b"first\n")
    (folder / "_temporary" / "0" / "part-00000-x.csv").write_bytes(b"half-written\n")

    concat.concat_folder(str(folder), str(tmp_path / "out.csv"), HEADER)

    assert (tmp_path / "out.csv").read_bytes() == HEADER + b"first\nlast\n"
