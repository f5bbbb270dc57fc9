"""Build the model artifact: the Keras MobileNetV2 feature model exported to ONNX, with its sha256 beside it.

    python packaging/build_model.py --weights imagenet --output dist/
    python packaging/build_model.py --weights ../shared/models/mobilenet_v2_..._no_top.h5 --output dist/

Writes dist/mobilenet_v2_features_<weights sha256[:16]>.onnx and the same name + `.sha256` (the job
checks the model against it). The ONNX file records the weights' source and sha256 in its metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from featurizer.export import export_onnx
from featurizer.weights import WeightsUnavailable, resolve_weights, sha256_of


def build(weights: str, output: Path) -> Path:
    model = export_onnx(resolve_weights(weights), output)
    digest = sha256_of(model)
    model.with_name(model.name + ".sha256").write_text(f"{digest}  {model.name}\n")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="imagenet", help="imagenet, or a path / s3:// URI of a .h5 file")
    parser.add_argument("--output", type=Path, default=Path("dist"))
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        model = build(args.weights, args.output)
    except WeightsUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = model.stat().st_size / 1e6
    print(f"{model} ({size:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
