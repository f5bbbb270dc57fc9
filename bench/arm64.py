"""The job's decoding and both ONNX models on aarch64, emulated, against this machine's: does what runs on
Graviton workers give the same pixels and features?

    # once (Debian): an aarch64 Python 3.11 and the archive's aarch64 wheels, unpacked
    dpkg --add-architecture arm64 && apt-get update
    apt-get install qemu-user-static libpython3.11:arm64 libstdc++6:arm64 zlib1g:arm64
    apt-get download python3.11-minimal:arm64 && dpkg -x python3.11-minimal_*_arm64.deb /tmp/armpy
    .venv/bin/pip download --dest /tmp/arm-wheels --only-binary=:all: --platform manylinux_2_28_aarch64 \
        --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp \
        numpy==1.26.4 onnxruntime==1.23.2 opencv-python-headless==4.11.0.86
    for w in /tmp/arm-wheels/*.whl; do unzip -qo "$w" -d /tmp/arm-site; done

    .venv/bin/python bench/arm64.py --fp32 dist/...onnx --int8 dist/...int8.onnx     # 4 minutes

qemu runs ONNX Runtime's and OpenCV's real aarch64 code, but on the instructions qemu offers, so the
kernels chosen may differ from a Graviton's (which has dot-product and, from Graviton3, i8mm); the pace
under emulation says nothing about a Graviton's.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
SPARK = HERE.parents[1] / "spark"


def emit(args: argparse.Namespace) -> None:
    """On the interpreter's own machine: decoded pixels of the JPEGs, both models' features."""
    import numpy as np

    from featurizer.decode import preprocess
    from featurizer.engines import OnnxEngine

    work = args.work
    files = sorted((work / "jpegs").iterdir())
    found = {"pixels": np.stack([preprocess(path.read_bytes()).pixels for path in files])}
    inputs = np.load(work / "inputs.npy")
    for name, model in (("fp32", args.fp32), ("int8", args.int8)):
        engine = OnnxEngine(model, threads=2)
        found[name] = np.concatenate([engine.extract(inputs[i : i + 16]) for i in range(0, len(inputs), 16)])
    np.savez(work / f"{platform.machine()}.npz", **found)


def prepare(work: Path) -> None:
    """The inputs: 32 validation views (all six photos) and JPEGs from 100x100 to 4000x3000."""
    import cv2
    import numpy as np

    from featurizer.calibration import default_validation
    from featurizer.samples import generate

    np.save(work / "inputs.npy", default_validation().images[::6])
    generate(work / "samples", per_class=2, seed=3, defects=False)
    jpegs = work / "jpegs"
    jpegs.mkdir(exist_ok=True)
    for index, path in enumerate(sorted(p for p in (work / "samples").rglob("*") if p.is_file())):
        (jpegs / f"{index:03d}{path.suffix}").write_bytes(path.read_bytes())
    rng = np.random.default_rng(0)
    for width, height in ((1600, 1200), (4000, 3000)):
        coarse = rng.normal(128, 40, (height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(jpegs / f"photo_{width}x{height}.jpg"), cv2.resize(coarse, (width, height)))


def cosines(one, other):
    import numpy as np

    return (one * other).sum(1) / np.linalg.norm(one, axis=1) / np.linalg.norm(other, axis=1)


def compare(args: argparse.Namespace) -> None:
    import numpy as np

    prepare(args.work)
    emitting = ["--emit", "--fp32", str(args.fp32), "--int8", str(args.int8), "--work", str(args.work)]
    subprocess.run([sys.executable, str(HERE), *emitting], check=True)
    emulated = ["qemu-aarch64-static", "-L", "/", str(args.arm_python), str(HERE), *emitting]
    subprocess.run([*emulated, "--site", str(args.arm_site)], check=True)
    x86, arm = np.load(args.work / "x86_64.npz"), np.load(args.work / "aarch64.npz")
    pixels = np.abs(x86["pixels"].astype(int) - arm["pixels"].astype(int))
    print(f"decoded pixels ({len(pixels)} JPEGs, 100x100 to 4000x3000): max difference {pixels.max()}, "
          f"share of values that differ {(pixels > 0).mean():.1e}")  # fmt: skip
    for name in ("fp32", "int8"):
        print(f"{name} features, aarch64 vs x86_64: min cosine {cosines(x86[name], arm[name]).min():.6f}")
    for machine, found in (("x86_64", x86), ("aarch64", arm)):
        same = cosines(found["fp32"], found["int8"])
        print(f"int8 vs fp32 on {machine}: median cosine {np.median(same):.4f}, min {same.min():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fp32", type=Path, required=True)
    parser.add_argument("--int8", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "featurizer-arm64")
    parser.add_argument("--arm-python", type=Path, default=Path("/tmp/armpy/usr/bin/python3.11"))
    parser.add_argument("--arm-site", type=Path, default=Path("/tmp/arm-site"))
    parser.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--site", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        sys.path[:0] = [str(args.site)] * bool(args.site) + [str(SPARK)]
        emit(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    compare(args)


if __name__ == "__main__":
    main()
