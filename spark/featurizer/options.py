"""The job's options: one argument parser shared by `spark-submit spark/main.py` and `featurizer run`."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

WEIGHTS_ENV = "FEATURIZER_WEIGHTS"
"""Environment variable that sets the default of `--weights` (an offline machine points it at a .h5 file)."""

ENGINES = ("onnx", "tensorflow")
# The feature model's numeric precision: int8 is an ONNX model quantized by packaging/build_model.py
# behind a quality gate (docs/performance.md); the control plane states it again (lambda/common/runs.py).
PRECISIONS = ("fp32", "int8")
FEATURE_COUNT = 1280
# The control plane states the run-id pattern and these bounds again (lambda/common/runs.py: the planes
# share no code); tests/unit/test_contract.py proves that both accept the same values. Bounds are
# inclusive; docs/outputs.md gives their reasons.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PCA_K_BOUNDS = (1, FEATURE_COUNT)
FRACTION_BOUNDS = (0.001, 0.999)
SEED_BOUNDS = (0, 2**31 - 1)
BATCH_SIZE_BOUNDS = (1, 256)
MAX_IMAGE_BYTES_BOUNDS = (1, 2**30)
MAX_IMAGE_PIXELS_BOUNDS = (1, 2**30)
FIT_MAX_IMAGES_BOUNDS = (10, 10**9)
FIT_MAX_PER_CLASS_BOUNDS = (1, 10**9)
REG_PARAM_BOUNDS = (0.0, 1000.0)
MAX_ITER_BOUNDS = (1, 1000)
# Per-image limits against hostile input (an outsize object, a decompression bomb): beyond them an image is
# rejected, never read or decoded. 32 MiB is above any camera JPEG; 50 megapixels passes an 8K frame and a
# 50 MP photo, and its 8-bit RGB decode takes 300 MB.
MAX_IMAGE_BYTES = 32 * 2**20
MAX_IMAGE_PIXELS = 50_000_000
# The fit's bounded cost (docs/performance.md, "Fit at bounded cost"): the pipeline is fitted on at most
# this stratified sample of the training split, whatever the input's size; every image is still scored.
# 80,000 is the most measured to fit in executors of 1.25 GB of heap per core (200,000 did not).
FIT_MAX_IMAGES = 80_000
FIT_MAX_PER_CLASS = 50_000
# LogisticRegression's L2 regularization and L-BFGS iterations, chosen by the sweep there.
REG_PARAM = 0.01
MAX_ITER = 50
# The options that choose the train/test split or the features: a refit keeps its source run's, so it
# takes none of them (the control plane's copy is lambda/common/runs.py's; a contract test compares them).
REFIT_KEEPS = ("test_fraction", "seed", "engine", "precision")
# The options a predict run (--model-run) does not take: the trained run's model and pipeline decide the
# features and the classes (the control plane's copy is lambda/common/runs.py's).
PREDICT_REFUSES = (
    *REFIT_KEEPS,
    "pca_k",
    "pca_variance",
    "classify_on",
    "fit_max_images",
    "fit_max_per_class",
    "reg_param",
    "max_iter",
    "from_run",
    "self_test",
)
# The feature store's folder under --output, beside the runs (docs/feature-store.md).
STORE_FOLDER = "_store"

_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class JobOptions:
    input: str
    output: str
    run_id: str
    engine: Literal["onnx", "tensorflow"] = "onnx"
    weights: str = "imagenet"
    model: str | None = None
    precision: Literal["fp32", "int8"] = "fp32"
    pca_k: int | None = 10
    pca_variance: float | None = None
    classify_on: Literal["scaled", "pca"] = "scaled"
    test_fraction: float = 0.2
    seed: int = 42
    batch_size: int = 16
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    fit_max_images: int = FIT_MAX_IMAGES
    fit_max_per_class: int = FIT_MAX_PER_CLASS
    reg_param: float = REG_PARAM
    max_iter: int = MAX_ITER
    store: str | None = None
    no_store: bool = False
    from_run: str | None = None
    model_run: str | None = None
    self_test: bool = False

    @property
    def run_uri(self) -> str:
        """Where this run writes: `<output>/<run_id>/`."""
        return f"{self.output.rstrip('/')}/{self.run_id}/"

    @property
    def store_uri(self) -> str | None:
        """The feature store the run reuses and adds to (`<output>/_store/` unless --store names
        another: no run id starts with "_"); None with --no-store."""
        if self.no_store:
            return None
        return self.store or f"{self.output.rstrip('/')}/{STORE_FOLDER}/"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(kind: type[_N], bounds: tuple[_N, _N]) -> Callable[[str], _N]:
    """An argparse type: a `kind` number within `bounds` (inclusive); NaN is within no bounds."""
    low, high = bounds
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun} from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def _run_id(text: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(text):
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
        type=_location,
        default=None,
        help="folder of images, one sub-folder per class (local path, file:// or s3://); required "
        "unless --from-run",
    )
    parser.add_argument(
        "--model-run",
        type=_location,
        default=None,
        help="predict: classify the --input images with the pipeline this completed run trained "
        "(<output>/<run_id>/), into predictions/ and predictions.csv; no fit",
    )
    parser.add_argument(
        "--from-run",
        type=_location,
        default=None,
        help="refit: fit, evaluate and write a new run from the features of this completed run "
        "(<output>/<run_id>/); no image is read and the CNN does not run",
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
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="the feature model's precision (default fp32); int8 runs the INT8 model that "
        "packaging/build_model.py --precision int8 builds, passed as --model",
    )
    pca = parser.add_mutually_exclusive_group()
    pca.add_argument(
        "--pca-k", type=_number(int, PCA_K_BOUNDS), default=None, help="number of PCA components (default 10)"
    )
    pca.add_argument(
        "--pca-variance",
        type=_number(float, FRACTION_BOUNDS),
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
        type=_number(float, FRACTION_BOUNDS),
        default=0.2,
        help="share of each class held out for evaluation, when the input has no "
        "Training/ and Test/ folders (default 0.2)",
    )
    parser.add_argument(
        "--seed", type=_number(int, SEED_BOUNDS), default=42, help="seed of the train/test split (default 42)"
    )
    parser.add_argument(
        "--batch-size",
        type=_number(int, BATCH_SIZE_BOUNDS),
        default=16,
        help="images per inference batch (default 16)",
    )
    parser.add_argument(
        "--max-image-bytes",
        type=_number(int, MAX_IMAGE_BYTES_BOUNDS),
        default=MAX_IMAGE_BYTES,
        help=f"a larger file is rejected without being read (default {MAX_IMAGE_BYTES}, 32 MiB)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=_number(int, MAX_IMAGE_PIXELS_BOUNDS),
        default=MAX_IMAGE_PIXELS,
        help=f"an image whose header gives more pixels (width x height) is rejected without being "
        f"decoded (default {MAX_IMAGE_PIXELS})",
    )
    parser.add_argument(
        "--fit-max-images",
        type=_number(int, FIT_MAX_IMAGES_BOUNDS),
        default=FIT_MAX_IMAGES,
        help=f"fit on a stratified sample of at most this many training images; every image is still "
        f"projected and predicted (default {FIT_MAX_IMAGES})",
    )
    parser.add_argument(
        "--fit-max-per-class",
        type=_number(int, FIT_MAX_PER_CLASS_BOUNDS),
        default=FIT_MAX_PER_CLASS,
        help=f"and at most this many of one class (default {FIT_MAX_PER_CLASS})",
    )
    parser.add_argument(
        "--reg-param",
        type=_number(float, REG_PARAM_BOUNDS),
        default=REG_PARAM,
        help=f"LogisticRegression's L2 regularization (default {REG_PARAM})",
    )
    parser.add_argument(
        "--max-iter",
        type=_number(int, MAX_ITER_BOUNDS),
        default=MAX_ITER,
        help=f"LogisticRegression's maximum L-BFGS iterations (default {MAX_ITER})",
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--store",
        type=_location,
        default=None,
        help=f"the feature store: images featurized there by the same model are not featurized again "
        f"(default: <output>/{STORE_FOLDER}/, shared by the runs under one --output)",
    )
    store.add_argument(
        "--no-store", action="store_true", help="featurize every image, and keep nothing for later runs"
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="also check what the job's role may and may not do on S3 and what the workers run, into "
        "manifest.json (packaging/selftest.py reads it)",
    )
    return parser


def _first_given(
    names: Sequence[str], prog: str, env: Mapping[str, str], argv: Sequence[str] | None
) -> str | None:
    """The first of `names` given on the command line (its flag), told apart from its default."""
    given = build_parser(prog, env)
    for action in given._actions:
        if action.dest in names:
            action.default = argparse.SUPPRESS
    named = vars(given.parse_args(argv))
    return next((f"--{name.replace('_', '-')}" for name in names if name in named), None)


def parse_options(
    argv: Sequence[str] | None, prog: str = "featurizer run", env: Mapping[str, str] | None = None
) -> JobOptions:
    """Parse job arguments; argparse exits with status 2 and a message naming the bad argument."""
    given = os.environ if env is None else env
    parser = build_parser(prog, given)
    args = parser.parse_args(argv)
    if not args.input and not args.from_run:
        parser.error("--input is required: a folder of images (or --from-run, a run to refit)")
    if args.model_run:
        refused = _first_given(PREDICT_REFUSES, prog, given, argv)
        if refused:
            parser.error(
                f"{refused} is not taken by a predict run (--model-run): the trained run's model and "
                "pipeline decide the features and the classes; leave it out"
            )
    if args.from_run:
        refused = _first_given(REFIT_KEEPS, prog, given, argv)
        if refused:
            parser.error(
                f"{refused} is not taken by a refit (--from-run): a refit keeps its source run's train/test "
                "split and features; leave it out, or run without --from-run to featurize and split the "
                "images again"
            )
    if args.model and args.engine != "onnx":
        parser.error("--model is an ONNX file for --engine onnx; --engine tensorflow reads --weights")
    if args.precision == "int8" and args.engine != "onnx":
        parser.error("--precision int8 is an ONNX model for --engine onnx; --engine tensorflow runs fp32")
    pca_k = args.pca_k if args.pca_k is not None or args.pca_variance is not None else 10
    return JobOptions(
        input=args.input or "",
        output=args.output,
        run_id=args.run_id or default_run_id(),
        engine=args.engine,
        weights=args.weights,
        model=args.model,
        precision=args.precision,
        pca_k=pca_k,
        pca_variance=args.pca_variance,
        classify_on=args.classify_on,
        test_fraction=args.test_fraction,
        seed=args.seed,
        batch_size=args.batch_size,
        max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels,
        fit_max_images=args.fit_max_images,
        fit_max_per_class=args.fit_max_per_class,
        reg_param=args.reg_param,
        max_iter=args.max_iter,
        store=args.store,
        no_store=args.no_store,
        from_run=args.from_run,
        model_run=args.model_run,
        self_test=args.self_test,
    )
