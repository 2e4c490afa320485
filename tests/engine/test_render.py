"""Result pictures: boxes drawn where the matches are, heat map peak at the match centre."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.render import draw_matches, heatmap_image
from aerovision.engine.template import Match, match_template

from .conftest import PASTE_POSITIONS

Image = npt.NDArray[np.uint8]


def _pack(bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    c = bgr.astype(np.int64)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def _turbo_levels(heat: Image) -> npt.NDArray[np.int64]:
    """Invert COLORMAP_TURBO (its 256 colours are distinct): the 0-255 level of each pixel."""
    colours = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)
    lut = _pack(np.asarray(colours[:, 0], dtype=np.uint8))
    order = np.argsort(lut)
    keys = _pack(heat)
    pos = np.searchsorted(lut[order], keys)
    assert (lut[order][pos] == keys).all(), "not a TURBO colour"
    return order[pos]


@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_draw_matches_shapes_and_input_untouched(coffee: Image, channels: int) -> None:
    grey = cv2.cvtColor(coffee, cv2.COLOR_BGR2GRAY)
    image = {
        0: grey,
        1: grey[:, :, None],
        3: coffee,
        4: np.dstack([coffee, np.full(grey.shape, 255, np.uint8)]),
    }[channels]
    before = image.copy()
    out = draw_matches(image, [Match(100, 120, 48, 48, 0.93), Match(0, 0, 30, 30, 0.81)])
    assert out.shape == (400, 600, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)
    assert not np.array_equal(
        out, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if channels in (0, 1) else coffee
    )


def test_draw_matches_draws_the_box_edges(coffee: Image) -> None:
    blank = np.zeros_like(coffee)
    out = draw_matches(blank, [Match(200, 150, 60, 40, 0.9)], color=(0, 0, 255))
    red = (out[:, :, 2] > 200) & (out[:, :, 1] < 60) & (out[:, :, 0] < 60)
    assert red[150:190, 200].any() and red[150:190, 259].any()  # left and right edges
    assert red[189, 200:260].any()  # bottom edge
    assert not red[165:175, 215:245].any()  # the inside of the box stays clear
    assert (out[130:150, 200:260] > 200).all(axis=2).any()  # white label text above the box


def test_draw_matches_without_matches_is_a_copy(coffee: Image) -> None:
    out = draw_matches(coffee, [])
    np.testing.assert_array_equal(out, coffee)
    assert out is not coffee


def test_draw_matches_scales_line_width(coffee: Image) -> None:
    def width(image: Image) -> int:
        out = draw_matches(image, [Match(50, 50, 100, 100, 0.9)], color=(0, 0, 255))
        red = (out[:, :, 2] > 200) & (out[:, :, 1] < 60)
        return int(red[100, 40:110].sum())

    small = np.zeros((300, 400, 3), np.uint8)
    large = np.zeros((2000, 3000, 3), np.uint8)
    assert width(large) > width(small) >= 1


def test_draw_matches_bad_input() -> None:
    with pytest.raises(InputError, match="uint8"):
        draw_matches(np.zeros((10, 10), np.float32), [])
    with pytest.raises(InputError, match="color"):
        draw_matches(np.zeros((10, 10), np.uint8), [], color=(0, 300, 0))


def test_heatmap_shape_and_border(coffee: Image, patch: Image) -> None:
    result = match_template(coffee, patch)
    heat = heatmap_image(result.score_map, coffee.shape, patch.shape)
    assert heat.shape == (400, 600, 3) and heat.dtype == np.uint8
    zero = cv2.applyColorMap(np.zeros((1, 1), np.uint8), cv2.COLORMAP_TURBO)[0, 0]
    assert (heat[:24] == zero).all() and (heat[:, :24] == zero).all()  # no window centred there
    assert (heat[-23:] == zero).all() and (heat[:, -23:] == zero).all()  # 48 - 1 - 24


def test_heatmap_peak_is_at_the_match_centre(
    coffee: Image, patch: Image, paste: Callable[..., Image]
) -> None:
    x, y = PASTE_POSITIONS[2]
    scene = paste(coffee, patch, [(x, y)])
    result = match_template(scene, patch)
    assert (result.matches[0].x, result.matches[0].y) == (x, y)
    levels = _turbo_levels(heatmap_image(result.score_map, scene.shape, patch.shape))
    peak = np.unravel_index(int(levels.argmax()), levels.shape)
    assert (int(peak[1]), int(peak[0])) == (x + 48 // 2, y + 48 // 2)
    assert levels.max() == 255


def test_heatmap_odd_template_alignment() -> None:
    score = np.zeros((6, 8), np.float32)
    score[2, 3] = 1.0
    levels = _turbo_levels(heatmap_image(score, (10, 14), (5, 7)))
    assert levels[2 + 5 // 2, 3 + 7 // 2] == 255 and (levels == 255).sum() == 1


def test_heatmap_shape_mismatch() -> None:
    with pytest.raises(InputError, match="score_map is"):
        heatmap_image(np.zeros((5, 5), np.float32), (10, 10), (5, 5))
