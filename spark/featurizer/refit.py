"""Refit: a completed run's featurized images as the input of a new run's persist -> fit -> evaluate ->
write, so that another PCA or classifier setting costs no image read and no CNN.

The completed run's `features/` holds every image it featurized (id, path, label, split, the model's
floats) and its `rejected.csv` every image it could not, for the very listing its manifest counts: a
refit copies both and fits on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featurizer import storage
from featurizer.artifact import ModelArtifact
from featurizer.catalog import CatalogSummary
from featurizer.manifest import COMPLETED_FLAG


class NotARefitSource(ValueError):
    """--from-run names no completed run, or the refit would replace it."""


def completed_manifest(from_run: str, run_uri: str) -> dict[str, Any]:
    """The manifest of the completed run at `from_run`; NotARefitSource, saying why, otherwise."""
    source = from_run.rstrip("/")
    one, other = _comparable(source), _comparable(run_uri)
    if one == other or one.startswith(f"{other}/") or other.startswith(f"{one}/"):
        raise NotARefitSource(
            f"--from-run {from_run} is the run this refit would write (and replace): give the refit "
            "another --run-id"
        )
    try:
        completed = storage.exists(storage.join(source, COMPLETED_FLAG))
        manifest = storage.read_bytes(storage.join(source, "manifest.json")) if completed else None
    except Exception as error:  # botocore: access, endpoint
        raise NotARefitSource(f"--from-run {from_run} cannot be read: {error}") from error
    if manifest is None:
        raise NotARefitSource(
            f"--from-run {from_run} is not a completed run (no {COMPLETED_FLAG} there): refit from a run "
            "that finished"
        )
    described: dict[str, Any] = json.loads(manifest)
    return described


def _comparable(uri: str) -> str:
    """A location as one spelling: absolute local paths (links resolved), s3:// for s3a://."""
    if storage.is_s3(uri):
        return "s3://" + uri.split("://", 1)[1].rstrip("/")
    return str(storage.local_path(uri).expanduser().resolve())


def model_of(described: dict[str, Any]) -> ModelArtifact:
    """The model the source run featurized with: the refit's features are that model's."""
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
    )


def listing_of(described: dict[str, Any]) -> CatalogSummary:
    counts = described["counts"]
    return CatalogSummary(counts["files_found"], counts["images_found"], counts["images_unlabelled"])


def copy_outputs(from_run: str, run_uri: str, described: dict[str, Any]) -> int:
    """The source run's features/ and rejected.csv copied into the refit's run, file for file (server-side
    on S3): they are the refit's featurized and rejected images, byte for byte. Returns the rejected
    count, the source's, as its manifest read it back from that very file."""
    storage.copy_tree(storage.join(from_run, "features"), storage.join(run_uri, "features"))
    storage.copy_file(storage.join(from_run, "rejected.csv"), storage.join(run_uri, "rejected.csv"))
    return int(described["counts"]["rows"]["rejected_csv"])
