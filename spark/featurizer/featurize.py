"""Read, decode and featurize: one pass over the images, in Python workers, Arrow batch by Arrow batch.

The function Spark ships to each task carries an `EngineSpec` (a file name and two words); the model
itself is loaded by `load_engine` once per worker process and reused across batches and tasks.
`mapInArrow` hands over the paths without a pandas copy; the worker reads the bytes itself (`fetch`),
and the features go back as one Arrow list array over the engine's output buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pyarrow as pa
from pyspark import Accumulator, SparkFiles
from pyspark.sql import DataFrame

from featurizer.decode import Decoded, preprocess, to_model_input
from featurizer.engines import EngineSpec, load_engine
from featurizer.fetch import read_batches
from featurizer.options import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

PASSED_THROUGH = ("image_id", "path", "label", "split")
FEATURIZED_SCHEMA = (
    "image_id string, path string, label string, split string, features array<float>, error string"
)
FEATURIZED_COLUMNS = (*PASSED_THROUGH, "features", "error")


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
    keep: tuple[str, ...],
    spec: EngineSpec,
    batch_size: int,
    images_processed: Accumulator[int],
    images_through_model: Accumulator[int],
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> Iterator[pa.RecordBatch]:
    engine = None
    for batch in batches:
        paths = batch.column("path").to_pylist()
        lengths = batch.column("length").to_pylist()
        usable: list[int] = []
        vectors: list[np.ndarray] = []
        reasons: list[str | None] = []
        # Read and decoded one inference batch at a time: a worker holds two batches' bytes and one
        # batch's tensors, whatever the Arrow batch's size.
        batches_read = read_batches(paths, batch_size, lengths, max_image_bytes)
        for start, contents in zip(range(0, len(paths), batch_size), batches_read, strict=True):
            decoded = [
                preprocess(c, max_image_pixels) if isinstance(c, bytes) else Decoded(None, c)
                for c in contents
            ]
            reasons += [d.reason for d in decoded]
            ready = [i for i, d in enumerate(decoded) if d.pixels is not None]
            if ready:
                engine = engine or load_engine(spec.engine, SparkFiles.get(spec.model_file), spec.threads)
                pixels = to_model_input(np.stack([decoded[i].pixels for i in ready]))
                vectors.append(engine.extract(pixels).astype(np.float32, copy=False))
                usable += [start + i for i in ready]
        images_through_model.add(len(usable))
        images_processed.add(len(paths))
        yield pa.RecordBatch.from_arrays(
            [
                *(batch.column(name) for name in PASSED_THROUGH),
                as_list_array(vectors, usable, len(paths)),
                pa.array(reasons, pa.string()),
                *(batch.column(name) for name in keep),
            ],
            names=[*PASSED_THROUGH, "features", "error", *keep],
        )


def featurize(
    images: DataFrame,
    spec: EngineSpec,
    batch_size: int,
    images_processed: Accumulator[int],
    images_through_model: Accumulator[int],
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """images (image_id, path, length, label, split) -> FEATURIZED_SCHEMA (and the columns in `keep`,
    last), one row per image; a file over `max_image_bytes` in the listing is rejected unread, an image
    over `max_image_pixels` undecoded."""
    work = partial(
        featurize_batches,
        keep=keep,
        spec=spec,
        batch_size=batch_size,
        images_processed=images_processed,
        images_through_model=images_through_model,
        max_image_bytes=max_image_bytes,
        max_image_pixels=max_image_pixels,
    )
    selected = images.select(*dict.fromkeys((*PASSED_THROUGH, *keep, "length")))
    kept = "".join(f", {name} {images.schema[name].dataType.simpleString()}" for name in keep)
    return selected.mapInArrow(work, FEATURIZED_SCHEMA + kept)
