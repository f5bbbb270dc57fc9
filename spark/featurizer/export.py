"""Build the Keras MobileNetV2 feature model and export it to ONNX (once per weights file, cached)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from featurizer.decode import IMAGE_SIZE
from featurizer.weights import Weights, WeightsUnavailable, cache_dir

ONNX_OPSET = 17
ONNX_INPUT = "images"
WEIGHTS_SOURCE_KEY = "featurizer.weights"
WEIGHTS_SHA256_KEY = "featurizer.weights_sha256"


def keras_feature_model(weights_path: Path) -> Any:
    """MobileNetV2 alpha 1.0, 224x224, average-pooled: 1280 features, the layer before the classifier."""
    import keras

    try:
        return keras.applications.MobileNetV2(
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
            alpha=1.0,
            include_top=False,
            pooling="avg",
            weights=str(weights_path),
        )
    except (ValueError, OSError, KeyError) as error:
        raise WeightsUnavailable(
            f"{weights_path} does not hold MobileNetV2 (alpha 1.0, 224, without top) weights: {error}"
        ) from error


def export_onnx(weights: Weights, directory: Path | None = None) -> Path:
    """The ONNX export of the feature model for these weights; reused when it already exists."""
    target = (directory or cache_dir() / "onnx") / f"mobilenet_v2_features_{weights.sha256[:16]}.onnx"
    if target.is_file():
        return target
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as error:
        raise WeightsUnavailable(
            "exporting the ONNX model needs tensorflow, which this environment lacks: pass --model with "
            "an ONNX file built by packaging/build_model.py, or install the 'tensorflow' extra"
        ) from error

    model = keras_feature_model(weights.path)
    signature = (tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32, name=ONNX_INPUT),)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda images: model(images, training=False)), input_signature=signature, opset=ONNX_OPSET
    )
    for key, value in {WEIGHTS_SOURCE_KEY: weights.source, WEIGHTS_SHA256_KEY: weights.sha256}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(proto.SerializeToString())
    os.replace(partial, target)
    return target
