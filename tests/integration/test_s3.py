"""The job reading and writing s3:// (S3A on local Spark) against a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from featurizer import listing, storage
from featurizer.fetch import GONE, read_batches, too_large
from featurizer.job import execute, prepare
from featurizer.listing import list_input
from featurizer.manifest import COMPLETED_FLAG
from featurizer.options import JobOptions
from featurizer.progress import Progress


def upload(client, folder: Path, bucket: str, prefix: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}{path.relative_to(folder).as_posix()}")


def test_a_run_from_s3_to_s3_completes_with_every_output(
    spark: SparkSession, s3, sample_images: Path, weights: Path
) -> None:
    s3.create_bucket(Bucket="data")
    s3.create_bucket(Bucket="artifacts")
    upload(s3, sample_images, "data", "inbox/fruits/")
    s3.upload_file(str(weights), "artifacts", "models/mobilenet_v2_no_top.h5")
    options = JobOptions(
        input="s3://data/inbox/fruits/",
        output="s3://data/runs/fruits/",
        run_id="r1",
        weights="s3://artifacts/models/mobilenet_v2_no_top.h5",
    )

    execute(spark, prepare(options), Progress(io.StringIO()))

    def get(key: str) -> bytes:
        return s3.get_object(Bucket="data", Key=f"runs/fruits/r1/{key}")["Body"].read()

    counts = json.loads(get("manifest.json"))["counts"]
    assert (counts["images_found"], counts["images_featurized"], counts["images_rejected"]) == (75, 69, 6)
    assert json.loads(get(COMPLETED_FLAG))["status"] == "COMPLETED"
    assert json.loads(get(COMPLETED_FLAG))["report"] == "s3://data/runs/fruits/r1/report.html"
    report = s3.get_object(Bucket="data", Key="runs/fruits/r1/report.html")
    assert report["ContentType"] == "text/html; charset=utf-8"  # a browser shows it rather than saving it
    assert b'<section id="pca-scatter">' in report["Body"].read()
    assert len(pd.read_csv(io.BytesIO(get("pca.csv")))) == 69
    rejected = pd.read_csv(io.BytesIO(get("rejected.csv")))
    assert rejected["path"].str.startswith("s3://data/inbox/fruits/Banana/").all()
    assert "empty file (0 bytes)" in set(rejected["reason"])
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="data", Prefix="runs/")
        for o in page.get("Contents", [])
    }
    assert not any("._parts" in key or "featurize-staging" in key for key in keys)


def test_the_executors_list_s3_without_folder_markers_or_hidden_keys(
    spark: SparkSession, s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_bucket(Bucket="listing")
    keys = ["in/A/1.jpg", "in/A/", "in/A/x_$folder$", "in/A/.2.jpg", "in/_tmp/3.jpg", "in/B/x #1.jpg"]
    keys += ["in/top.jpg", "in//double.jpg", "inbox/4.jpg", *(f"in/Big/{i}.jpg" for i in range(5))]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=b"" if key.endswith(("/", "$")) else b"abc")
    # The driver opens in/, A/ and B/ (at most 3 files each; markers are not files); Big/ holds 5: a
    # task lists it whole.
    monkeypatch.setattr(listing, "PEEK_FILES", 3)

    assert set(listing.plan("s3://listing/in/", wanted=8)) == {
        listing.Folder("s3://listing/in", recursive=False),
        listing.Folder("s3://listing/in/A", recursive=False),
        listing.Folder("s3://listing/in/B", recursive=False),
        listing.Folder("s3://listing/in/Big", recursive=True),
    }
    rows = list_input(spark, "s3://listing/in/", slots=4).collect()
    visible = ["in/A/1.jpg", "in/B/x #1.jpg", "in/top.jpg", *(f"in/Big/{i}.jpg" for i in range(5))]
    assert {r["path"]: r["length"] for r in rows} == {f"s3://listing/{key}": 3 for key in visible}
    etags = {
        f"s3://listing/{key}": s3.head_object(Bucket="listing", Key=key)["ETag"].strip('"') for key in visible
    }
    assert {r["path"]: r["version"] for r in rows} == etags  # the feature store's key


def test_workers_read_s3_objects_and_name_one_deleted_after_the_listing(s3) -> None:
    s3.create_bucket(Bucket="fetch")
    for index in range(40):
        s3.put_object(Bucket="fetch", Key=f"img/{index} é?#%.jpg", Body=bytes([index]) * (index + 1))
    paths = [f"s3://fetch/img/{index} é?#%.jpg" for index in range(40)] + ["s3://fetch/img/gone.jpg"]

    batches = list(read_batches(paths, 16))

    assert [len(batch) for batch in batches] == [16, 16, 9]
    contents = [item for batch in batches for item in batch]
    assert contents[:40] == [bytes([index]) * (index + 1) for index in range(40)]
    assert contents[40] == GONE


def test_an_object_grown_past_the_byte_cap_is_refused_on_its_size_and_the_others_still_read(s3) -> None:
    s3.create_bucket(Bucket="caps")
    s3.put_object(Bucket="caps", Key="grown.png", Body=bytes(101))
    for index in range(20):
        s3.put_object(Bucket="caps", Key=f"{index}.jpg", Body=b"abc")
    paths = ["s3://caps/grown.png", *(f"s3://caps/{index}.jpg" for index in range(20))]

    # Listed at 10 bytes, 101 by the time it is read: its GET is dropped once its headers give the size.
    (batch,) = read_batches(paths, 32, lengths=[10] + [3] * 20, max_bytes=100)

    assert batch == [too_large(101, 100)] + [b"abc"] * 20


def test_a_folder_copies_file_for_file_between_s3_and_local_disks(s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="copy")
    files = {f"part-{index} é#%.parquet": bytes([index]) * (index + 1) for index in range(40)}
    files["nested/_SUCCESS"] = b""
    for name, body in files.items():
        s3.put_object(Bucket="copy", Key=f"runs/a/features/{name}", Body=body)

    copied = storage.copy_tree("s3://copy/runs/a/features", "s3://copy/runs/b/features/")
    storage.copy_tree("s3://copy/runs/b/features", str(tmp_path / "local"))
    storage.copy_tree(str(tmp_path / "local"), "s3://copy/runs/c/features")

    assert copied == len(files)
    for prefix in ("runs/b/features/", "runs/c/features/"):
        for name, body in files.items():
            assert s3.get_object(Bucket="copy", Key=prefix + name)["Body"].read() == body
    local = {
        path.relative_to(tmp_path / "local").as_posix(): path.read_bytes()
        for path in (tmp_path / "local").rglob("*")
        if path.is_file()
    }
    assert local == files
    with pytest.raises(storage.StorageError, match=r"copy s3://copy/runs/a/gone\.csv: it is not there"):
        storage.copy_file("s3://copy/runs/a/gone.csv", "s3://copy/runs/b/gone.csv")
    with pytest.raises(storage.StorageError, match="s3://copy/runs/none holds no file to copy"):
        storage.copy_tree("s3://copy/runs/none", "s3://copy/runs/d")
