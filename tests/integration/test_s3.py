"""The job reading and writing s3:// (S3A on local Spark) against a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer
from pyspark.sql import SparkSession

from featurizer import listing, storage
from featurizer.fetch import GONE, read_batches
from featurizer.job import COMPLETED_FLAG, execute, prepare
from featurizer.listing import list_input
from featurizer.options import JobOptions
from featurizer.progress import Progress
from featurizer.session import s3a_jars


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3(spark: SparkSession) -> Iterator[object]:
    if not s3a_jars():
        pytest.fail("the S3A jars are missing: run `make s3a` (python packaging/s3a_jars.py)")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    variables = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    # The Python workers list and read S3 themselves. This session's workers were started before the
    # server: Spark starts workers with the new environment (`featurizer run` sets it before Spark).
    workers = spark.sparkContext.environment
    saved = dict(workers)
    workers.update(variables)
    with pytest.MonkeyPatch.context() as env:
        for key, value in variables.items():
            env.setenv(key, value)
        for key, value in {
            "fs.s3a.endpoint": endpoint,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": "false",
            "fs.s3a.access.key": "testing",
            "fs.s3a.secret.key": "testing",
        }.items():
            hadoop.set(key, value)
        storage.s3_client.cache_clear()
        client = boto3.client("s3", endpoint_url=endpoint)
        yield client
        storage.s3_client.cache_clear()
    workers.clear()
    workers.update(saved)
    server.stop()


def upload(client, folder: Path, bucket: str, prefix: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}{path.relative_to(folder).as_posix()}")


def test_a_run_from_s3_to_s3_completes_with_every_output(
    spark: SparkSession, s3, dataset: Path, weights: Path
) -> None:
    s3.create_bucket(Bucket="data")
    s3.create_bucket(Bucket="artifacts")
    upload(s3, dataset, "data", "inbox/fruits/")
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
    found = {r["path"]: r["length"] for r in list_input(spark, "s3://listing/in/", slots=4).collect()}
    visible = ["in/A/1.jpg", "in/B/x #1.jpg", "in/top.jpg", *(f"in/Big/{i}.jpg" for i in range(5))]
    assert found == {f"s3://listing/{key}": 3 for key in visible}


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
