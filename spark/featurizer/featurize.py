"""Decode and featurize: one pass over the image bytes, in Python workers, Arrow batch by Arrow batch.

The function Spark ships to each task carries an `EngineSpec` (a file name and two words); the model
itself is loaded by `load_engine` once per worker process and reused across batches and tasks.
`mapInArrow` hands the bytes over without a pandas copy, and the features go back as one Arrow list
array over the engine's output buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pyarrow as pa
from pyspark import Accumulator, SparkFiles
from pyspark.sql import DataFrame

from featurizer.decode import preprocess
from featurizer.engines import EngineSpec, load_engine

PASSED_THROUGH = ("image_id", "path", "label", "split")
FEATURIZED_SCHEMA = (
    "image_id string, path string, label string, split string, features array<float>, error string"
)


def as_list_array(vectors: list[np.ndarray], usable: list[int], rows: int) -> pa.ListArray:
    """One list of floats per row: the engine's vectors at the `usable` rows, null elsewhere."""
    values = np.concatenate(vectors) if vectors else np.empty((0, 0), np.float32)
    lengths = np.zeros(rows, np.int32)
    lengths[usable] = values.shape[1]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    missing = np.ones(rows, bool)
    missing[usable] = False
    return pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(values.reshape(-1)), type=pa.list_(pa.float32()), mask=pa.array(missing)
    )


def featurize_batches(
    batches: Iterator[pa.RecordBatch],
    spec: EngineSpec,
    batch_size: int,
    images_processed: Accumulator[int],
    images_through_model: Accumulator[int],
) -> Iterator[pa.RecordBatch]:
    engine = None
    for batch in batches:
        contents = batch.column("content")
        usable: list[int] = []
        vectors: list[np.ndarray] = []
        reasons: list[str | None] = []
        # Decoded one inference batch at a time: a worker holds batch_size tensors, not an Arrow batch's.
        for start in range(0, len(contents), batch_size):
            decoded = [preprocess(c) for c in contents.slice(start, batch_size).to_pylist()]
            reasons += [d.reason for d in decoded]
            ready = [i for i, d in enumerate(decoded) if d.pixels is not None]
            if ready:
                engine = engine or load_engine(spec.engine, SparkFiles.get(spec.model_file), spec.threads)
                pixels = np.stack([decoded[i].pixels for i in ready])
                vectors.append(engine.extract(pixels).astype(np.float32, copy=False))
                usable += [start + i for i in ready]
        images_through_model.add(len(usable))
        images_processed.add(len(contents))
        yield pa.RecordBatch.from_arrays(
            [
                *(batch.column(name) for name in PASSED_THROUGH),
                as_list_array(vectors, usable, len(contents)),
                pa.array(reasons, pa.string()),
            ],
            names=[*PASSED_THROUGH, "features", "error"],
        )


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
    return images.select(*PASSED_THROUGH, "content").mapInArrow(work, FEATURIZED_SCHEMA)
