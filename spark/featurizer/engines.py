"""Inference engines behind one interface: a batch of model inputs in, 1280 features per image out.

`load_engine` is cached per process, so a Spark Python worker (reused across tasks by default) loads the
model once and keeps it; tasks carry only the small `EngineSpec`, never the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np


class FeatureEngine(Protocol):
    name: str

    def extract(self, batch: np.ndarray) -> np.ndarray:
        """(n, 224, 224, 3) float32 in [-1, 1] -> (n, 1280) float32."""
        ...


@dataclass(frozen=True)
class EngineSpec:
    """What a worker needs to load an engine: which one, the model file's name in SparkFiles, threads."""

    engine: str
    model_file: str
    threads: int = 1


class OnnxEngine:
    name = "onnx"

    def __init__(self, model_path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def extract(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]


class KerasEngine:
    name = "tensorflow"

    def __init__(self, weights_path: Path, threads: int) -> None:
        import tensorflow as tf

        from featurizer.export import keras_feature_model

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # TensorFlow already runs in this process (the driver, in tests): its pools stay as set
        self._model = keras_feature_model(weights_path)

    def extract(self, batch: np.ndarray) -> np.ndarray:
        return self._model(batch, training=False).numpy()


@cache
def load_engine(engine: str, model_path: str, threads: int) -> FeatureEngine:
    if engine == "onnx":
        return OnnxEngine(Path(model_path), threads)
    if engine == "tensorflow":
        return KerasEngine(Path(model_path), threads)
    raise ValueError(f"unknown engine {engine!r}")


def engine_version(engine: str) -> str:
    if engine == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import tensorflow

    return f"tensorflow {tensorflow.__version__}"
