"""Find the MobileNetV2 ImageNet weights a run uses, before any Spark work, and fingerprint them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from featurizer import storage
from featurizer.options import WEIGHTS_ENV

IMAGENET = "imagenet"
IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
# Where keras.applications.MobileNetV2(weights="imagenet") downloads the same file from.
IMAGENET_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{IMAGENET_FILE}"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CACHE_ENV = "FEATURIZER_CACHE_DIR"


class WeightsUnavailable(Exception):
    """The weights cannot be had; the message says why and how to point the job at a file."""


@dataclass(frozen=True)
class Weights:
    source: str
    path: Path
    sha256: str


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "featurizer")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unavailable(source: str, why: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"MobileNetV2 weights {source!r} cannot be used: {why}. Pass --weights PATH_OR_S3_URI to a Keras "
        f"MobileNetV2 (alpha 1.0, 224) .h5 weights file without top, or set {WEIGHTS_ENV} to one "
        f"(on a machine with internet, --weights {IMAGENET} downloads Keras' own file)."
    )


def _download_imagenet() -> Path:
    try:
        import keras
    except ImportError as error:
        raise _unavailable(
            IMAGENET, "downloading them needs tensorflow (pip install '.[tensorflow]')"
        ) from error
    try:
        return Path(keras.utils.get_file(IMAGENET_FILE, IMAGENET_URL, cache_subdir="models"))
    except Exception as error:  # keras wraps every network failure in a bare Exception
        raise _unavailable(IMAGENET, f"the download from {IMAGENET_URL} failed ({error})") from error


def download_to_cache(uri: str) -> Path:
    """A local copy of an s3:// file, at a place fixed by its URI: re-downloaded, never piled up."""
    folder = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return storage.download(uri, cache_dir() / "downloads" / folder / Path(uri).name)


def _fetch_s3(uri: str) -> Path:
    try:
        return download_to_cache(uri)
    except Exception as error:  # botocore raises several unrelated types for missing objects and credentials
        raise _unavailable(uri, f"it could not be downloaded ({error})") from error


def resolve_weights(source: str) -> Weights:
    """A local, checked copy of the weights named by `--weights`, with its sha256."""
    if source == IMAGENET:
        path = _download_imagenet()
    elif storage.is_s3(source):
        path = _fetch_s3(source)
    else:
        path = storage.local_path(source).expanduser()
        if not path.is_file():
            raise _unavailable(source, "no such file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(HDF5_MAGIC))
    except OSError as error:
        raise _unavailable(source, f"it cannot be read ({error.strerror})") from error
    if header != HDF5_MAGIC:
        raise _unavailable(source, "it is not an HDF5 (.h5) file")
    return Weights(source=source, path=path.resolve(), sha256=sha256_of(path))
