"""Sample images the project draws itself: distinct classes of synthetic "fruit", plus the files that go
wrong in real drops (empty, truncated, not an image, no class folder), so a first run shows every path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

Colour = tuple[int, int, int]
Painter = Callable[[np.ndarray, np.random.Generator], None]


def _jitter(rng: np.random.Generator, colour: Colour, spread: int = 25) -> Colour:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)  # type: ignore[return-value]


def _centre(image: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    h, w = image.shape[:2]
    size = min(h, w)
    return int(w / 2 + rng.normal(0, size / 20)), int(h / 2 + rng.normal(0, size / 20)), size


def _apple(image: np.ndarray, rng: np.random.Generator) -> None:
    x, y, size = _centre(image, rng)
    radius = int(size * rng.uniform(0.30, 0.38))
    cv2.circle(image, (x, y), radius, _jitter(rng, (200, 20, 30)), -1, cv2.LINE_AA)
    cv2.line(image, (x, y - radius), (x + 3, y - radius - size // 8), _jitter(rng, (90, 60, 20)), 3)


def _banana(image: np.ndarray, rng: np.random.Generator) -> None:
    x, y, size = _centre(image, rng)
    axes = (int(size * rng.uniform(0.38, 0.45)), int(size * rng.uniform(0.10, 0.15)))
    cv2.ellipse(
        image, (x, y), axes, rng.uniform(-35, 35), 0, 360, _jitter(rng, (240, 215, 40)), -1, cv2.LINE_AA
    )


def _blueberry(image: np.ndarray, rng: np.random.Generator) -> None:
    _, _, size = _centre(image, rng)
    for _ in range(int(rng.integers(5, 9))):
        cx, cy = (
            int(rng.uniform(0.25, 0.75) * image.shape[1]),
            int(rng.uniform(0.25, 0.75) * image.shape[0]),
        )
        cv2.circle(image, (cx, cy), int(size * 0.09), _jitter(rng, (40, 50, 120)), -1, cv2.LINE_AA)


def _kiwi(image: np.ndarray, rng: np.random.Generator) -> None:
    x, y, size = _centre(image, rng)
    radius = int(size * rng.uniform(0.30, 0.36))
    cv2.circle(image, (x, y), radius, _jitter(rng, (120, 85, 45)), -1, cv2.LINE_AA)
    cv2.circle(image, (x, y), int(radius * 0.8), _jitter(rng, (120, 190, 40)), -1, cv2.LINE_AA)
    for step in range(12):
        angle = 2 * math.pi * step / 12
        seed_at = (int(x + radius * 0.4 * math.cos(angle)), int(y + radius * 0.4 * math.sin(angle)))
        cv2.circle(image, seed_at, 2, (20, 20, 20), -1)


def _peach(image: np.ndarray, rng: np.random.Generator) -> None:
    x, y, size = _centre(image, rng)
    radius = int(size * rng.uniform(0.30, 0.37))
    cv2.circle(image, (x, y), radius, _jitter(rng, (250, 160, 90)), -1, cv2.LINE_AA)
    cv2.ellipse(
        image, (x - radius // 3, y), (radius // 2, radius), 0, 0, 360, _jitter(rng, (235, 90, 70)), -1
    )


# Class folder names on purpose carry spaces, punctuation and non-ASCII letters.
CLASSES: dict[str, Painter] = {
    "Apple Crimson Snow": _apple,
    "Banana": _banana,
    "Blueberry": _blueberry,
    "Kiwi, golden": _kiwi,
    "Pêche (jaune)": _peach,
}
SIZES = ((100, 100), (100, 100), (100, 100), (140, 90), (64, 80))
EXTENSIONS = (".jpg", ".jpg", ".JPG", ".jpeg", ".png")


def draw(painter: Painter, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An RGB picture of one fruit on a white background with a little noise."""
    width, height = size
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    painter(image, rng)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, extension: str) -> bytes:
    ok, data = cv2.imencode(extension.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"OpenCV cannot encode {extension}")
    return data.tobytes()


@dataclass(frozen=True)
class SampleSet:
    root: Path
    images: int
    defective: int
    other_files: int
    unlabelled: int


def generate(root: Path, per_class: int = 40, seed: int = 0, defects: bool = True) -> SampleSet:
    """Write `per_class` images for each class under root/<class>/, plus (with defects) broken files."""
    rng = np.random.default_rng(seed)
    for name, painter in CLASSES.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            extension = EXTENSIONS[index % len(EXTENSIONS)]
            picture = draw(painter, SIZES[index % len(SIZES)], rng)
            (folder / f"{index:04d}{extension}").write_bytes(encode(picture, extension))
    if not defects:
        return SampleSet(root, per_class * len(CLASSES), 0, 0, 0)
    apple = root / "Apple Crimson Snow"
    good_jpeg = encode(draw(_apple, (100, 100), rng), ".jpg")
    (apple / "empty.jpg").write_bytes(b"")
    (apple / "cut-short.jpg").write_bytes(good_jpeg[: len(good_jpeg) * 2 // 3])
    (root / "Banana" / "notes.jpg").write_text("this is a text file with an image's name\n")
    (root / "Banana" / "scan.png").write_bytes(encode(draw(_banana, (100, 100), rng), ".png")[:300])
    (root / "README.txt").write_text("Sample images generated by `featurizer sample`.\n")
    (root / "loose photo.jpg").write_bytes(encode(draw(_kiwi, (100, 100), rng), ".jpg"))
    return SampleSet(root, per_class * len(CLASSES) + 5, defective=4, other_files=1, unlabelled=1)
