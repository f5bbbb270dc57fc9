"""Refit: a completed run's featurized images as the input of a new run's persist -> fit -> evaluate ->
write, so that another PCA or classifier setting costs no image read and no CNN.

The completed run's `features/` holds every image it featurized (id, path, label, split, the model's
floats) and its `rejected.csv` every image it could not, for the very listing its manifest counts: a
refit copies both and fits on them.
"""

from __future__ import annotations

from typing import Any

from featurizer import storage
from featurizer.catalog import CatalogSummary


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
