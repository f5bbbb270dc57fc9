import hashlib
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from featurizer.decode import (
    IMAGE_SIZE,
    PREPROCESSING_VERSION,
    DecodeError,
    decode_rgb,
    jpeg_reduction,
    jpeg_size,
    preprocess,
    resize,
    to_model_input,
)
from featurizer.samples import CLASSES, draw, encode
from tests.images import bad_files, exif_rotated_jpeg, odd_files, png_bomb, png_bytes, rgb


@pytest.mark.parametrize("name", sorted(odd_files()))
def test_every_readable_kind_becomes_a_224_rgb_tensor_in_minus_one_to_one(name: str) -> None:
    decoded = preprocess(odd_files()[name])
    assert decoded.reason is None

    tensor = to_model_input(decoded.pixels[None])

    assert decoded.pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert decoded.pixels.dtype == np.uint8
    assert tensor.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert tensor.dtype == np.float32
    assert -1.0 <= tensor.min() < tensor.max() <= 1.0


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_unusable_files_are_reported_with_a_reason_not_raised(name: str) -> None:
    data, reason = bad_files()[name]

    decoded = preprocess(data)

    assert decoded.pixels is None
    assert decoded.reason.startswith(reason)


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_channels_come_out_in_rgb_order_not_opencv_bgr(extension: str) -> None:
    red = rgb((230, 10, 20), (40, 30))

    pixels = to_model_input(preprocess(encode(red, extension)).pixels[None])

    red_channel, green_channel, blue_channel = (pixels[..., i].mean() for i in range(3))
    assert red_channel > 0.7 and green_channel < -0.7 and blue_channel < -0.7


def test_cmyk_jpegs_come_out_in_rgb() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 230, 220, 0)).save(buffer, "JPEG", quality=95)  # red in print inks

    red, green, blue = decode_rgb(buffer.getvalue())[5, 5]

    assert red > 240 and green < 40 and blue < 50


def test_exif_orientation_is_applied() -> None:
    stored = np.zeros((30, 60, 3), np.uint8)  # stored landscape: left half red, right half blue
    stored[:, :30] = (255, 0, 0)
    stored[:, 30:] = (0, 0, 255)

    shown = decode_rgb(exif_rotated_jpeg(stored, orientation=6))  # 6: turn 90 degrees clockwise to show

    assert shown.shape[:2] == (60, 30)
    assert shown[2, 15, 0] > 200 and shown[-3, 15, 2] > 200  # the left (red) half is now on top


def test_transparent_pixels_are_composited_on_white() -> None:
    transparent = np.zeros((10, 10, 4), np.uint8)  # black, fully transparent

    assert decode_rgb(png_bytes(transparent)).min() == 255


def test_sixteen_bit_png_keeps_its_brightness() -> None:
    grey16 = np.full((8, 8), 32896, np.uint16)  # 128 * 257

    assert decode_rgb(png_bytes(grey16))[0, 0].tolist() == [128, 128, 128]


def test_mobilenet_scaling_maps_black_and_white_to_the_ends() -> None:
    black_and_white = rgb((0, 0, 0), (20, 20))
    black_and_white[:, 10:] = 255

    pixels = to_model_input(preprocess(encode(black_and_white, ".png")).pixels[None])

    assert pixels.min() == -1.0 and pixels.max() == 1.0


def _photo(height: int, width: int) -> np.ndarray:
    """A textured picture: smooth bands plus grain, so decoding at a reduced scale has detail to lose."""
    rng = np.random.default_rng(7)
    bands = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * np.array([1.0, 0.5, 0.2])
    picture = np.broadcast_to(bands, (height, width, 3)) + rng.normal(0, 20, (height, width, 3))
    return np.clip(picture, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("height", "width", "reduction"),
    [
        (2000, 2400, 8),  # 250 x 300 at 1/8
        (1200, 1600, 4),  # 300 x 400 at 1/4
        (480, 640, 2),
        (300, 4000, 1),  # 300 px high: any reduction goes under 224
        (100, 100, 1),
    ],
)
def test_large_jpegs_are_decoded_at_the_smallest_scale_still_over_224(
    height: int, width: int, reduction: int
) -> None:
    data = encode(_photo(height, width), ".jpg")

    assert jpeg_size(data) == (height, width)
    assert jpeg_reduction(data) == reduction
    assert decode_rgb(data).shape == (height // reduction, width // reduction, 3)


def test_reduced_decoding_gives_the_model_nearly_the_full_decodes_input() -> None:
    data = encode(_photo(1200, 1600), ".jpg")
    full = to_model_input(
        resize(cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    )

    reduced = to_model_input(preprocess(data).pixels)

    assert np.abs(reduced - full).mean() < 0.02  # < 1.3 grey levels of 255 on average


def test_progressive_jpegs_and_exif_orientation_survive_reduced_decoding() -> None:
    stored = np.zeros((600, 1200, 3), np.uint8)  # stored landscape: left half red, right half blue
    stored[:, :600] = (255, 0, 0)
    stored[:, 600:] = (0, 0, 255)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(buffer, "JPEG", exif=exif.tobytes(), progressive=True, quality=90)
    data = buffer.getvalue()

    shown = decode_rgb(data)

    assert jpeg_reduction(data) == 2
    assert shown.shape[:2] == (600, 300)
    assert shown[10, 150, 0] > 200 and shown[-10, 150, 2] > 200  # turned: red on top, blue below


def test_a_cut_jpeg_is_refused_though_an_embedded_preview_or_an_earlier_scan_is_whole() -> None:
    """The end marker must follow the image's own first scan: a preview's end marker (phones embed one
    in an APP segment) or a progressive JPEG's scans before the cut do not make it whole."""
    buffer = io.BytesIO()
    Image.fromarray(_photo(120, 160)).save(buffer, "JPEG", quality=90)
    preview = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(_photo(960, 1280)).save(buffer, "JPEG", progressive=True, quality=90)
    photo = buffer.getvalue()
    with_preview = photo[:2] + b"\xff\xe2" + (len(preview) + 2).to_bytes(2) + preview + photo[2:]

    assert decode_rgb(with_preview).shape == (240, 320, 3)  # the photo at 1/4 scale, not its preview
    appended = photo + b"\xff\xd9 a video after the photo \xff\xda"  # as phones' motion photos carry
    assert decode_rgb(appended).shape == (240, 320, 3)
    scan = with_preview.index(b"\xff\xda", len(preview))
    for cut in (
        with_preview[: len(with_preview) * 3 // 4],
        photo[: len(photo) * 3 // 4],
        with_preview[: scan + 3],
    ):
        with pytest.raises(DecodeError, match="truncated JPEG"):
            decode_rgb(cut)


def test_a_jpeg_header_that_cannot_be_walked_falls_back_to_a_full_decode() -> None:
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00") is None
    assert jpeg_reduction(b"\xff\xd8\x00\x00" + bytes(20)) == 1


def test_a_png_decompression_bomb_is_rejected_from_its_header_without_being_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 million pixels in under 50 kB
    assert len(bomb) < 50_000

    def no_decoding(*args: object) -> None:
        raise AssertionError("imdecode would allocate the whole image")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    decoded = preprocess(bomb)

    assert decoded.pixels is None
    assert decoded.reason == (
        "image too large: 20000x20000 pixels, over the limit of 50000000 "
        "(--max-image-pixels; raise it to decode this image)"
    )


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_the_pixel_cap_is_inclusive_and_read_from_png_and_jpeg_headers(extension: str) -> None:
    data = encode(rgb((200, 30, 30), (64, 48)), extension)

    assert preprocess(data, max_pixels=64 * 48).reason is None
    assert preprocess(data, max_pixels=64 * 48 - 1).reason.startswith("image too large: 64x48 pixels")


def test_a_bomb_under_the_cap_is_an_ordinary_image() -> None:
    decoded = preprocess(png_bomb(3000, 2000))

    assert decoded.reason is None and decoded.pixels.max() == 0  # black, as written


def test_bytes_hiding_a_jpegs_size_from_the_header_walk_hide_it_from_libjpeg_too() -> None:
    data = encode(rgb((30, 200, 30), (640, 480)), ".jpg")
    after_app0 = 4 + int.from_bytes(data[4:6])
    padded = (
        data[:after_app0] + b"\x00junk\xff\x00" + data[after_app0:]
    )  # libjpeg skips bytes before a marker

    assert jpeg_size(padded) == (480, 640) and decode_rgb(padded).shape == (240, 320, 3)
    assert preprocess(padded, max_pixels=640 * 480 - 1).reason.startswith("image too large: 640x480")
    frameless = data[:2] + data[data.index(b"\xff\xda") :]  # a scan with no frame header before it
    assert preprocess(frameless).reason == (
        "corrupt JPEG (no frame header with the image's size before its data)"
    )


# The pixels PREPROCESSING_VERSION gives for a fixed set of generated images (JPEG and PNG, decoded at full
# and at reduced scale). The feature store reuses features across runs of one version: if this digest
# changes, so do the features, and PREPROCESSING_VERSION must be raised with it (docs/feature-store.md).
PIXELS_OF_VERSION = {1: "f4a17a4cc5eb91a058c07b98fd99a25ac5973147958f3833580bbed1c9954b6b"}


def test_the_preprocessing_version_names_the_pixels_it_gives() -> None:
    rng = np.random.default_rng(7)
    digest = hashlib.sha256()
    for painter in CLASSES.values():
        for size, extension in (((100, 100), ".jpg"), ((140, 90), ".png"), ((640, 480), ".jpg")):
            pixels = preprocess(encode(draw(painter, size, rng), extension)).pixels
            assert pixels is not None
            digest.update(pixels.tobytes())
    assert digest.hexdigest() == PIXELS_OF_VERSION.get(PREPROCESSING_VERSION), (
        "preprocessing gives other pixels: raise PREPROCESSING_VERSION (spark/featurizer/decode.py) and "
        "record the new digest here"
    )
