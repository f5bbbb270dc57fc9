"""The INT8 model against fp32, side by side in one run (issue 22's goals), and what each of its choices
costs in quality.

    .venv/bin/python bench/int8.py --fp32 dist/mobilenet_v2_features_<sha>.onnx \
        [--int8 dist/mobilenet_v2_features_<sha>.int8.onnx]     # speed: (a) and (b), fp32 and INT8
    .venv/bin/python bench/int8.py --fp32 ... --sensitivity      # quality: which layers keep 16 bits
    .venv/bin/python bench/int8.py --fp32 ... --int8 ... --small-crops   # the gate on harder views
    .venv/bin/python bench/int8.py --fp32 ... --int8 ... --profile   # where each model's time goes

Without --int8 the INT8 model is built from --fp32 as `build_model.py --precision int8` builds it (its
gate figures are printed either way). Speed: (a) the bare ONNX engine on preprocessed tensors, one
process per core, one thread, batch 16, and (b) the job's featurize stage on 100x100 JPEGs, as
bench/performance.py measures them; the four alternate for --rounds rounds and the ratios are the
medians of each round's ratios. The figures depend on the CPU: this one has AVX-512 VNNI, which ONNX
Runtime's uint8 x int8 kernels use.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import performance
import workloads

from featurizer.calibration import VALIDATION_PHOTOS, default_calibration, default_validation, photo_views
from featurizer.quality import cosines, features, measure
from featurizer.quantize import QUALITY_KEY, quantize
from featurizer.session import local_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))

from build_model import build_int8_model

# (name, depthwise convolutions kept at int16): the build's choice and what it was chosen against.
VARIANTS = (("all int8", ()), ("first depthwise int16 (the build)", (0,)), ("first two", (0, 1)))


def gate_figures(model: Path) -> dict:
    described = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    return json.loads(described[QUALITY_KEY])


def speed(args: argparse.Namespace, work: Path, int8: Path) -> dict:
    small = workloads.images(work / "small", args.images, workloads.SMALL)
    pool = performance.tensor_pool(small)
    spark = local_session()
    for model in (args.fp32, int8):
        spark.sparkContext.addFile(str(model))
        performance.featurize_stage(spark, small, model, args.batch_size, work / "out" / "warm")
    rounds = []
    for _ in range(args.rounds):
        measured = {}
        for name, model in (("fp32", args.fp32), ("int8", int8)):
            measured[f"a_{name}"] = performance.bare_engine(model, pool, args.batch_size, threads=1)
            measured[f"b_{name}"] = performance.featurize_stage(
                spark, small, model, args.batch_size, work / "out" / f"b-{name}"
            )
        rounds.append(measured)
    spark.stop()
    ratios = {
        "b_int8_over_b_fp32": [r["b_int8"] / r["b_fp32"] for r in rounds],
        "b_int8_over_a_int8": [r["b_int8"] / r["a_int8"] for r in rounds],
        "a_int8_over_a_fp32": [r["a_int8"] / r["a_fp32"] for r in rounds],
        "b_fp32_over_a_fp32": [r["b_fp32"] / r["a_fp32"] for r in rounds],
    }
    return {"rounds": rounds, "ratios": {k: statistics.median(v) for k, v in ratios.items()}}


def sensitivity(fp32: Path, work: Path, batch_size: int) -> list[dict]:
    """The validation set's cosines to fp32 for each variant, all calibrated on the build's set, and the
    bare engine's pace on the validation images (as (a): one process per core, one thread)."""
    calibration, validation = default_calibration(), default_validation()
    reference = features(fp32, validation.images)
    rows = [{"variant": "fp32", "median_cosine": 1.0, "p1_cosine": 1.0, "model": fp32}]
    for name, kept in VARIANTS:
        model = quantize(fp32, calibration, work / f"variant-{len(kept)}.onnx", int16_depthwise=kept)
        similarity = cosines(reference, features(model, validation.images))
        rows.append(
            {
                "variant": name,
                "median_cosine": float(np.median(similarity)),
                "p1_cosine": float(np.percentile(similarity, 1)),
                "model": model,
            }
        )
    for row in rows:
        model = row.pop("model")
        row["mb"] = model.stat().st_size / 1e6
        row["a_images_per_s"] = performance.bare_engine(model, validation.images, batch_size, threads=1)
    return rows


def small_crops(fp32: Path, int8: Path) -> dict:
    """The gate's figures on views of 5-35% of each side of the validation photos: harder than its own."""
    spark = local_session()
    try:
        quality = measure(spark, fp32, int8, photo_views(VALIDATION_PHOTOS, 64, salt=3, crops=(0.05, 0.35)))
    finally:
        spark.stop()
    return quality.as_dict() | {"failures": quality.failures()}


def _session(model: Path, profile_prefix: Path | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, str(profile_prefix)
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def profile(models: dict[str, Path], work: Path, batch_size: int) -> dict:
    """Images/s of one process, one thread (timed without the profiler), and each operator's share of its
    time (ONNX Runtime's profiler, in a session of its own), on the validation images."""
    images = default_validation().images
    batches = [images[i : i + batch_size] for i in range(0, len(images) - batch_size + 1, batch_size)]
    results = {}
    for name, model in models.items():
        timed = _session(model)
        feed = timed.get_inputs()[0].name
        timed.run(None, {feed: batches[0]})
        started = time.perf_counter()
        for batch in batches * 3:
            timed.run(None, {feed: batch})
        rate = len(batches) * 3 * batch_size / (time.perf_counter() - started)
        profiled = _session(model, work / f"profile-{name}")
        for batch in batches:
            profiled.run(None, {feed: batch})
        spent: collections.Counter = collections.Counter()
        for event in json.loads(Path(profiled.end_profiling()).read_text()):
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                spent[event["args"]["op_name"]] += event["dur"]
        total = sum(spent.values())
        results[name] = {"images_per_s": rate, "shares": {op: t / total for op, t in spent.most_common(6)}}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fp32", type=Path, required=True, help="the fp32 model (build_model.py)")
    parser.add_argument("--int8", type=Path, help="its INT8 model (default: built from --fp32 here)")
    parser.add_argument("--images", type=int, default=4_000, help="100x100 JPEGs for (b)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "featurizer-int8")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sensitivity", action="store_true", help="quality of each variant instead")
    mode.add_argument("--small-crops", action="store_true", help="the gate on harder views instead")
    mode.add_argument("--profile", action="store_true", help="a per-operator profile instead")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.sensitivity:
        results: dict = {"variants": sensitivity(args.fp32, args.work, args.batch_size)}
        print(f"{'variant':<38}{'median cos':>12}{'p1 cos':>10}{'MB':>7}{'(a) img/s':>11}{'vs fp32':>9}")
        fp32_rate = results["variants"][0]["a_images_per_s"]
        for row in results["variants"]:
            rate = row["a_images_per_s"]
            print(
                f"{row['variant']:<38}{row['median_cosine']:>12.4f}{row['p1_cosine']:>10.4f}{row['mb']:>7.1f}"
                f"{rate:>11.1f}{rate / fp32_rate:>9.2f}"
            )
    elif args.small_crops or args.profile:
        int8 = args.int8 or build_int8_model(args.fp32)[0]
        if args.small_crops:
            results = small_crops(args.fp32, int8)
        else:
            results = profile({"fp32": args.fp32, "int8": int8}, args.work, args.batch_size)
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        int8 = args.int8 or build_int8_model(args.fp32)[0]
        results = {"gate": gate_figures(int8)} | speed(args, args.work, int8)
        print(json.dumps(results["gate"], indent=2, sort_keys=True))
        print(f"\n{performance.CORES} cores, batch {args.batch_size}, 1 thread per task, {args.images} JPEGs")
        print(f"{'round':<8}" + "".join(f"{k:>10}" for k in results["rounds"][0]))
        for number, row in enumerate(results["rounds"], 1):
            print(f"{number:<8}" + "".join(f"{v:>10.1f}" for v in row.values()))
        for name, value in results["ratios"].items():
            print(f"{name:<24}{value:>6.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
