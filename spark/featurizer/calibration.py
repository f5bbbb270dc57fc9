"""The images an INT8 build calibrates on and the ones its quality gate validates on: never the same.

By default both come from the photos scikit-image ships (no download): the calibration set from its grey
and texture photos and a few colour ones, the validation set from other colour photos, each photo seen as
random crops, flips and exposures so that a photo is a class of views. A user's own images (folders, one
per class for validation, as a run's input) replace either set and make the gate's figures theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurizer.catalog import IMAGE_EXTENSIONS
from featurizer.decode import preprocess, resize, to_model_input

CALIBRATION_PHOTOS = (
    "astronaut", "coffee", "colorwheel", "logo",
    "brick", "camera", "clock", "coins", "grass", "gravel", "moon", "page", "text",
)  # fmt: skip
VALIDATION_PHOTOS = ("chelsea", "hubble_deep_field", "immunohistochemistry", "retina", "rocket", "motorcycle")
CALIBRATION_VIEWS = 20  # per photo: 260 images
VALIDATION_VIEWS = 32  # per photo: 192 images, 6 classes
MAX_PER_FOLDER = 256  # images read from a user's folder (each class folder, for validation)
MIN_PER_CLASS = 10  # a validation class folder's images: enough that its split has train and test images
SEED = 0
CROPS = (0.35, 1.0)  # a view's share of each side of its photo


class CalibrationUnavailable(ValueError):
    """A calibration or validation set cannot be had; the message says why and what to pass instead."""


@dataclass(frozen=True)
class ImageSet:
    """Model inputs ((n, 224, 224, 3) float32), their class names, and where they came from."""

    images: np.ndarray
    labels: tuple[str, ...]
    source: str


def _photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos as 8-bit RGB."""
    try:
        from skimage import data
    except ImportError as error:
        raise CalibrationUnavailable(
            "the default calibration and validation photos come from scikit-image, which this environment "
            "lacks: install the 'quantize' extra, or pass --calibration and --validation folders"
        ) from error
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _views(
    image: np.ndarray, count: int, rng: np.random.Generator, crops: tuple[float, float]
) -> list[np.ndarray]:
    """Random crops (a share of each side within `crops`, aspect within 0.8-1.25), mirror flips and
    exposures of an image, resized as the job resizes."""
    height, width = image.shape[:2]
    views = []
    for _ in range(count):
        scale = rng.uniform(*crops)
        rows = min(height, max(32, int(height * scale)))
        cols = min(width, max(32, int(width * scale * rng.uniform(0.8, 1.25))))
        top, left = rng.integers(0, height - rows + 1), rng.integers(0, width - cols + 1)
        view = image[top : top + rows, left : left + cols]
        if rng.random() < 0.5:
            view = view[:, ::-1]
        exposed = view.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        views.append(resize(np.ascontiguousarray(np.clip(exposed, 0, 255).astype(np.uint8))))
    return views


def photo_views(
    photos: Sequence[str], per_photo: int, salt: int, crops: tuple[float, float] = CROPS
) -> ImageSet:
    """`per_photo` views of each named photo, labelled by the photo; the same for the same arguments."""
    rng = np.random.default_rng([SEED, salt])
    images, labels = [], []
    for name in photos:
        images += _views(_photo(name), per_photo, rng, crops)
        labels += [name] * per_photo
    source = (
        f"scikit-image photos {', '.join(photos)}: {per_photo} views each, crops of "
        f"{crops[0]:.0%}-{crops[1]:.0%} of a side (seed {SEED}, salt {salt})"
    )
    return ImageSet(to_model_input(np.stack(images)), tuple(labels), source)


def default_calibration() -> ImageSet:
    return photo_views(CALIBRATION_PHOTOS, CALIBRATION_VIEWS, salt=1)


def default_validation() -> ImageSet:
    return photo_views(VALIDATION_PHOTOS, VALIDATION_VIEWS, salt=2)


def check_apart(calibration: Path | None, validation: Path | None) -> None:
    """Refuses folders that share images (one is the other, or inside it): the gate must measure images
    the model was not calibrated on."""
    if calibration is None or validation is None:
        return
    one, other = calibration.resolve(), validation.resolve()
    if one == other or one in other.parents or other in one.parents:
        raise CalibrationUnavailable(
            f"calibration {calibration} and validation {validation} overlap: the quality gate measures "
            "images the model was not calibrated on, so give two folders, neither inside the other"
        )


def folder_images(folder: Path, labelled: bool) -> ImageSet:
    """Up to MAX_PER_FOLDER images of `folder` (of each class sub-folder when `labelled`), in name order;
    files that do not decode are skipped, as a run rejects them."""
    if not folder.is_dir():
        raise CalibrationUnavailable(f"{folder} is not a folder of images")
    groups = sorted(p for p in folder.iterdir() if p.is_dir()) if labelled else [folder]
    images, labels = [], []
    for group in groups:
        pictures = _decoded(sorted(group.rglob("*")))
        if labelled and len(pictures) < MIN_PER_CLASS:
            raise CalibrationUnavailable(
                f"{group} holds {len(pictures)} images that decode: each validation class folder needs at "
                f"least {MIN_PER_CLASS}, so the gate's classifier has images to train and test on"
            )
        images += pictures
        labels += [group.name] * len(pictures)
    if labelled and len({*labels}) < 2:
        raise CalibrationUnavailable(
            f"{folder} holds images of {len({*labels})} class folder(s): validation needs at least 2, one "
            "sub-folder per class as in a run's input"
        )
    if not images:
        raise CalibrationUnavailable(f"{folder} holds no image that decodes")
    kind = "class folders" if labelled else "images"
    return ImageSet(to_model_input(np.stack(images)), tuple(labels), f"{folder} ({len(images)} {kind})")


def _decoded(paths: list[Path]) -> list[np.ndarray]:
    decoded = []
    for path in paths:
        if len(decoded) == MAX_PER_FOLDER:
            break
        if path.is_file() and path.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS:
            image = preprocess(path.read_bytes()).pixels
            if image is not None:
                decoded.append(image)
    return decoded
