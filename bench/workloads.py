"""The benchmark's images: Fruits-360-like 100x100 JPEGs and photo-size JPEGs, drawn once and reused.

A folder is reused when its `.complete` file names the same count and size, so repeated runs compare
the same bytes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from featurizer.samples import CLASSES, draw, encode

SMALL = (100, 100)
PHOTO = (1600, 1200)


def _picture(index: int, size: tuple[int, int], rng: np.random.Generator) -> bytes:
    painter = list(CLASSES.values())[index % len(CLASSES)]
    picture = draw(painter, size, rng)
    if size != SMALL:  # photos have grain all over, which is what makes them slow to decode
        grain = rng.normal(0, 12, picture.shape)
        picture = np.clip(picture + grain, 0, 255).astype(np.uint8)
    return encode(picture, ".jpg")


def images(root: Path, count: int, size: tuple[int, int]) -> Path:
    """`count` JPEGs of `size` (width, height) in one folder per class under `root`."""
    marker = root / ".complete"
    stamp = f"{count} {size[0]}x{size[1]}"
    if marker.is_file() and marker.read_text() == stamp:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    names = list(CLASSES)
    for index in range(count):
        folder = root / names[index % len(names)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:07d}.jpg").write_bytes(_picture(index, size, rng))
    marker.write_text(stamp)
    return root


def subset(source: Path, target: Path, count: int) -> Path:
    """The first `count` images of `source` (hard links): the same bytes for a slower contender."""
    shutil.rmtree(target, ignore_errors=True)
    files = sorted(p for p in source.rglob("*.jpg"))[:count]
    for path in files:
        link = target / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, link)
    return target
