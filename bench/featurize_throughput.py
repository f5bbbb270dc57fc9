"""Feature-extraction throughput (images/s) of both engines, on N generated 100x100 JPEGs.

    FEATURIZER_WEIGHTS=../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        .venv/bin/python bench/featurize_throughput.py --images 2000

For each engine it measures
  engine  the bare engine on preprocessed tensors (no decoding, no Spark), batches of --batch-size;
  spark   the job's own featurize step in Spark local mode: read -> decode -> featurize -> Parquet.
A benchmark, not a test: the machines are shared and noisy, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from featurizer import storage
from featurizer.catalog import catalog
from featurizer.decode import preprocess
from featurizer.engines import EngineSpec, load_engine
from featurizer.export import export_onnx
from featurizer.featurize import featurize
from featurizer.options import WEIGHTS_ENV
from featurizer.outputs import write_parquet
from featurizer.samples import CLASSES, draw, encode
from featurizer.session import configure_job, local_session
from featurizer.weights import resolve_weights


def make_images(root: Path, count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    painters = list(CLASSES.items())
    jpegs = []
    for index in range(count):
        name, painter = painters[index % len(painters)]
        data = encode(draw(painter, (100, 100), rng), ".jpg")
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{index:06d}.jpg").write_bytes(data)
        jpegs.append(data)
    return jpegs


def bare_engine(engine: str, model_file: Path, batch: np.ndarray, images: int, threads: int) -> float:
    model = load_engine(engine, str(model_file), threads)
    model.extract(batch)  # warm-up
    batches = max(1, images // len(batch))
    start = time.perf_counter()
    for _ in range(batches):
        model.extract(batch)
    return batches * len(batch) / (time.perf_counter() - start)


def spark_stage(spark, images_dir: Path, engine: str, model_file: Path, batch_size: int, out: str) -> float:
    configure_job(spark, batch_size)
    spark.sparkContext.addFile(str(model_file))
    spec = EngineSpec(engine, model_file.name)
    _, images = catalog(spark, str(images_dir), 0.2, 42)
    processed, through = spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0)
    start = time.perf_counter()
    write_parquet(featurize(images, spec, batch_size, processed, through), out)
    seconds = time.perf_counter() - start
    assert through.value == processed.value, "every generated image should decode"
    return processed.value / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--engines", default="onnx,tensorflow")
    args = parser.parse_args()
    weights = resolve_weights(os.environ.get(WEIGHTS_ENV) or "imagenet")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        root = Path(scratch)
        jpegs = make_images(root / "images", args.images)
        # The bare engine runs the same number of images without holding N tensors (600 kB each):
        # one batch of real pictures, fed N / batch-size times.
        batch = np.stack([preprocess(data).pixels for data in jpegs[: args.batch_size]])
        spark = local_session()
        rows = []
        for engine in args.engines.split(","):
            model_file = export_onnx(weights) if engine == "onnx" else weights.path
            bare = bare_engine(engine, model_file, batch, args.images, threads=cores)
            in_spark = spark_stage(
                spark,
                root / "images",
                engine,
                model_file,
                args.batch_size,
                storage.join(str(root), f"features-{engine}"),
            )
            rows.append((engine, bare, in_spark))
        spark.stop()
    out = io.StringIO()
    print(f"{args.images} images of 100x100 px, batch {args.batch_size}, {cores} cores", file=out)
    print(f"{'engine':<12}{'bare engine img/s':>20}{'spark featurize img/s':>24}{'ratio':>8}", file=out)
    for engine, bare, in_spark in rows:
        print(f"{engine:<12}{bare:>20.1f}{in_spark:>24.1f}{in_spark / bare:>8.2f}", file=out)
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
