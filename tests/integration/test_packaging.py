"""The packed job environment and the model artifact, as EMR Serverless would use them."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from featurizer.artifact import ModelUnavailable, onnx_model
from tests.paths import ROOT

PYSPARK_HOME = Path(__import__("pyspark").__file__).parent
# Standard-library C modules and the libraries they link on Debian and Amazon Linux 2023, which the
# environment must carry: the test hides this machine's copies.
MODULES = "sys, ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, numpy"
LIBRARIES = (
    "libssl.so.3",
    "libcrypto.so.3",
    "libsqlite3.so.0",
    "libffi.so.8",
    "liblzma.so.5",
    "libbz2.so.1.0",
    "libz.so.1",
    "libuuid.so.1",
)


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, **kwargs)


def docker_build_stage(context: Path, out: Path) -> list[list[str]]:
    """The Dockerfile's build stage for this machine (no Docker here): its COPYs done into `context` as
    Docker does them, and its packaging RUNs as commands, with this interpreter for the image's Python
    and `out` for /dist."""
    workdir, commands = PurePosixPath("/"), []
    for line in (ROOT / "packaging" / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word == "FROM" and commands:
            break  # the export stage only copies the archive out
        if word == "WORKDIR":
            workdir = PurePosixPath(rest)
        elif word == "COPY":
            *sources, destination = rest.split()
            target = context / (workdir / destination).relative_to(workdir)
            for source in map(Path, sources):
                if (ROOT / source).is_dir():  # a folder's contents go into the destination
                    shutil.copytree(ROOT / source, target, dirs_exist_ok=True)
                    continue
                copied = target / source.name if destination.endswith("/") else target
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, copied)
        elif word == "RUN" and "packaging/" in rest:
            here = {"/dist": str(out), "python3.11": sys.executable, "/usr/bin/python3.11": sys.executable}
            commands.append([here.get(a, a) for a in shlex.split(rest.replace("${VARIANT}", "default"))])
    return commands


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> Path:
    """The job environment built as packaging/Dockerfile builds it, and the ONNX model."""
    out, context = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("docker-context")
    for command in docker_build_stage(context, out):
        built = run(*command, cwd=context)
        assert built.returncode == 0, built.stderr[-3000:]
    built = run(sys.executable, ROOT / "packaging" / "build_model.py", "--output", out, "--weights", weights)
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def system_copies(names: tuple[str, ...]) -> list[str]:
    """Where this machine's loader finds the libraries with these names (ldconfig's cache)."""
    cache = run("ldconfig", "-p").stdout.splitlines()
    found = {line.split(" => ")[1] for line in cache if " => " in line and line.split()[0] in names}
    return sorted({str(Path(p).resolve()) for p in found})


def without_any_python_3_11(
    command: list[str | Path], scratch: Path, libraries: tuple[str, ...] = ()
) -> list[str]:
    """`command` run where no Python 3.11 of this machine can be found, as on a worker that has none: a
    private mount namespace with the build's interpreter (this test's own), the system's and its libpython,
    and the system's copies of `libraries`, hidden."""
    nothing = scratch / "nothing"
    nothing.mkdir(exist_ok=True)
    folders = [
        p for p in {sys.base_prefix, "/usr/lib/python3.11", "/usr/local/lib/python3.11"} if Path(p).is_dir()
    ]
    files = [p for p in ("/usr/bin/python3.11", "/usr/local/bin/python3.11") if Path(p).is_file()]
    files += system_copies(("libpython3.11.so", "libpython3.11.so.1.0", *libraries))
    hide = [f"mount --bind {shlex.quote(str(nothing))} {shlex.quote(p)}" for p in folders]
    hide += [f"mount --bind /dev/null {shlex.quote(p)}" for p in files]
    script = " && ".join([*hide, 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *map(str, command)]


def test_packed_environment_carries_its_own_python_and_runs_the_job_through_spark_submit(
    dist: Path, sample_images: Path, tmp_path: Path
) -> None:
    (archive,) = dist.glob("job-env-py3.11-*.tar.gz")
    (model,) = dist.glob("*.onnx")
    environment = tmp_path / "environment"
    environment.mkdir()
    with tarfile.open(archive) as packed:
        packed.extractall(environment, filter="data")  # no absolute path, no link out of the environment
    site = next((environment / "lib").glob("python3.11/site-packages"))
    assert (site / "featurizer").is_dir() and (site / "onnxruntime").is_dir() and (site / "cv2").is_dir()
    assert not (site / "tensorflow").exists() and not (site / "pyspark").exists()
    python = environment / "bin" / "python"
    where = run(
        *without_any_python_3_11(
            [python, "-c", f"import {MODULES}; print(sys.prefix, sys.base_prefix)"], tmp_path, LIBRARIES
        )
    )
    assert where.returncode == 0, where.stderr[-3000:]
    assert where.stdout.split() == [str(environment), str(environment)]
    # As on EMR, the entry point is a lone file: featurizer must come from the archive, not this checkout.
    entry = tmp_path / "entry" / "main.py"
    entry.parent.mkdir()
    shutil.copy(ROOT / "spark" / "main.py", entry)
    # Local Spark does not unpack --archives where Python workers look: point both sides at the unpacked copy.
    env = {
        **os.environ,
        "SPARK_HOME": str(PYSPARK_HOME),
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
    }
    submit = [PYSPARK_HOME / "bin" / "spark-submit", "--master", "local[2]", entry]
    arguments = [
        "--input",
        sample_images,
        "--output",
        tmp_path / "runs",
        "--run-id",
        "packed",
        "--model",
        model,
    ]

    result = run(*without_any_python_3_11([*submit, *arguments], tmp_path), env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "packed"
    assert json.loads((run_dir / "_COMPLETED.json").read_text())["summary"]["images_featurized"] == 69
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"]["model_sha256"] == (model.parent / f"{model.name}.sha256").read_text().split()[0]
    assert manifest["model"]["weights_sha256"].startswith("71e4c4ec4aa24c9c")
    assert manifest["versions"]["engine"].startswith("onnxruntime")
    assert manifest["versions"]["python"] == platform.python_version()


def test_a_model_that_does_not_match_its_sha256_file_is_refused(dist: Path, tmp_path: Path) -> None:
    (model,) = dist.glob("*.onnx")
    copy = tmp_path / model.name
    shutil.copy(model, copy)
    (tmp_path / f"{model.name}.sha256").write_text("0" * 64 + f"  {model.name}\n")

    with pytest.raises(ModelUnavailable, match=r"its \.sha256 file says"):
        onnx_model(str(copy))


def test_a_file_that_is_not_onnx_is_refused_by_name(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")

    with pytest.raises(ModelUnavailable, match="is not a usable ONNX model"):
        onnx_model(str(fake))
