"""Decode image bytes with OpenCV into the tensor MobileNetV2 expects: RGB, 224x224, scaled to [-1, 1].

OpenCV decodes to BGR unless told otherwise; the model was trained on RGB. JPEGs are decoded straight to
RGB, PNGs converted here, once: that is what keeps colours right.
An image is decoded and resized alone (`preprocess`, 8-bit); a batch of them is scaled at once
(`to_model_input`): one float copy of the stacked bytes, not one per image plus a stack of floats four
times the size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Bad files are expected input here: their reason goes to rejected.csv, not OpenCV's warnings to the log.
# OpenCV reads this when it first logs, so it must be set before any decoding.
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")

import cv2
import numpy as np

from featurizer.options import MAX_IMAGE_PIXELS

IMAGE_SIZE = 224
# Features of one image are comparable only across runs that prepared its pixels alike: raise this with any
# change to what reaches the model (decoding, colour, resizing, scaling), and the feature store featurizes
# every image again. tests/unit/test_decode.py pins the pixels this version gives.
PREPROCESSING_VERSION = 1
TOO_MANY_PIXELS = "image too large"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"
# Start-of-frame markers (baseline, progressive, ...), the segment that holds the image's size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
# libjpeg decodes at 1/2, 1/4 or 1/8 scale in its inverse DCT, for a fraction of the full decode's work,
# and straight to RGB (no BGR image to convert after). OpenCV's reduced-scale flags carry a BGR bit,
# which IMREAD_COLOR_RGB cannot be combined with: the scale bits alone are its GRAYSCALE flags.
# Keyed by the scale-down, largest first.
_RGB_READS = {
    8: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_2,
    1: cv2.IMREAD_COLOR_RGB,
}
_WHITE = 255.0


class DecodeError(ValueError):
    """The bytes are not an image this job can use; the message is the reason recorded in rejected.csv."""


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray | None  # (224, 224, 3) 8-bit RGB
    reason: str | None


def decode_rgb(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode JPEG or PNG bytes to an 8-bit RGB array (H, W, 3), applying EXIF orientation; an image whose
    header gives more than `max_pixels` is refused before OpenCV allocates anything for it."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if data.startswith(JPEG_MAGIC):
        # A JPEG cut short still decodes, with its missing rows painted grey: refuse it instead. Its end
        # marker is looked for from the end, and its scan found by the header walk: not by a search of
        # megabytes of image data.
        end = data.rfind(_JPEG_EOI)
        size, scan = _jpeg_header(data)
        if end == -1 or scan is None or end < scan:
            raise DecodeError("truncated JPEG (no end-of-image marker after the image data)")
        if size is None:  # libjpeg cannot decode it either
            raise DecodeError("corrupt JPEG (no frame header with the image's size before its data)")
        _check_pixels(size, max_pixels)
        image = cv2.imdecode(buffer, _RGB_READS[_reduction(size)])  # applies EXIF orientation
        if image is None:
            raise DecodeError("corrupt JPEG (OpenCV could not decode it)")
        return image
    if data.startswith(PNG_MAGIC):
        size = png_size(data)
        if size is None:
            raise DecodeError("corrupt or truncated PNG (its first chunk is not the IHDR header)")
        _check_pixels(size, max_pixels)
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DecodeError("corrupt or truncated PNG (OpenCV could not decode it)")
        return _png_to_rgb(image)
    raise DecodeError("not a JPEG or PNG image (unrecognised file header)")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """The pixel cap, on the size the header states. OpenCV's own (OPENCV_IO_MAX_IMAGE_PIXELS) is read
    once per process, when cv2 loads, so it cannot follow a run's option in reused Python workers, and its
    refusal reads as a corrupt file; like Pillow's MAX_IMAGE_PIXELS, the header is checked here instead."""
    height, width = size
    if height * width > max_pixels:
        raise DecodeError(
            f"{TOO_MANY_PIXELS}: {width}x{height} pixels, over the limit of {max_pixels} "
            "(--max-image-pixels; raise it to decode this image)"
        )


def png_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the PNG's IHDR chunk, which must come first, or None if it does not."""
    if data[12:16] != b"IHDR" or len(data) < 24:
        return None
    return int.from_bytes(data[20:24]), int.from_bytes(data[16:20])


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the JPEG's start-of-frame segment, or None if there is none before the scan."""
    return _jpeg_header(data)[0]


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """The size its start-of-frame segment gives (None if there is none before the scan) and where its
    first scan starts (None if no scan follows the header).

    Bytes between segments are skipped as libjpeg skips them ("extraneous bytes before marker"), so a
    header padded to hide its size from this walk hides it from libjpeg too.
    """
    size = None
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            index = data.find(b"\xff", index)
            if index == -1:
                break
            continue
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in _JPEG_STANDALONE or marker == 0x00:  # 0x00: a stuffed 0xFF, not a marker
            index += 2
            continue
        if marker == _JPEG_SOS[1]:
            return size, index
        if marker in _JPEG_SOF and size is None and index + 9 <= len(data):
            size = int.from_bytes(data[index + 5 : index + 7]), int.from_bytes(data[index + 7 : index + 9])
        index += 2 + int.from_bytes(data[index + 2 : index + 4])
    return size, None


def jpeg_reduction(data: bytes) -> int:
    """The largest scale-down libjpeg can decode at (8, 4, 2, else 1) that keeps both sides >= 224 px.

    Every image is shrunk to 224x224 anyway; a 4000x3000 photo decoded at 1/8 scale (500x375) loses
    nothing the model sees and skips most of the decoding work.
    """
    size = jpeg_size(data)
    return 1 if size is None else _reduction(size)


def _reduction(size: tuple[int, int]) -> int:
    return next((n for n in _RGB_READS if min(size) // n >= IMAGE_SIZE), 1)


def _png_to_rgb(image: np.ndarray) -> np.ndarray:
    """Grey, grey+alpha, BGR or BGRA, 8 or 16 bit -> 8-bit RGB; transparency is composited on white."""
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=1 / 257)  # rounds to 8 bits with no float copy
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 2:  # grey + alpha
        grey, alpha = image[:, :, 0], image[:, :, 1]
        image, channels = np.dstack([grey, grey, grey, alpha]), 4
    if channels == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        blended = image[:, :, :3].astype(np.float32) * alpha + _WHITE * (1.0 - alpha)
        return cv2.cvtColor(blended.round().astype(np.uint8), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize(rgb: np.ndarray) -> np.ndarray:
    """Any size of 8-bit RGB -> 224x224 8-bit RGB (area averaging to shrink, bilinear to enlarge)."""
    height, width = rgb.shape[:2]
    shrinking = height > IMAGE_SIZE or width > IMAGE_SIZE
    return cv2.resize(
        rgb, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )


def to_model_input(images: np.ndarray) -> np.ndarray:
    """(n, 224, 224, 3) 8-bit RGB -> float32 in [-1, 1], as `keras.applications.mobilenet_v2.
    preprocess_input` scales."""
    pixels = np.multiply(images, np.float32(1 / 127.5), dtype=np.float32)  # one float array per batch
    pixels -= 1.0  # in place
    return pixels


def preprocess(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Decoded:
    """Bytes -> 224x224 RGB, or the reason they cannot be. Never raises for bad image data."""
    try:
        return Decoded(resize(decode_rgb(data, max_pixels)), None)
    except DecodeError as error:
        return Decoded(None, str(error))
    except cv2.error as error:
        return Decoded(None, f"OpenCV could not process the image: {error}")
