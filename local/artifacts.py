"""The job's artifacts for the local stack: built once, cached by the hash of their inputs, uploaded to S3.

- the packed job environment (``packaging/build_env.py``, default variant): it installs this checkout's
  ``featurizer`` package, so the key covers the dependency pins, the build script and ``spark/featurizer``;
- the ONNX model (``packaging/build_model.py`` on ``$FEATURIZER_WEIGHTS``), keyed by the weights and the
  export code;
- the entry point ``spark/main.py``, uploaded as it is.

They go to the artifacts bucket under the keys template.yaml's parameters give (``ENTRY_POINT_KEY``,
``ENV_ARCHIVE_KEY``, ``MODEL_KEY`` and the model's ``.sha256`` beside it, which the job checks).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurizer.options import WEIGHTS_ENV

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "dist" / "local-stack"


class ArtifactBuildError(RuntimeError):
    """A packaging script failed or its input is missing; the message says which and how to fix it."""


@dataclass(frozen=True)
class Artifacts:
    entry_point: Path
    env_archive: Path
    model: Path

    @property
    def model_sha256(self) -> Path:
        return self.model.with_name(self.model.name + ".sha256")


def _digest(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    print(f"building {what} (once; cached in {CACHE.relative_to(ROOT)}/) ...", flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise ArtifactBuildError(f"{what} failed ({' '.join(command)}):\n{result.stderr[-3000:]}")


def env_archive() -> Path:
    inputs = [ROOT / "pyproject.toml", ROOT / "constraints.txt", ROOT / "packaging" / "build_env.py"]
    inputs += sorted((ROOT / "spark" / "featurizer").rglob("*.py"))
    folder = CACHE / f"env-{_digest(inputs, sys.version)}"
    found = sorted(folder.glob("job-env-py*.tar.gz"))
    if not found:
        _run(
            [sys.executable, "packaging/build_env.py", "--output", str(folder)], "the packed job environment"
        )
        found = sorted(folder.glob("job-env-py*.tar.gz"))
    return found[0]


def model() -> Path:
    weights = os.environ.get(WEIGHTS_ENV)
    if not weights or not Path(weights).is_file():
        raise ArtifactBuildError(
            f"${WEIGHTS_ENV} must name the MobileNetV2 no-top .h5 weights file (it is {weights!r}); e.g. "
            "export FEATURIZER_WEIGHTS=../shared/models/"
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
        )
    inputs = [
        Path(weights),
        ROOT / "packaging" / "build_model.py",
        ROOT / "spark" / "featurizer" / "export.py",
    ]
    folder = CACHE / f"model-{_digest(inputs)}"
    found = sorted(folder.glob("*.onnx"))
    if not found:
        _run(
            [sys.executable, "packaging/build_model.py", "--weights", weights, "--output", str(folder)],
            "the ONNX model",
        )
        found = sorted(folder.glob("*.onnx"))
    return found[0]


def build() -> Artifacts:
    return Artifacts(entry_point=ROOT / "spark" / "main.py", env_archive=env_archive(), model=model())


def upload(artifacts: Artifacts, s3: Any, bucket: str, env: dict[str, str]) -> None:
    """Put the artifacts where the functions' environment says the job finds them."""
    s3.upload_file(str(artifacts.entry_point), bucket, env["ENTRY_POINT_KEY"])
    s3.upload_file(str(artifacts.env_archive), bucket, env["ENV_ARCHIVE_KEY"])
    s3.upload_file(str(artifacts.model), bucket, env["MODEL_KEY"])
    s3.upload_file(str(artifacts.model_sha256), bucket, env["MODEL_KEY"] + ".sha256")
