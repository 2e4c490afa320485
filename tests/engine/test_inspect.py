"""engine.inspect on images whose statistics are known by construction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.inspect import histogram_picture, inspect_image
from tests.engine.conftest import Image


def test_a_constant_image_has_no_spread_and_no_sharpness() -> None:
    image = np.full((30, 40, 3), 77, np.uint8)

    result = inspect_image(image, bins=4)

    assert (result.width, result.height, result.channels) == (40, 30, 3)
    assert (result.brightness, result.contrast, result.sharpness) == (77.0, 0.0, 0.0)
    for channel in result.channels_stats:
        assert (channel.mean, channel.std, channel.min, channel.max) == (77.0, 0.0, 77, 77)
        assert channel.histogram == [0, 1200, 0, 0]  # 77 falls in 64–127


def test_channels_are_named_in_opencv_s_bgr_order() -> None:
    image = np.empty((10, 10, 3), np.uint8)
    image[:, :] = (10, 20, 30)  # blue, green, red

    result = inspect_image(image)

    assert [(c.name, c.mean) for c in result.channels_stats] == [
        ("blue", 10.0), ("green", 20.0), ("red", 30.0)]
    # OpenCV's grey: 0.114 B + 0.587 G + 0.299 R = 21.85, stored as an 8-bit 22
    assert result.brightness == 22.0


def test_a_grey_image_has_one_channel() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # every grey level, 4 times

    result = inspect_image(ramp, bins=2)

    assert (result.width, result.height, result.channels) == (256, 4, 1)
    [grey] = result.channels_stats
    assert (grey.name, grey.min, grey.max, grey.histogram) == ("gray", 0, 255, [512, 512])
    assert grey.mean == pytest.approx(127.5) and result.brightness == pytest.approx(127.5)
    assert grey.std == pytest.approx(np.arange(256).std())


def test_alpha_is_a_fourth_channel_left_out_of_the_grey_statistics() -> None:
    image = np.empty((8, 8, 4), np.uint8)
    image[:, :] = (50, 50, 50, 0)
    image[:4, :, 3] = 255

    result = inspect_image(image, bins=256)

    assert [c.name for c in result.channels_stats] == ["blue", "green", "red", "alpha"]
    alpha = result.channels_stats[3]
    assert (alpha.mean, alpha.min, alpha.max) == (127.5, 0, 255)
    assert alpha.histogram[0] == alpha.histogram[255] == 32 and sum(alpha.histogram) == 64
    assert (result.brightness, result.contrast, result.sharpness) == (50.0, 0.0, 0.0)


@pytest.mark.parametrize("bins", [2, 16, 256])
def test_each_histogram_has_the_bins_asked_for_and_counts_every_pixel(
    coffee: Image, bins: int
) -> None:
    result = inspect_image(coffee, bins=bins)
    for channel in result.channels_stats:
        assert len(channel.histogram) == bins
        assert sum(channel.histogram) == coffee.shape[0] * coffee.shape[1]


def test_blur_lowers_the_sharpness(astronaut: Image) -> None:
    def blur(sigma: float) -> Image:
        return np.asarray(cv2.GaussianBlur(astronaut, (0, 0), sigma), dtype=np.uint8)

    sharp = inspect_image(astronaut).sharpness
    softer = inspect_image(blur(1.0)).sharpness
    blurred = inspect_image(blur(4.0)).sharpness
    assert sharp > softer > blurred > 0
    assert blurred < sharp / 20


def test_a_checkerboard_s_sharpness_is_its_laplacian_variance() -> None:
    """1-pixel squares of 0 and 255: the Laplacian is ±1020 inside, so its variance is
    known away from the border (the border is reflected, which keeps the pattern)."""
    board = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    result = inspect_image(board)
    assert result.sharpness == pytest.approx(1020.0**2)
    assert result.contrast == pytest.approx(127.5)


def test_the_summary_is_json_ready_and_rounded() -> None:
    image = np.zeros((3, 3), np.uint8)
    image[1, 1] = 100
    summary = inspect_image(image, bins=2).summary()
    assert summary == {
        "width": 3, "height": 3, "channels": 1,
        "brightness": round(100 / 9, 3), "contrast": round(float(np.std(image)), 3),
        "sharpness": summary["sharpness"],
        "channel_stats": [{"name": "gray", "mean": round(100 / 9, 3),
                           "std": round(float(np.std(image)), 3), "min": 0, "max": 100,
                           "histogram": [9, 0]}],
    }
    assert summary["sharpness"] > 0 and isinstance(summary["sharpness"], float)


def test_the_histogram_picture_is_a_bgr_canvas(coffee: Image) -> None:
    picture = histogram_picture(inspect_image(coffee), width=300, height=120)
    assert picture.shape == (120, 300, 3) and picture.dtype == np.uint8
    assert (picture != 255).any()  # lines were drawn


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 4), np.float32), "inspect needs a non-empty 8-bit image"),
        (np.zeros((0, 4), np.uint8), "inspect needs a non-empty 8-bit image"),
        (np.zeros((4,), np.uint8), "inspect needs a non-empty 8-bit image"),
        (np.zeros((4, 4, 2), np.uint8), "inspect takes 1, 3 or 4 channels, got 2"),
        (np.zeros((4, 4, 5), np.uint8), "inspect takes 1, 3 or 4 channels, got 5"),
    ],
    ids=["float", "empty", "1-d", "two-channels", "five-channels"],
)
def test_unusable_images_are_input_errors(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputError) as refused:
        inspect_image(image)
    assert str(refused.value) == message


@pytest.mark.parametrize("bins", [1, 257, 0])
def test_bins_out_of_range_are_input_errors(bins: int) -> None:
    with pytest.raises(InputError) as refused:
        inspect_image(np.zeros((4, 4), np.uint8), bins=bins)
    assert str(refused.value) == f"bins must be 2–256, got {bins}"
