"""The spark-submit command and environment of one local job run, from its EMR Serverless job driver.

EMR Serverless runs the entry point on its own cluster; locally it runs in Spark's local mode, with:
- ``spark.archives=<s3 uri>#<alias>``: the archive is fetched and unpacked by the local EMR and linked as
  ``<alias>`` in the job's working directory (local Spark does not unpack archives where Python looks), so
  the job's own ``./environment/bin/python`` settings work unchanged;
- ``spark.emr-serverless.driverEnv.NAME=VALUE``: NAME=VALUE in the driver's environment, as on EMR;
- ``spark.driver.memory`` capped to what this machine can give (``driver_memory``);
- S3A for ``s3://``, pointed at the local S3 (path-style, plain HTTP, the local credentials), and the
  Spark UI off, everything bound to 127.0.0.1.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

DRIVER_ENV = "spark.emr-serverless.driverEnv."
ARCHIVES = "spark.archives"
S3A = "org.apache.hadoop.fs.s3a"
PASSED_ENV = ("PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TMPDIR", "USER")


@dataclass(frozen=True)
class SubmitParameters:
    conf: dict[str, str]
    driver_env: dict[str, str]
    archives: list[tuple[str, str]]  # (s3 uri, alias)
    other: list[str] = field(default_factory=list)


def parse_parameters(text: str) -> SubmitParameters:
    """Split ``sparkSubmitParameters`` into plain confs, driver environment, archives and other flags."""
    conf: dict[str, str] = {}
    driver_env: dict[str, str] = {}
    archives: list[tuple[str, str]] = []
    other: list[str] = []
    words = shlex.split(text or "")
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--conf" and index + 1 < len(words):
            key, _, value = words[index + 1].partition("=")
            if key.startswith(DRIVER_ENV):
                driver_env[key.removeprefix(DRIVER_ENV)] = value
            elif key == ARCHIVES:
                for item in value.split(","):
                    uri, _, alias = item.partition("#")
                    archives.append((uri, alias or Path(uri).name))
            else:
                conf[key] = value
            index += 2
        else:
            other.append(word)
            index += 1
    return SubmitParameters(conf, driver_env, archives, other)


def s3a_conf(endpoint: str, jars: list[Path], access_key: str, secret_key: str) -> dict[str, str]:
    return {
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.hadoop.fs.s3.impl": f"{S3A}.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.access.key": access_key,
        "spark.hadoop.fs.s3a.secret.key": secret_key,
        "spark.hadoop.fs.s3a.aws.credentials.provider": f"{S3A}.SimpleAWSCredentialsProvider",
    }


def command(
    spark_home: Path,
    entry_point: Path,
    arguments: list[str],
    parameters: SubmitParameters,
    *,
    cores: int,
    driver_memory: str,
    extra_conf: dict[str, str],
) -> list[str]:
    conf = parameters.conf | {
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    conf |= extra_conf
    words = [str(spark_home / "bin" / "spark-submit"), "--master", f"local[{cores}]", *parameters.other]
    for key, value in conf.items():
        words += ["--conf", f"{key}={value}"]
    return [*words, str(entry_point), *arguments]


def environment(
    base: dict[str, str], spark_home: Path, parameters: SubmitParameters, aws: dict[str, str], cache: Path
) -> dict[str, str]:
    """A clean environment like an EMR worker's: no variables of this shell beyond the basics."""
    env = {name: base[name] for name in PASSED_ENV if name in base}
    env |= {"SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1", "FEATURIZER_CACHE_DIR": str(cache)}
    return env | aws | parameters.driver_env
