"""Image files the tests write: every kind a real drop contains, good and bad."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from featurizer.samples import CLASSES, draw, encode


def rgb(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), colour, dtype=np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of an array in OpenCV's channel order (grey, grey+alpha, BGR, BGRA; 8 or 16 bit)."""
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def pil_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def exif_rotated_jpeg(picture: np.ndarray, orientation: int = 6) -> bytes:
    """A JPEG whose pixels are stored sideways, with the EXIF orientation that says how to turn them."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def odd_files() -> dict[str, bytes]:
    """Readable images of every awkward kind, keyed by file name."""
    rng = np.random.default_rng(7)
    apple = draw(CLASSES["Apple Crimson Snow"], (100, 100), rng)
    grey = cv2.cvtColor(apple, cv2.COLOR_RGB2GRAY)
    bgra = np.dstack([cv2.cvtColor(apple, cv2.COLOR_RGB2BGR), np.full(apple.shape[:2], 200, np.uint8)])
    return {
        "grey.png": png_bytes(grey),
        "grey-alpha.png": pil_png(Image.fromarray(np.dstack([grey, np.full_like(grey, 180)]), "LA")),
        "alpha.png": png_bytes(bgra),
        "sixteen-bit.png": png_bytes(cv2.cvtColor(apple, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257),
        "rotated.jpg": exif_rotated_jpeg(apple),
        "odd-size.JPEG": encode(cv2.resize(apple, (333, 77)), ".jpg"),
        "tiny.jpg": encode(cv2.resize(apple, (7, 5)), ".jpg"),
        "grey.jpg": cv2.imencode(".jpg", grey)[1].tobytes(),
    }


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Unusable files named like images, with the start of the reason the job must give."""
    jpeg = encode(draw(CLASSES["Banana"], (100, 100), np.random.default_rng(3)), ".jpg")
    png = encode(draw(CLASSES["Banana"], (100, 100), np.random.default_rng(4)), ".png")
    return {
        "zero.jpg": (b"", "empty file"),
        "truncated.jpg": (jpeg[: len(jpeg) * 3 // 4], "truncated JPEG"),
        "header-only.jpg": (jpeg[:20], "truncated JPEG"),
        "truncated.png": (png[: len(png) // 2], "corrupt or truncated PNG"),
        "text.jpg": (b"hello, I am not a picture\n", "not a JPEG or PNG"),
        "garbage.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "corrupt or truncated PNG"),
    }


def png_bomb(width: int, height: int) -> bytes:
    """A valid black PNG of width x height at one bit a pixel: 20000 x 20000 is under 50 kB of file and
    400 MB once decoded (a decompression bomb). Written row by row, so making it allocates no image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4) + kind + body + zlib.crc32(kind + body).to_bytes(4)

    row = bytes(1 + (width + 7) // 8)  # filter type 0, then the row's bits
    deflate = zlib.compressobj(9)
    pixels = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = width.to_bytes(4) + height.to_bytes(4) + bytes([1, 0, 0, 0, 0])  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
