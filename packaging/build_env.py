"""Build the job's Python environment for EMR Serverless: a virtualenv packed with venv-pack.

    python packaging/build_env.py [--variant default|tensorflow] [--output dist/] [--python python3.11]

`default` carries what the job imports with the onnx engine (the project's `featurizer` package,
onnxruntime, opencv-python-headless, numpy, pandas, pyarrow, boto3); `tensorflow` adds TensorFlow for
`--engine tensorflow` and for exporting ONNX from weights at run time. Neither carries pyspark: EMR provides
it. Versions come from constraints.txt, the same pins as the development environment.

Run it on the OS and Python of the EMR Serverless workers (packaging/Dockerfile does, on Amazon Linux
2023), or on this machine for local runs. Standard library only, so the Dockerfile needs nothing else.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PACK = "venv-pack==0.2.0"
EXTRAS = {"default": "", "tensorflow": "[tensorflow]"}


def archive_name(variant: str, python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    suffix = "" if variant == "default" else f"-{variant}"
    return f"job-env{suffix}-py{version}-{platform.machine()}.tar.gz"


def build(variant: str, output: Path, python: str) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    target = output.resolve() / archive_name(variant, python)
    with tempfile.TemporaryDirectory(prefix="job-env-") as scratch:
        env = Path(scratch) / "env"
        subprocess.run([python, "-m", "venv", str(env)], check=True)
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run(
            [*pip, "-c", str(ROOT / "constraints.txt"), f"{ROOT}{EXTRAS[variant]}", VENV_PACK], check=True
        )
        target.unlink(missing_ok=True)
        subprocess.run(
            [str(env / "bin" / "venv-pack"), "--prefix", str(env), "--output", str(target), "--quiet"],
            check=True,
        )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=sorted(EXTRAS), default="default")
    parser.add_argument("--output", type=Path, default=ROOT / "dist")
    parser.add_argument("--python", default=sys.executable, help="the Python 3.11 to build with")
    args = parser.parse_args()
    started = time.perf_counter()
    archive = build(args.variant, args.output, args.python)
    print(
        f"{archive} ({archive.stat().st_size / 1e6:.1f} MB packed) in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
