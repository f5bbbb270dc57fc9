"""The job's options: one argument parser shared by `spark-submit spark/main.py` and `featurizer run`."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

WEIGHTS_ENV = "FEATURIZER_WEIGHTS"
"""Environment variable that sets the default of `--weights` (an offline machine points it at a .h5 file)."""

ENGINES = ("onnx", "tensorflow")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FEATURE_COUNT = 1280


@dataclass(frozen=True)
class JobOptions:
    input: str
    output: str
    run_id: str
    engine: Literal["onnx", "tensorflow"] = "onnx"
    weights: str = "imagenet"
    model: str | None = None
    pca_k: int | None = 10
    pca_variance: float | None = None
    classify_on: Literal["scaled", "pca"] = "scaled"
    test_fraction: float = 0.2
    seed: int = 42
    batch_size: int = 16

    @property
    def run_uri(self) -> str:
        """Where this run writes: `<output>/<run_id>/`."""
        return f"{self.output.rstrip('/')}/{self.run_id}/"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _pca_k(text: str) -> int:
    value = _positive_int(text)
    if value > FEATURE_COUNT:
        raise argparse.ArgumentTypeError(
            f"must be at most {FEATURE_COUNT} (the number of features), got {value}"
        )
    return value


def _open_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def _run_id(text: str) -> str:
    if not RUN_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a usable run id: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


def _location(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme not in ("", "file", "s3", "s3a"):
        raise argparse.ArgumentTypeError(
            f"unsupported scheme {scheme}://; use a local path, file:// or s3://"
        )
    return text


def default_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("run-%Y%m%dT%H%M%SZ")


def build_parser(prog: str, env: Mapping[str, str]) -> argparse.ArgumentParser:
    default_weights = env.get(WEIGHTS_ENV) or "imagenet"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Featurize labelled images with MobileNetV2, then fit StandardScaler + PCA + "
        "LogisticRegression with Spark ML and write every output under <output>/<run_id>/.",
    )
    parser.add_argument(
        "--input",
        required=True,
        type=_location,
        help="folder of images, one sub-folder per class (local path, file:// or s3://)",
    )
    parser.add_argument(
        "--output",
        required=True,
        type=_location,
        help="where runs are written; this run goes to <output>/<run_id>/",
    )
    parser.add_argument(
        "--run-id",
        type=_run_id,
        default=None,
        help="name of this run (default: run-<UTC timestamp>); re-using one replaces that run",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="onnx",
        help="inference engine (default: onnx, onnxruntime on an ONNX export of the Keras model)",
    )
    parser.add_argument(
        "--weights",
        default=default_weights,
        help=f"'imagenet' (Keras download) or a path / s3:// URI of a Keras MobileNetV2 .h5 "
        f"weights file without top (default: ${WEIGHTS_ENV} if set, else imagenet; "
        f"now {default_weights!r})",
    )
    parser.add_argument(
        "--model",
        type=_location,
        default=None,
        help="a prebuilt ONNX feature model (path or s3://, from packaging/build_model.py) for the onnx "
        "engine; when given, --weights is not used and TensorFlow is not needed",
    )
    pca = parser.add_mutually_exclusive_group()
    pca.add_argument("--pca-k", type=_pca_k, default=None, help="number of PCA components (default 10)")
    pca.add_argument(
        "--pca-variance",
        type=_open_fraction,
        default=None,
        help="choose the smallest k whose components explain this share of the variance, e.g. 0.95",
    )
    parser.add_argument(
        "--classify-on",
        choices=("scaled", "pca"),
        default="scaled",
        help="train the classifier on the scaled features or on their PCA projection",
    )
    parser.add_argument(
        "--test-fraction",
        type=_open_fraction,
        default=0.2,
        help="share of each class held out for evaluation, when the input has no "
        "Training/ and Test/ folders (default 0.2)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/test split (default 42)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=16, help="images per inference batch (default 16)"
    )
    return parser


def parse_options(
    argv: Sequence[str] | None, prog: str = "featurizer run", env: Mapping[str, str] | None = None
) -> JobOptions:
    """Parse job arguments; argparse exits with status 2 and a message naming the bad argument."""
    parser = build_parser(prog, os.environ if env is None else env)
    args = parser.parse_args(argv)
    if args.model and args.engine != "onnx":
        parser.error("--model is an ONNX file for --engine onnx; --engine tensorflow reads --weights")
    pca_k = args.pca_k if args.pca_k is not None or args.pca_variance is not None else 10
    return JobOptions(
        input=args.input,
        output=args.output,
        run_id=args.run_id or default_run_id(),
        engine=args.engine,
        weights=args.weights,
        model=args.model,
        pca_k=pca_k,
        pca_variance=args.pca_variance,
        classify_on=args.classify_on,
        test_fraction=args.test_fraction,
        seed=args.seed,
        batch_size=args.batch_size,
    )
