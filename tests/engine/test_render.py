"""Result pictures: boxes drawn where the matches are, heat map peak at the match centre."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.feature import match_features
from aerovision.engine.render import draw_feature_matches, draw_matches, heatmap_image
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


# --- draw_feature_matches ------------------------------------------------------------------


def _yellow(picture: Image) -> npt.NDArray[np.bool_]:
    """Pixels of the outline colour (yellow), allowing for anti-aliasing."""
    b, g, r = (picture[:, :, i].astype(int) for i in range(3))
    return (r > 200) & (g > 180) & (b < 90)


def _warped_astronaut(astronaut: Image) -> tuple[Image, Image]:
    hom = np.array([[0.8, 0.3, 60.0], [-0.25, 0.85, 150.0], [2e-4, 1e-4, 1.0]])
    train = np.asarray(cv2.warpPerspective(astronaut, hom, (700, 700)), dtype=np.uint8)
    return astronaut[120:380, 150:400].copy(), train


def test_draw_feature_matches_shows_both_images_and_the_outline(astronaut: Image) -> None:
    query, train = _warped_astronaut(astronaut)
    result = match_features(query, train, detector="ORB")
    assert result.found and result.corners is not None
    before = (query.copy(), train.copy())
    out = draw_feature_matches(query, train, result)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    np.testing.assert_array_equal(query, before[0])
    np.testing.assert_array_equal(train, before[1])
    # the query (260 px) is enlarged to the train's 700 px height; a caption band on top
    band = out.shape[0] - 700
    assert 10 <= band <= 64
    qw = round(250 * 700 / 260)
    assert out.shape[1] == qw + 8 + 700
    # both images are there: compare an area far from any line with the resized inputs
    left = cv2.resize(query, (qw, 700), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out[band + 650 :, : qw // 2].astype(int) - left[650:, : qw // 2]).mean() < 3
    assert (out[band + 690 :, qw + 8 + 600 :] == train[690:, 600:]).all()  # black corner
    # the outline: yellow near each projected corner, and only on the train side
    yellow = _yellow(out)
    assert not yellow[:, :qw].any()
    for x, y in result.corners:
        cx, cy = round(x) + qw + 8, round(y) + band
        assert yellow[cy - 4 : cy + 5, cx - 4 : cx + 5].any()
    # inlier lines (azure) cross the gap between the images
    gap = out[band:, qw : qw + 8].astype(int)
    assert ((gap[:, :, 0] > 200) & (gap[:, :, 2] < 80)).any()


def test_draw_feature_matches_without_a_match(coffee: Image, astronaut: Image) -> None:
    result = match_features(np.full((100, 80), 90, np.uint8), coffee)
    assert result.good_matches == 0
    out = draw_feature_matches(np.full((100, 80), 90, np.uint8), coffee, result)
    band = out.shape[0] - 400
    # the grey query is enlarged 4x (the cap), the train image is copied unchanged
    assert out.shape[1] == 320 + 8 + 600
    assert (out[band : band + 400, :320] == 90).all()
    np.testing.assert_array_equal(out[band:, 328:], coffee)
    assert not _yellow(out[band:, :320]).any()


def test_draw_feature_matches_no_outline_when_not_found(astronaut: Image, coffee: Image) -> None:
    query = astronaut[100:300, 150:350]
    result = match_features(query, coffee, detector="BRISK", ratio_threshold=1.0)
    assert not result.found and result.good_matches > 0
    out = draw_feature_matches(query, coffee, result)
    band = out.shape[0] - 400
    x0 = out.shape[1] - 600  # the train image, unscaled, on the right
    # no outline: every yellow-ish pixel of the train side was already in the photo
    assert not (_yellow(out[band:, x0:]) & ~_yellow(coffee)).any()
    # few inliers: the outliers get (faded) vermilion lines, which cross the gap
    assert result.inliers < 10
    gap = out[band:, x0 - 8 : x0].astype(int)
    assert ((gap[:, :, 2] - gap[:, :, 0] > 100) & (gap[:, :, 1] < 140)).any()


def test_draw_feature_matches_caps_the_size(astronaut: Image) -> None:
    query, train = _warped_astronaut(astronaut)
    big = np.asarray(cv2.resize(train, (3000, 3000)), dtype=np.uint8)
    result = match_features(query, big, detector="AKAZE")
    assert result.found
    out = draw_feature_matches(query, big, result)
    assert out.shape[1] <= 2400 and out.shape[0] <= 1600
    small = draw_feature_matches(query, big, result, max_width=800, max_height=600)
    assert small.shape[1] <= 800 and small.shape[0] <= 600
    assert _yellow(small).any()


@pytest.mark.parametrize("channels", [0, 1, 4])
def test_draw_feature_matches_input_kinds(astronaut: Image, channels: int) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    image = {
        0: grey,
        1: grey[:, :, None],
        4: np.dstack([astronaut, np.full(grey.shape, 255, np.uint8)]),
    }[channels]
    result = match_features(image[100:300, 150:350], image)
    out = draw_feature_matches(image[100:300, 150:350], image, result)
    assert out.ndim == 3 and out.shape[2] == 3 and result.found


def test_draw_feature_matches_tiny_images() -> None:
    tiny = np.zeros((8, 8), np.uint8)
    result = match_features(tiny, tiny)
    out = draw_feature_matches(tiny, tiny, result)
    assert out.shape[0] >= 240 and out.shape[1] > 2 * 240 and out.dtype == np.uint8


def test_draw_feature_matches_bad_input(astronaut: Image) -> None:
    result = match_features(astronaut[:100, :100], astronaut)
    with pytest.raises(InputError, match="query"):
        draw_feature_matches(astronaut.astype(np.float32), astronaut, result)
    with pytest.raises(InputError, match="train"):
        draw_feature_matches(astronaut, np.zeros((0, 5), np.uint8), result)
    with pytest.raises(InputError, match="max_width"):
        draw_feature_matches(astronaut, astronaut, result, max_width=10)
