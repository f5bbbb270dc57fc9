import numpy as np
import pytest

from featurizer.decode import IMAGE_SIZE, decode_rgb, preprocess
from featurizer.samples import encode
from tests.images import bad_files, exif_rotated_jpeg, odd_files, png_bytes, rgb


@pytest.mark.parametrize("name", sorted(odd_files()))
def test_every_readable_kind_becomes_a_224_rgb_tensor_in_minus_one_to_one(name: str) -> None:
    decoded = preprocess(odd_files()[name])

    assert decoded.reason is None
    assert decoded.pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert decoded.pixels.dtype == np.float32
    assert -1.0 <= decoded.pixels.min() < decoded.pixels.max() <= 1.0


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_unusable_files_are_reported_with_a_reason_not_raised(name: str) -> None:
    data, reason = bad_files()[name]

    decoded = preprocess(data)

    assert decoded.pixels is None
    assert decoded.reason.startswith(reason)


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_channels_come_out_in_rgb_order_not_opencv_bgr(extension: str) -> None:
    red = rgb((230, 10, 20), (40, 30))

    pixels = preprocess(encode(red, extension)).pixels

    red_channel, green_channel, blue_channel = (pixels[..., i].mean() for i in range(3))
    assert red_channel > 0.7 and green_channel < -0.7 and blue_channel < -0.7


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

    pixels = preprocess(encode(black_and_white, ".png")).pixels

    assert pixels.min() == -1.0 and pixels.max() == 1.0
