"""Decode and featurize: one pass over the image bytes, in Python workers, batch by batch.

The function Spark ships to each task carries an `EngineSpec` (a file name and two words); the model
itself is loaded by `load_engine` once per worker process and reused across batches and tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pandas as pd
from pyspark import Accumulator, SparkFiles
from pyspark.sql import DataFrame

from featurizer.decode import preprocess
from featurizer.engines import EngineSpec, load_engine

FEATURIZED_SCHEMA = (
    "image_id string, path string, label string, split string, features array<float>, error string"
)


def featurize_batches(
    batches: Iterator[pd.DataFrame],
    spec: EngineSpec,
    batch_size: int,
    images_processed: Accumulator[int],
    images_through_model: Accumulator[int],
) -> Iterator[pd.DataFrame]:
    engine = None
    for frame in batches:
        decoded = [preprocess(bytes(content)) for content in frame["content"]]
        usable = [i for i, d in enumerate(decoded) if d.pixels is not None]
        features: list[np.ndarray | None] = [None] * len(decoded)
        for start in range(0, len(usable), batch_size):
            chunk = usable[start : start + batch_size]
            engine = engine or load_engine(spec.engine, SparkFiles.get(spec.model_file), spec.threads)
            for index, vector in zip(
                chunk, engine.extract(np.stack([decoded[i].pixels for i in chunk])), strict=True
            ):
                features[index] = vector
        images_through_model.add(len(usable))
        images_processed.add(len(decoded))
        yield frame.drop(columns=["content"]).assign(features=features, error=[d.reason for d in decoded])


def featurize(
    images: DataFrame,
    spec: EngineSpec,
    batch_size: int,
    images_processed: Accumulator[int],
    images_through_model: Accumulator[int],
) -> DataFrame:
    """images (image_id, path, label, split, content) -> FEATURIZED_SCHEMA, one row per image."""
    work = partial(
        featurize_batches,
        spec=spec,
        batch_size=batch_size,
        images_processed=images_processed,
        images_through_model=images_through_model,
    )
    return images.select("image_id", "path", "label", "split", "content").mapInPandas(work, FEATURIZED_SCHEMA)
