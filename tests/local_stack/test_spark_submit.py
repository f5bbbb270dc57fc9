"""The local EMR's spark-submit: the job's sparkSubmitParameters split and rebuilt as exact words."""

from __future__ import annotations

from pathlib import Path

from local.spark_submit import SubmitParameters, command, environment, parse_parameters, s3a_conf

PYTHON = "./environment/bin/python"
# What lambda/common/emr.py sends (spark_submit_parameters), plus one flag that is not a --conf.
PARAMETERS = (
    "--conf spark.archives=s3://featurizer-artifacts/job/env-3f2a.tar.gz#environment"
    f" --conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={PYTHON}"
    f" --conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON={PYTHON}"
    f" --conf spark.executorEnv.PYSPARK_PYTHON={PYTHON}"
    " --conf spark.driver.cores=4 --conf spark.driver.memory=14g"
    " --conf spark.dynamicAllocation.enabled=true --verbose"
)
PARSED = SubmitParameters(
    conf={
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        "spark.driver.cores": "4",
        "spark.driver.memory": "14g",
        "spark.dynamicAllocation.enabled": "true",
    },
    driver_env={"PYSPARK_DRIVER_PYTHON": PYTHON, "PYSPARK_PYTHON": PYTHON},
    archives=[("s3://featurizer-artifacts/job/env-3f2a.tar.gz", "environment")],
    other=["--verbose"],
)


def test_parameters_split_into_confs_driver_environment_archives_and_flags() -> None:
    assert parse_parameters(PARAMETERS) == PARSED


def test_an_archive_without_alias_is_named_after_its_file_and_empty_parameters_are_empty() -> None:
    parsed = parse_parameters("--conf spark.archives=s3://a/x.tar.gz,s3://a/y.tar.gz#why")

    assert parsed.archives == [("s3://a/x.tar.gz", "x.tar.gz"), ("s3://a/y.tar.gz", "why")]
    assert parse_parameters("") == SubmitParameters({}, {}, [], [])


def test_the_command_caps_driver_memory_and_points_s3_at_the_local_endpoint() -> None:
    extra = s3a_conf("http://127.0.0.1:4566", [Path("/jars/a.jar"), Path("/jars/b.jar")], "testing", "secret")

    words = command(
        Path("/spark"),
        Path("/work/entry/main.py"),
        ["--input", "s3://featurizer-data/inbox/fruits/"],
        PARSED,
        cores=2,
        driver_memory="2g",
        extra_conf=extra,
    )

    s3a = "org.apache.hadoop.fs.s3a"
    assert words == [
        "/spark/bin/spark-submit", "--master", "local[2]", "--verbose",
        "--conf", f"spark.executorEnv.PYSPARK_PYTHON={PYTHON}",
        "--conf", "spark.driver.cores=4",
        "--conf", "spark.driver.memory=2g",
        "--conf", "spark.dynamicAllocation.enabled=true",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.jars=/jars/a.jar,/jars/b.jar",
        "--conf", f"spark.hadoop.fs.s3.impl={s3a}.S3AFileSystem",
        "--conf", "spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:4566",
        "--conf", "spark.hadoop.fs.s3a.path.style.access=true",
        "--conf", "spark.hadoop.fs.s3a.connection.ssl.enabled=false",
        "--conf", "spark.hadoop.fs.s3a.access.key=testing",
        "--conf", "spark.hadoop.fs.s3a.secret.key=secret",
        "--conf", f"spark.hadoop.fs.s3a.aws.credentials.provider={s3a}.SimpleAWSCredentialsProvider",
        "/work/entry/main.py", "--input", "s3://featurizer-data/inbox/fruits/",
    ]  # fmt: skip


def test_the_driver_environment_is_clean_plus_spark_aws_and_the_jobs_driver_env() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/home/me", "VIRTUAL_ENV": "/venv", "AWS_PROFILE": "prod"}

    env = environment(base, Path("/spark"), PARSED, {"AWS_ACCESS_KEY_ID": "testing"}, Path("/work/cache"))

    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "SPARK_HOME": "/spark",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "FEATURIZER_CACHE_DIR": "/work/cache",
        "AWS_ACCESS_KEY_ID": "testing",
        "PYSPARK_DRIVER_PYTHON": PYTHON,
        "PYSPARK_PYTHON": PYTHON,
    }
