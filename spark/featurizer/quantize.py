"""The INT8 feature model: ONNX Runtime's static quantization of the fp32 export, in QDQ format.

Per-channel int8 weights and uint8 activations (the pair this CPU's VNNI kernels run fastest), MinMax
ranges from a calibration set. One layer keeps 16-bit weights: the first depthwise convolution, whose
int8 weights alone take the features' median cosine to fp32 from above 0.98 to about 0.95
(`bench/int8.py --sensitivity`, docs/performance.md). It is kept quantized rather than float because
ONNX Runtime's WeightBiasQuantization pass re-quantizes a float convolution between quantized tensors
with one scale for all its channels, which wrecks this layer.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from featurizer.calibration import ImageSet
from featurizer.export import ONNX_INPUT

PRECISION_KEY = "featurizer.precision"
FP32_SHA256_KEY = "featurizer.fp32_sha256"
CALIBRATION_KEY = "featurizer.calibration"
QUALITY_KEY = "featurizer.quality"
INT16_DEPTHWISE = (0,)  # the depthwise convolutions, in graph order, that keep 16-bit weights
CALIBRATION_BATCH = 16


def int8_path(fp32: Path) -> Path:
    """Where the INT8 model of an fp32 export is built: beside it."""
    return fp32.with_name(f"{fp32.stem}.int8.onnx")


class _Batches:
    """ONNX Runtime's CalibrationDataReader over an array of model inputs."""

    def __init__(self, images: np.ndarray) -> None:
        self._batches: Iterator[np.ndarray] = (
            images[i : i + CALIBRATION_BATCH] for i in range(0, len(images), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {ONNX_INPUT: batch}


def depthwise_weights(model: Any) -> list[str]:
    """The weight initializers of the model's depthwise convolutions (group > 1), in graph order."""
    return [
        node.input[1]
        for node in model.graph.node
        if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)
    ]


def quantize(
    fp32: Path,
    calibration: ImageSet,
    target: Path,
    int16_depthwise: tuple[int, ...] = INT16_DEPTHWISE,
) -> Path:
    """The INT8 model of `fp32` at `target`, its ranges from `calibration`, written atomically; the fp32
    model's metadata (its weights) carried over, with the precision, the fp32 file and the calibration."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from featurizer.weights import sha256_of

    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        weights = depthwise_weights(onnx.load(str(prepared)))
        overrides = {weights[i]: [{"quant_type": QuantType.QInt16, "axis": 0}] for i in int16_depthwise}
        quantized = Path(work) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            _Batches(calibration.images),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"TensorQuantOverrides": overrides},
        )
        model = onnx.load(str(quantized))
    source = onnx.load(str(fp32), load_external_data=False)
    carried = {entry.key: entry.value for entry in source.metadata_props}
    described = {
        **carried,
        PRECISION_KEY: "int8",
        FP32_SHA256_KEY: sha256_of(fp32),
        CALIBRATION_KEY: f"{calibration.source}; MinMax, per-channel QDQ, uint8 activations, int8 weights "
        f"(depthwise convolutions {', '.join(map(str, int16_depthwise)) or 'none'} at int16)",
    }
    set_metadata(model, described)
    _save(model, target)
    return target


def set_metadata(model: Any, entries: Mapping[str, str]) -> None:
    kept = {entry.key: entry.value for entry in model.metadata_props}
    del model.metadata_props[:]
    for key, value in {**kept, **entries}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def record_quality(target: Path, quality: Mapping[str, Any]) -> None:
    """The quality gate's figures written into the model's metadata, where runs read them back."""
    import onnx

    model = onnx.load(str(target))
    set_metadata(model, {QUALITY_KEY: json.dumps(dict(quality), sort_keys=True)})
    _save(model, target)


def _save(model: Any, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(model.SerializeToString())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
