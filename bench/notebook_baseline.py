"""The original notebook's way of featurizing, rebuilt as the benchmark's baseline.

A Keras MobileNetV2 built on the driver and captured in a pandas UDF's closure (so every task
deserializes the whole model), `model.predict` on each batch, OpenCV decoding without a colour
conversion, written to Parquet. Nothing here is used by the product.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from featurizer.export import keras_feature_model


def _tensor(content: bytes) -> np.ndarray:
    from tensorflow.keras.applications.mobilenet_v2 import preprocess_input

    image = cv2.resize(cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR), (224, 224))
    return preprocess_input(image.astype(np.float32))


def equal_count_packing(files: int, total_bytes: int, tasks: int) -> dict[str, str]:
    """binaryFile scan settings that cut the files into about `tasks` tasks of equal image counts: each
    file weighs its length plus the average file's."""
    average = max(1, total_bytes // max(1, files))
    return {
        "spark.sql.files.maxPartitionBytes": str(math.ceil((total_bytes + files * average) / tasks)),
        "spark.sql.files.openCostInBytes": str(average),
        "spark.sql.files.minPartitionNum": str(tasks),
    }


def featurize(images: DataFrame, weights: Path) -> DataFrame:
    model = keras_feature_model(weights)

    @pandas_udf("array<float>")
    def features(contents: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in contents:
            predicted = model.predict(np.stack(batch.map(_tensor)), verbose=0)
            yield pd.Series(list(predicted))

    return images.select("path", features(F.col("content")).alias("features"))
