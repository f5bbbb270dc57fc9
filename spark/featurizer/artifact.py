"""The model file the workers load: an ONNX export (default engine) or the Keras weights (tensorflow).

A prebuilt ONNX file (`--model`, built by `packaging/build_model.py`) lets the job run without TensorFlow;
otherwise the driver exports one from `--weights` before Spark starts. Either way the run records which
file it used, and which weights that file came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurizer import storage
from featurizer.decode import PREPROCESSING_VERSION
from featurizer.export import WEIGHTS_SHA256_KEY, WEIGHTS_SOURCE_KEY, export_onnx, keras_feature_model
from featurizer.options import JobOptions
from featurizer.quantize import CALIBRATION_KEY, PRECISION_KEY, QUALITY_KEY
from featurizer.weights import WeightsUnavailable, download_to_cache, resolve_weights, sha256_of


class ModelUnavailable(WeightsUnavailable):
    """The `--model` file cannot be used; the message says why."""


@dataclass(frozen=True)
class ModelArtifact:
    path: Path
    source: str
    sha256: str
    weights_source: str
    weights_sha256: str
    precision: str = "fp32"
    calibration: str | None = None
    quality: dict[str, Any] | None = None
    preprocessing: int = PREPROCESSING_VERSION  # the decoding and resizing its features came from

    def as_dict(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "model_file": self.source,
            "model_sha256": self.sha256,
            "weights": self.weights_source,
            "weights_sha256": self.weights_sha256,
            "precision": self.precision,
            "preprocessing_version": self.preprocessing,
        }
        if self.precision != "fp32":
            described |= {"calibration": self.calibration, "quality": self.quality}
        return described


def _local_copy(uri: str) -> Path:
    if not storage.is_s3(uri):
        path = storage.local_path(uri).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"--model {uri}: no such file")
        return path.resolve()
    try:
        return download_to_cache(uri)
    except Exception as error:  # botocore raises several unrelated types for missing objects and credentials
        raise ModelUnavailable(f"--model {uri} could not be downloaded ({error})") from error


def _expected_sha256(uri: str) -> str | None:
    """The digest in the `<model>.sha256` file written beside it at build time, if there is one."""
    sidecar = f"{uri}.sha256"
    try:
        return storage.read_bytes(sidecar).decode().split()[0] if storage.exists(sidecar) else None
    except (OSError, IndexError, UnicodeDecodeError, storage.StorageError) as error:
        raise ModelUnavailable(f"{sidecar} cannot be read as a sha256 digest ({error})") from error


def onnx_model(uri: str, precision: str | None = "fp32") -> ModelArtifact:
    """A prebuilt ONNX model, checked against its sha256 file, loadable by onnxruntime and of the
    precision asked for (None: either); an INT8 one only with the quality gate's figures, which it was
    built behind."""
    import onnxruntime as ort

    path = _local_copy(uri)
    digest = sha256_of(path)
    expected = _expected_sha256(uri)
    if expected and expected != digest:
        raise ModelUnavailable(f"--model {uri} has sha256 {digest}, but its .sha256 file says {expected}")
    try:
        metadata = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as error:  # onnxruntime raises its own untyped errors for unreadable models
        raise ModelUnavailable(f"--model {uri} is not a usable ONNX model ({error})") from error
    custom = metadata.custom_metadata_map
    built = custom.get(PRECISION_KEY, "fp32")
    if precision is not None and built != precision:
        raise ModelUnavailable(
            f"--model {uri} is an {built} model, but the run asks for --precision {precision}: pass "
            f"--precision {built}, or the {precision} model"
        )
    quality = _quality(uri, built, custom.get(QUALITY_KEY))
    return ModelArtifact(
        path,
        uri,
        digest,
        custom.get(WEIGHTS_SOURCE_KEY, "unknown"),
        custom.get(WEIGHTS_SHA256_KEY, "unknown"),
        built,
        custom.get(CALIBRATION_KEY),
        quality,
    )


def _quality(uri: str, built: str, recorded: str | None) -> dict | None:
    """The quality gate's figures an INT8 model was built behind, which a run must be able to report."""
    if built == "fp32":
        return None
    try:
        quality = json.loads(recorded) if recorded is not None else None
    except json.JSONDecodeError:
        quality = None
    if not isinstance(quality, dict):
        raise ModelUnavailable(
            f"--model {uri} is an {built} model without readable quality-gate figures: build it with "
            "packaging/build_model.py --precision int8, which measures it against fp32"
        )
    return quality


def model_for(options: JobOptions) -> ModelArtifact:
    """What the workers will load for these options; raises WeightsUnavailable with the fix."""
    if options.model:
        return onnx_model(options.model, options.precision)
    if options.precision != "fp32":
        raise ModelUnavailable(
            f"--precision {options.precision} runs a model built for it, passed as --model: build it with "
            f"packaging/build_model.py --precision {options.precision} (it writes <model>.int8.onnx)"
        )
    weights = resolve_weights(options.weights)
    if options.engine == "tensorflow":
        keras_feature_model(weights.path)  # a wrong .h5 stops here, not on every worker
        return ModelArtifact(weights.path, weights.source, weights.sha256, weights.source, weights.sha256)
    path = export_onnx(weights)
    return ModelArtifact(path, str(path), sha256_of(path), weights.source, weights.sha256)
