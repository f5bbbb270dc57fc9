"""`featurizer`: run the job on local Spark, or draw sample images to run it on."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from featurizer import __version__


def _sample(argv: Sequence[str]) -> int:
    from featurizer.samples import generate

    parser = argparse.ArgumentParser(prog="featurizer sample", description="Draw labelled sample images.")
    parser.add_argument("--output", required=True, type=Path, help="folder to write <class>/<image> into")
    parser.add_argument("--per-class", type=int, default=40, help="images per class (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-defects", action="store_true", help="leave out the empty, truncated and non-image files"
    )
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be at least 1")
    made = generate(args.output, args.per_class, args.seed, defects=not args.no_defects)
    print(
        f"wrote {made.images} images ({made.defective} of them defective on purpose) "
        f"and {made.other_files} other file(s) under {made.root}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "run": "featurize a folder of images on local Spark (see `featurizer run --help`)",
        "refit": "fit and evaluate again from a completed run's features, without the CNN (--from-run)",
        "predict": "classify new images with the pipeline a completed run trained (--model-run)",
        "sample": "draw sample images (see `featurizer sample --help`)",
        "scale": "time and EMR Serverless cost of larger runs (see `featurizer scale --help`)",
        "plan": "EMR Serverless workers, hours and dollars of a run of N images (`featurizer plan --help`)",
        "remote": "start, follow and cancel runs of the deployed API (`featurizer remote --help`)",
    }
    if not args or args[0] not in commands:
        usage = "\n".join(f"  {name:8} {text}" for name, text in commands.items())
        print(
            f"featurizer {__version__}\nusage: featurizer COMMAND [OPTIONS]\n\n{usage}",
            file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout,
        )
        return 0 if args and args[0] in ("-h", "--help") else 2
    if args[0] == "sample":
        return _sample(args[1:])
    if args[0] == "remote":
        from featurizer.remote import main as remote

        return remote(args[1:])
    if args[0] in ("scale", "plan"):
        from featurizer.checkout import ControlPlaneMissing

        try:
            command = importlib.import_module(f"featurizer.{args[0]}")
        except ControlPlaneMissing as error:
            print(f"featurizer {args[0]}: {error}", file=sys.stderr)
            return 2
        return int(command.main(args[1:]))
    from featurizer.job import main as run_job

    flags = {arg.split("=", 1)[0] for arg in args[1:]}
    if args[0] == "refit" and not flags & {"--from-run", "-h", "--help"}:
        print("featurizer refit: --from-run is required: the completed run to refit", file=sys.stderr)
        return 2
    if args[0] == "predict" and not flags & {"--model-run", "-h", "--help"}:
        print(
            "featurizer predict: --model-run is required: the completed run whose pipeline classifies "
            "the images",
            file=sys.stderr,
        )
        return 2
    return run_job(args[1:], local=True, prog=f"featurizer {args[0]}")


if __name__ == "__main__":
    sys.exit(main())
