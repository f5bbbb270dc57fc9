"""A completed run another run reads: a refit's (`--from-run`) or a predict run's (`--model-run`).

Its manifest says what it read and which model featurized it; a run that reads it checks that before any
Spark work starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featurizer import storage
from featurizer.artifact import ModelArtifact
from featurizer.manifest import COMPLETED_FLAG

# What each option's run is called in its messages.
READERS = {"--from-run": "refit", "--model-run": "predict run"}


class NotASourceRun(ValueError):
    """The option names no completed run, or the run would replace the one it reads."""


def completed_manifest(source_uri: str, run_uri: str, option: str) -> dict[str, Any]:
    """The manifest of the completed run at `source_uri`, which `option` named; NotASourceRun, saying
    why, otherwise."""
    reader = READERS[option]
    source = source_uri.rstrip("/")
    one, other = _comparable(source), _comparable(run_uri)
    if one == other or one.startswith(f"{other}/") or other.startswith(f"{one}/"):
        raise NotASourceRun(
            f"{option} {source_uri} is the run this {reader} would write (and replace): give the "
            f"{reader} another --run-id"
        )
    try:
        completed = storage.exists(storage.join(source, COMPLETED_FLAG))
        manifest = storage.read_bytes(storage.join(source, "manifest.json")) if completed else None
    except Exception as error:  # botocore: access, endpoint
        raise NotASourceRun(f"{option} {source_uri} cannot be read: {error}") from error
    if manifest is None:
        raise NotASourceRun(
            f"{option} {source_uri} is not a completed run (no {COMPLETED_FLAG} there): give a run that "
            "finished"
        )
    described: dict[str, Any] = json.loads(manifest)
    return described


def _comparable(uri: str) -> str:
    """A location as one spelling: absolute local paths (links resolved), s3:// for s3a://."""
    if storage.is_s3(uri):
        return "s3://" + uri.split("://", 1)[1].rstrip("/")
    return str(storage.local_path(uri).expanduser().resolve())


def model_of(described: dict[str, Any]) -> ModelArtifact:
    """The model the source run featurized with, as its manifest records it."""
    model = described["model"]
    return ModelArtifact(
        path=Path(model["model_file"].rsplit("/", 1)[-1]),
        source=model["model_file"],
        sha256=model["model_sha256"],
        weights_source=model["weights"],
        weights_sha256=model["weights_sha256"],
        precision=model.get("precision", "fp32"),  # runs from before INT8 models were all fp32
        calibration=model.get("calibration"),
        quality=model.get("quality"),
        # Runs from before the version was recorded were made with the first, the only one until then.
        preprocessing=model.get("preprocessing_version", 1),
    )
