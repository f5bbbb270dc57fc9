"""Where a photo's time goes in the featurize stage, and how close (b) comes to (a) on photos (issue 22).

    .venv/bin/python bench/photos.py --model dist/mobilenet_v2_features_<sha>.onnx

For 1600x1200 and 4000x3000 JPEGs (bench/workloads.py's, grain all over):
  stages    milliseconds per image of each step of the featurize stage, one process, one thread:
            read the bytes, check the header, decode at reduced scale (and at full scale, for
            comparison), resize to 224x224, scale to floats, infer (batch --batch-size); and the ceiling
            they put on (b)/(a) where decoding and inference share the cores: infer / (all of them)
  parity    the features of the job's reduced-scale decode against a full decode's (max |difference|,
            cosines): the price of the reduced decode's speed
  (a), (b)  bench/performance.py's bare engine and featurize stage on the same photos, alternating for
            --rounds rounds, and (b)/(a)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import performance
import workloads

from featurizer.decode import decode_rgb, jpeg_size, resize, to_model_input
from featurizer.engines import OnnxEngine
from featurizer.quality import cosines
from featurizer.session import local_session

SIZES = ((1600, 1200), (4000, 3000))
# Enough photos that (b) runs for tens of seconds a round, so the stage's fixed costs (listing, tasks)
# weigh little, as at a user's scale; drawn once (12 MP ones take about 1 s each) and reused.
COUNTS = {(1600, 1200): 1200, (4000, 3000): 160}
STAGE_PHOTOS = 40  # timed step by step


def per_image_ms(step: Callable[[Any], Any], inputs: list, repeats: int = 3) -> tuple[float, list]:
    start = time.perf_counter()
    for _ in range(repeats):
        outputs = [step(item) for item in inputs]
    return (time.perf_counter() - start) / (repeats * len(inputs)) * 1000, outputs


def full_decode(data: bytes) -> np.ndarray:
    """Every pixel decoded, then shrunk: what the reduced decode is compared with."""
    return resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB))


def stages(model: Path, folder: Path, batch_size: int) -> dict:
    paths = sorted(folder.rglob("*.jpg"))[:STAGE_PHOTOS]
    engine = OnnxEngine(model, threads=1)
    ms: dict[str, float] = {}
    ms["read"], contents = per_image_ms(Path.read_bytes, paths)
    ms["header"], _ = per_image_ms(jpeg_size, contents)
    ms["decode (reduced)"], decoded = per_image_ms(decode_rgb, contents)
    ms["resize"], resized = per_image_ms(resize, decoded)
    batches = [
        np.stack(resized[i : i + batch_size]) for i in range(0, len(resized) - batch_size + 1, batch_size)
    ]
    ms["scale"], tensors = per_image_ms(to_model_input, batches)
    ms["scale"] /= batch_size
    engine.extract(tensors[0])
    ms["infer"], _ = per_image_ms(engine.extract, tensors)
    ms["infer"] /= batch_size
    ms["decode + resize (full scale)"], full = per_image_ms(full_decode, contents[:10], repeats=1)
    preparing = sum(v for k, v in ms.items() if k not in ("infer", "decode + resize (full scale)"))
    reduced_features = engine.extract(to_model_input(np.stack(resized[:10])))
    full_features = engine.extract(to_model_input(np.stack(full)))
    similarity = cosines(reduced_features, full_features)
    return {
        "kb_per_image": sum(map(len, contents)) / len(contents) / 1000,
        "decoded_at": decoded[0].shape[:2],
        "ms_per_image": ms,
        "ceiling_b_over_a": ms["infer"] / (ms["infer"] + preparing),
        "parity": {
            "max_abs_feature_difference": float(np.abs(reduced_features - full_features).max()),
            "median_cosine": float(np.median(similarity)),
            "min_cosine": float(similarity.min()),
            "max_abs_input_difference": float(
                np.abs(to_model_input(np.stack(resized[:10])) - to_model_input(np.stack(full))).max()
            ),
        },
    }


def speed(model: Path, folders: dict[str, Path], batch_size: int, rounds: int, work: Path) -> dict:
    spark = local_session()
    spark.sparkContext.addFile(str(model))
    pools = {name: performance.tensor_pool(folder) for name, folder in folders.items()}
    for name, folder in folders.items():
        performance.featurize_stage(spark, folder, model, batch_size, work / "out" / f"warm-{name}")
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in folders}
    for _ in range(rounds):
        for name, folder in folders.items():
            a = performance.bare_engine(model, pools[name], batch_size, threads=1)
            b = performance.featurize_stage(spark, folder, model, batch_size, work / "out" / f"b-{name}")
            measured[name].append({"a": a, "b": b, "b_over_a": b / a})
    spark.stop()
    return {
        name: {"rounds": rows, "b_over_a": statistics.median(r["b_over_a"] for r in rows)}
        for name, rows in measured.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="the fp32 model (build_model.py)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "featurizer-photos")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.rounds < 1 or not 1 <= args.batch_size <= STAGE_PHOTOS // 2:
        parser.error(f"--rounds must be at least 1 and --batch-size 1 to {STAGE_PHOTOS // 2}")
    folders = {f"{w}x{h}": workloads.images(args.work / f"{w}x{h}", COUNTS[(w, h)], (w, h)) for w, h in SIZES}
    results: dict[str, Any] = {"stages": {}}
    print(f"{performance.CORES} cores; stages: ms per image, one process, one thread")
    for name, folder in folders.items():
        measured = results["stages"][name] = stages(args.model, folder, args.batch_size)
        print(f"\n{name} JPEGs, {measured['kb_per_image']:.0f} kB, decoded at {measured['decoded_at']}")
        for step, value in measured["ms_per_image"].items():
            print(f"  {step:<30}{value:>8.2f}")
        print(f"  ceiling on (b)/(a): {measured['ceiling_b_over_a']:.2f}")
        print("  reduced vs full decode: " + json.dumps(measured["parity"]))
    results["speed"] = speed(args.model, folders, args.batch_size, args.rounds, args.work)
    print(f"\n{'photos':<12}{'round':>6}{'(a)':>9}{'(b)':>9}{'(b)/(a)':>9}")
    for name, measured in results["speed"].items():
        for number, row in enumerate(measured["rounds"], 1):
            print(f"{name:<12}{number:>6}{row['a']:>9.1f}{row['b']:>9.1f}{row['b_over_a']:>9.2f}")
        print(f"{name:<12}{'median':>6}{'':>18}{measured['b_over_a']:>9.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
