"""Build the model artifact: the Keras MobileNetV2 feature model exported to ONNX, with its sha256 beside it.

    python packaging/build_model.py --weights imagenet --output dist/
    python packaging/build_model.py --weights ../shared/models/mobilenet_v2_..._no_top.h5 --output dist/
    python packaging/build_model.py --precision int8 --output dist/ [--calibration DIR] [--validation DIR]

Writes dist/mobilenet_v2_features_<weights sha256[:16]>.onnx and the same name + `.sha256` (the job
checks the model against it). The ONNX file records the weights' source and sha256 in its metadata.
`--precision int8` also writes `<same stem>.int8.onnx` (+ `.sha256`): the fp32 model quantized, then
measured against it on a validation set it was not calibrated on; a model below the quality gate is
refused (exit 3, with its figures) and not written. Calibration and validation default to the photos
scikit-image ships; folders of your own images make the figures yours (validation: one folder per class).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from featurizer.calibration import (
    CalibrationUnavailable,
    ImageSet,
    check_apart,
    default_calibration,
    default_validation,
    folder_images,
)
from featurizer.export import export_onnx
from featurizer.options import PRECISIONS
from featurizer.quality import QualityGateFailed, check, measure
from featurizer.quantize import int8_path, quantize, record_quality
from featurizer.weights import WeightsUnavailable, resolve_weights, sha256_of


def _with_digest(model: Path) -> Path:
    model.with_name(model.name + ".sha256").write_text(f"{sha256_of(model)}  {model.name}\n")
    return model


def build(weights: str, output: Path) -> Path:
    return _with_digest(export_onnx(resolve_weights(weights), output))


def build_int8(spark: Any, fp32: Path, calibration: ImageSet, validation: ImageSet) -> tuple[Path, dict]:
    """The INT8 model of `fp32` beside it, if it passes the quality gate (measured with the job's own
    classifier, on `spark`); its figures. A refused model is not left behind."""
    target = int8_path(fp32)
    candidate = target.with_name(f".candidate.{target.name}")
    try:
        quantize(fp32, calibration, candidate)
        quality = measure(spark, fp32, candidate, validation)
        check(quality)
        record_quality(candidate, quality.as_dict())
        candidate.replace(target)
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    return _with_digest(target), quality.as_dict()


def _image_set(folder: Path | None, labelled: bool) -> ImageSet:
    if folder is not None:
        return folder_images(folder, labelled)
    return default_validation() if labelled else default_calibration()


def build_int8_model(
    fp32: Path, calibration: Path | None = None, validation: Path | None = None
) -> tuple[Path, dict]:
    """`build_int8` on folders of images, or on the default photo sets where none is given, with a
    local Spark of its own."""
    from featurizer.session import local_session

    calibrated_on, validated_on = _image_set(calibration, False), _image_set(validation, True)
    spark = local_session()
    try:
        return build_int8(spark, fp32, calibrated_on, validated_on)
    finally:
        spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="imagenet", help="imagenet, or a path / s3:// URI of a .h5 file")
    parser.add_argument("--output", type=Path, default=Path("dist"))
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="int8: also build the INT8 model"
    )
    parser.add_argument("--calibration", type=Path, help="a folder of images to calibrate the INT8 model on")
    parser.add_argument(
        "--validation", type=Path, help="a folder of class folders to validate the INT8 model on"
    )
    args = parser.parse_args()
    if args.precision == "fp32" and (args.calibration or args.validation):
        parser.error("--calibration and --validation are for --precision int8")
    started = time.perf_counter()
    try:
        check_apart(args.calibration, args.validation)
        model = build(args.weights, args.output)
        print(f"{model} ({model.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
        if args.precision == "int8":
            int8, quality = build_int8_model(model, args.calibration, args.validation)
            print(f"{int8} ({int8.stat().st_size / 1e6:.1f} MB); quality gate passed:")
            print(json.dumps(quality, indent=2, sort_keys=True))
    except (WeightsUnavailable, CalibrationUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except QualityGateFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
