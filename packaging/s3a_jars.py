"""Fetch Hadoop's S3A connector jars, so that local Spark reads and writes s3:// (EMR has its own).

No Maven repository is reachable from our machines; PyPI's `sagemaker-pyspark` source package ships the
two jars S3A needs (hadoop-aws 3.3.1 and the AWS SDK bundle it was built against), which work with the
Hadoop 3.3 client inside pyspark 3.5:

    python packaging/s3a_jars.py [--dest DIR]

DIR defaults to $FEATURIZER_S3A_JARS, else ~/.cache/featurizer/s3a-jars, where `featurizer run` looks.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from featurizer.session import s3a_jars_dir

SOURCE = "sagemaker-pyspark==1.4.5"
JARS = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")


def fetch(dest: Path) -> list[Path]:
    wanted = [dest / name for name in JARS]
    if all(path.is_file() for path in wanted):
        return wanted
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                scratch,
                SOURCE,
            ],
            check=True,
        )
        (archive,) = Path(scratch).glob("sagemaker_pyspark-*.tar.gz")
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if name in JARS and "/deps/jars/" in member.name:
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    (dest / name).write_bytes(extracted.read())
    missing = [path.name for path in wanted if not path.is_file()]
    if missing:
        raise SystemExit(f"{SOURCE} no longer ships {', '.join(missing)}")
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", type=Path, default=s3a_jars_dir())
    for path in fetch(parser.parse_args().dest):
        print(path)


if __name__ == "__main__":
    main()
