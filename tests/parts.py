"""Part files as Spark writes them, and the file they join into: shared by the tests of featurizer.concat."""

import random

from featurizer.concat import MIN_PART_SIZE

HEADER = b'image_id,"label, as written",split\n'
K, M = 1024, MIN_PART_SIZE
SCRATCH, TARGET = "runs/r1/pca.csv._parts", "runs/r1/pca.csv"

LAYOUTS = {
    "header only": [],
    "empty parts": [0, 0],
    "many small": [200 * K] * 40,
    "small-large": [100 * K, 2 * M + 100 * K],  # the large one tops the buffer up, then a ranged copy
    "large-small": [2 * M, 100 * K],
    "large-large": [2 * M, 2 * M],  # the second one is copied whole
    "large with a tail under the minimum": [100 * K, M + 100 * K],  # buffered across two parts
}


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def write_parts(sizes: list[int]) -> dict[str, bytes]:
    """Part files named as Spark names them, and the files Spark writes beside them."""
    parts = {f"part-{i:05d}-0f1e.csv": blob(i, size) for i, size in enumerate(sizes)}
    return {"_SUCCESS": b"", ".part-00000-0f1e.csv.crc": b"crc", **parts}


def joined(files: dict[str, bytes]) -> bytes:
    return HEADER + b"".join(data for name, data in sorted(files.items()) if name.startswith("part-"))
