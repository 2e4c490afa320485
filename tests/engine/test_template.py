"""Template matching against scenes whose answer is known (patches pasted at known places)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.template import (
    METHODS,
    Match,
    TemplateResult,
    _greedy_nms,
    _scores,
    _suppression_stencil,
    match_template,
)

from .conftest import PASTE_POSITIONS, box_iou, max_pairwise_iou

Image = npt.NDArray[np.uint8]
Paste = Callable[..., Image]
NORMED = ("TM_CCOEFF_NORMED", "TM_CCORR_NORMED", "TM_SQDIFF_NORMED")


def _boxes(result: TemplateResult) -> npt.NDArray[np.int64]:
    return np.array([[m.x, m.y, m.w, m.h] for m in result.matches], dtype=np.int64).reshape(-1, 4)


def _assert_found(
    matches: tuple[Match, ...], positions: tuple[tuple[int, int], ...], size: int
) -> None:
    """Each position matched by exactly one of `matches` with IoU >= 0.5, and nothing else."""
    assert len(matches) == len(positions)
    for x, y in positions:
        hits = [m for m in matches if box_iou((m.x, m.y, m.w, m.h), (x, y, size, size)) >= 0.5]
        assert len(hits) == 1, f"paste at {(x, y)} found {len(hits)} times in {matches}"


# --- known answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("use_grayscale", [True, False])
def test_ccoeff_normed_finds_every_paste_once(
    coffee: Image, patch: Image, paste: Paste, k: int, use_grayscale: bool
) -> None:
    positions = PASTE_POSITIONS[:k]
    scene = paste(coffee, patch, positions, seed=k)
    result = match_template(scene, patch, threshold=0.8, use_grayscale=use_grayscale)
    assert result.filtered_matches == k
    _assert_found(result.matches, positions, 48)
    assert result.score_mode == "absolute"
    assert all(m.score > 0.99 for m in result.matches)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "TM_CCORR"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_are_the_pastes(
    coffee: Image, patch: Image, paste: Paste, method: str, k: int
) -> None:
    """Every method but TM_CCORR ranks the k pasted copies first on this photograph (raw
    cross-correlation favours bright areas instead: see test_ccorr_needs_a_dim_scene)."""
    positions = PASTE_POSITIONS[:k]
    scene = paste(coffee, patch, positions, seed=10 + k)
    result = match_template(scene, patch, method=method, threshold=0.8, max_results=k)
    _assert_found(result.matches, positions, 48)
    assert result.filtered_matches >= k
    assert result.score_mode == ("absolute" if method in NORMED else "relative")


@pytest.mark.parametrize("method", ["TM_CCORR_NORMED", "TM_SQDIFF_NORMED"])
def test_permissive_normed_methods_need_a_higher_threshold(
    coffee: Image, patch: Image, paste: Paste, method: str
) -> None:
    """Honest limits: on a natural photograph TM_CCORR_NORMED and TM_SQDIFF_NORMED score many
    unrelated windows above 0.8 (bright, smooth areas look alike to them); at 0.99 only the
    pasted copies remain."""
    positions = PASTE_POSITIONS
    scene = paste(coffee, patch, positions, seed=3)
    loose = match_template(scene, patch, method=method, threshold=0.8, max_results=100)
    assert loose.filtered_matches > len(positions)
    strict = match_template(scene, patch, method=method, threshold=0.99)
    assert strict.filtered_matches == len(positions)
    _assert_found(strict.matches, positions, 48)


def test_ccorr_needs_a_dim_scene(coffee: Image, patch: Image, paste: Paste) -> None:
    """Raw TM_CCORR peaks where the image is brightest, so it localises the patch only when
    the patch outshines the scene; here the scene is dimmed to 40 %."""
    positions = PASTE_POSITIONS[:3]
    dim = (coffee.astype(np.float32) * 0.4).astype(np.uint8)
    scene = paste(dim, patch, positions, seed=4)
    result = match_template(scene, patch, method="TM_CCORR", threshold=0.8, max_results=3)
    _assert_found(result.matches, positions, 48)
    assert result.score_mode == "relative"


@pytest.mark.parametrize("method", ["TM_CCOEFF_NORMED"])
def test_no_false_positive_without_the_patch(coffee: Image, patch: Image, method: str) -> None:
    """Only TM_CCOEFF_NORMED is discriminative enough for 0.8 to mean "found" on photographs
    (see test_permissive_normed_methods_need_a_higher_threshold for the other two)."""
    for source in (coffee, cv2.flip(coffee, 1), cv2.GaussianBlur(coffee, (5, 5), 0)):
        result = match_template(source, patch, method=method, threshold=0.8)
        assert result.filtered_matches == 0
        assert result.matches == ()
        assert 0.0 < result.best_score < 0.8


def test_colour_tells_apart_what_grey_cannot(coffee: Image, astronaut: Image) -> None:
    """Two copies with the same luminance but different hue: grey finds both, colour one."""
    texture = cv2.cvtColor(astronaut[100:148, 200:248], cv2.COLOR_BGR2GRAY).astype(np.float32)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    orange = np.array([0, 160, 255], np.float32)  # BGR; grey = 0.587*160 + 0.299*255 = 170.1
    cyan = np.array([255, 240, 0], np.float32)  # grey = 0.114*255 + 0.587*240 = 170.0
    true_patch = (texture[:, :, None] * orange + 0.5).astype(np.uint8)
    look_alike = (texture[:, :, None] * cyan + 0.5).astype(np.uint8)
    g1 = cv2.cvtColor(true_patch, cv2.COLOR_BGR2GRAY).astype(int)
    g2 = cv2.cvtColor(look_alike, cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(g1 - g2).max() <= 2  # same luminance
    scene = coffee.copy()
    scene[60:108, 300:348] = true_patch
    scene[250:298, 100:148] = look_alike

    grey = match_template(scene, true_patch, use_grayscale=True)
    _assert_found(grey.matches, ((300, 60), (100, 250)), 48)
    colour = match_template(scene, true_patch, use_grayscale=False)
    _assert_found(colour.matches, ((300, 60),), 48)
    assert colour.filtered_matches == 1


def test_grey_template_in_colour_image_without_grayscale(
    coffee: Image, patch: Image, paste: Paste
) -> None:
    scene = cv2.cvtColor(paste(coffee, patch, PASTE_POSITIONS[:2]), cv2.COLOR_BGR2GRAY)
    grey_patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    as_colour = cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR)
    result = match_template(as_colour, grey_patch, use_grayscale=False)
    _assert_found(result.matches, PASTE_POSITIONS[:2], 48)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_dtypes_agree(coffee: Image, patch: Image, paste: Paste, dtype: type) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS[:3], seed=5)
    scale = 1.0 if dtype is np.uint8 else 1 / 255
    result = match_template(
        (scene * scale).astype(dtype), (patch * scale).astype(dtype), threshold=0.8
    )
    assert result.filtered_matches == 3
    _assert_found(result.matches, PASTE_POSITIONS[:3], 48)


def test_alpha_masked_template(coffee: Image, patch: Image) -> None:
    """Transparent template corners are ignored: the scene shows something else there."""
    yy, xx = np.mgrid[:48, :48]
    disc = (yy - 23.5) ** 2 + (xx - 23.5) ** 2 <= 22**2
    template = np.dstack([patch, np.where(disc, 255, 0).astype(np.uint8)])
    template[~disc, :3] = (255, 0, 255)  # garbage under the transparent part
    scene = coffee.copy()
    scene[150:198, 260:308][disc] = patch[disc]

    for method in ("TM_CCOEFF_NORMED", "TM_SQDIFF_NORMED", "TM_CCORR_NORMED"):
        masked = match_template(scene, template, method=method, threshold=0.95, max_results=1)
        _assert_found(masked.matches, ((260, 150),), 48)
        assert masked.matches[0].score > 0.99
    opaque = match_template(scene, np.ascontiguousarray(template[:, :, :3]), threshold=0.5)
    assert opaque.best_score < 0.8  # without the mask the magenta corners spoil the match


def test_fully_opaque_alpha_is_no_mask(coffee: Image, patch: Image, paste: Paste) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS[:1])
    with_alpha = np.dstack([patch, np.full(patch.shape[:2], 255, np.uint8)])
    a = match_template(scene, with_alpha)
    b = match_template(scene, patch)
    np.testing.assert_array_equal(a.score_map, b.score_map)


def test_image_alpha_is_dropped(coffee: Image, patch: Image, paste: Paste) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS[:2])
    bgra = np.dstack([scene, np.zeros(scene.shape[:2], np.uint8)])
    result = match_template(bgra, patch, use_grayscale=False)
    _assert_found(result.matches, PASTE_POSITIONS[:2], 48)


def test_fully_transparent_template_is_an_error(patch: Image, coffee: Image) -> None:
    template = np.dstack([patch, np.zeros(patch.shape[:2], np.uint8)])
    with pytest.raises(InputError, match="fully transparent"):
        match_template(coffee, template)


# --- results: order, cut, summary -------------------------------------------------------------


def test_max_results_cuts_matches_not_filtered(coffee: Image, patch: Image, paste: Paste) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS, seed=6)
    result = match_template(scene, patch, max_results=2)
    assert len(result.matches) == 2
    assert result.filtered_matches == 5
    summary = result.summary()
    assert summary["matches_found"] == 2 and summary["filtered_matches"] == 5


@pytest.mark.parametrize("method", METHODS)
def test_sorted_best_first_and_summary_is_plain_json(
    coffee: Image, patch: Image, paste: Paste, method: str
) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS, seed=7)
    result = match_template(scene, patch, method=method, threshold=0.3, max_results=50)
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert result.best_score == pytest.approx(scores[0])
    summary = result.summary()
    assert set(summary) == {
        "method",
        "matches_found",
        "best_score",
        "filtered_matches",
        "matches",
        "score_mode",
    }
    assert json.loads(json.dumps(summary)) == summary
    assert summary["method"] == method
    for item in summary["matches"]:
        assert set(item) == {"x", "y", "w", "h", "score"}
        assert all(type(item[k]) is int for k in ("x", "y", "w", "h"))
        assert type(item["score"]) is float and item["score"] == round(item["score"], 4)
        assert item["score"] >= 0.3
    assert type(summary["best_score"]) is float
    assert type(summary["filtered_matches"]) is int


@pytest.mark.parametrize("method", METHODS)
def test_score_map_is_finite_unit_float32(coffee: Image, patch: Image, method: str) -> None:
    result = match_template(coffee, patch, method=method, threshold=1.0)
    smap = result.score_map
    assert smap.dtype == np.float32
    assert smap.shape == (400 - 48 + 1, 600 - 48 + 1)
    assert np.isfinite(smap).all() and smap.min() >= 0.0 and smap.max() <= 1.0
    assert result.best_score == pytest.approx(float(smap.max()))
    assert not smap.flags.writeable
    if method not in NORMED:
        assert smap.max() == 1.0 and smap.min() == 0.0


def test_score_semantics_match_opencv(coffee: Image, patch: Image) -> None:
    grey, tgrey = cv2.cvtColor(coffee, cv2.COLOR_BGR2GRAY), cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    for method in METHODS:
        raw = cv2.matchTemplate(grey, tgrey, getattr(cv2, method)).astype(np.float64)
        if method == "TM_SQDIFF_NORMED":
            expected = np.clip(1 - raw, 0, 1)
        elif method in NORMED:
            expected = np.clip(raw, 0, 1)
        elif method == "TM_SQDIFF":
            expected = (raw.max() - raw) / (raw.max() - raw.min())
        else:
            expected = (raw - raw.min()) / (raw.max() - raw.min())
        got = match_template(grey, tgrey, method=method).score_map
        np.testing.assert_allclose(got, expected, atol=2e-6)


# --- non-finite responses, flat inputs --------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_nan_and_inf_become_the_worst_score(method: str) -> None:
    raw = np.linspace(0.1, 0.9, 20, dtype=np.float32).reshape(4, 5)
    raw[0, 0], raw[1, 1], raw[2, 2] = np.nan, np.inf, -np.inf
    score, best = _scores(raw.copy(), method)
    assert np.isfinite(score).all()
    assert score[0, 0] == score[1, 1] == score[2, 2] == 0.0
    assert score.min() >= 0.0 and score.max() <= 1.0
    assert best == float(score.max())


def test_all_nan_response_is_all_zero() -> None:
    score, best = _scores(np.full((3, 3), np.nan, np.float32), "TM_CCOEFF")
    assert best == 0.0 and not score.any()


@pytest.mark.parametrize("method", METHODS)
def test_masked_matching_on_flat_image_stays_finite(
    coffee: Image, patch: Image, method: str
) -> None:
    """Masked normalised matching over a flat area divides by zero inside OpenCV."""
    scene = coffee.copy()
    scene[:, :300] = 0
    template = np.dstack([patch, np.full(patch.shape[:2], 255, np.uint8)])
    template[:8, :, 3] = 0
    result = match_template(scene, template, method=method, threshold=0.5)
    assert np.isfinite(result.score_map).all()
    assert result.score_map.min() >= 0.0 and result.score_map.max() <= 1.0


@pytest.mark.parametrize("method", ["TM_CCOEFF_NORMED", "TM_CCOEFF"])
def test_flat_template_with_ccoeff_is_an_error(coffee: Image, method: str) -> None:
    """OpenCV answers 1.0 everywhere for TM_CCOEFF_NORMED and a flat template: refuse it."""
    with pytest.raises(InputError, match="flat"):
        match_template(coffee, np.full((20, 20, 3), 128, np.uint8), method=method)


def test_constant_response_gives_zero_scores() -> None:
    result = match_template(
        np.full((30, 40), 7, np.uint8), np.full((5, 5), 7, np.uint8), method="TM_SQDIFF"
    )
    assert not result.score_map.any() and result.best_score == 0.0 and result.matches == ()


# --- NMS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TM_SQDIFF_NORMED", "TM_CCORR_NORMED", "TM_SQDIFF"])
def test_plateau_gives_no_duplicates(method: str) -> None:
    """A flat template on a flat area scores 1.0 on a whole plateau of positions."""
    rng = np.random.default_rng(8)
    image = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    image[40:200, 60:300] = 200
    template = np.full((20, 20), 200, np.uint8)
    result = match_template(image, template, method=method, threshold=0.99, max_results=1000)
    boxes = _boxes(result)
    assert 0 < len(boxes) == result.filtered_matches < 1000
    assert max_pairwise_iou(boxes) <= 0.3
    inside = (boxes[:, 0] >= 60) & (boxes[:, 1] >= 40) & (boxes[:, 0] <= 280) & (boxes[:, 1] <= 180)
    assert inside.all()
    assert len(boxes) >= (240 // 20) * (160 // 20)  # the plateau is tiled, not just sampled


@pytest.mark.parametrize("nms_iou", [0.0, 0.3, 0.6])
def test_no_pixel_apart_duplicates_on_a_busy_map(
    coffee: Image, patch: Image, nms_iou: float
) -> None:
    """Low threshold on a permissive method: thousands of candidates, thinned, then NMS."""
    result = match_template(
        coffee, patch, method="TM_CCORR_NORMED", threshold=0.1, max_results=1000, nms_iou=nms_iou
    )
    assert np.count_nonzero(result.score_map >= 0.1) > 100_000  # all of them, in fact
    assert result.filtered_matches >= 10
    assert max_pairwise_iou(_boxes(result)) <= nms_iou + 1e-12


def _brute_force_nms(
    ys: npt.NDArray[np.intp],
    xs: npt.NDArray[np.intp],
    scores: npt.NDArray[np.float32],
    w: int,
    h: int,
    iou: float,
) -> list[int]:
    order = sorted(range(len(ys)), key=lambda i: (-scores[i], ys[i], xs[i]))
    kept: list[int] = []
    for i in order:
        if all(box_iou((xs[i], ys[i], w, h), (xs[j], ys[j], w, h)) <= iou for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("w", "h", "iou"), [(9, 9, 0.3), (12, 5, 0.3), (6, 6, 0.0), (8, 8, 0.7)])
def test_greedy_nms_equals_brute_force(seed: int, w: int, h: int, iou: float) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    flat = rng.choice(40 * 50, size=n, replace=False)
    ys, xs = np.divmod(flat, 50)
    scores = (rng.integers(0, 20, n) / 20).astype(np.float32)  # many ties
    kept, total = _greedy_nms(ys, xs, scores, (40, 50), w, h, iou, 10_000)
    assert kept.tolist() == _brute_force_nms(ys, xs, scores, w, h, iou)
    assert total == len(kept)
    top, total2 = _greedy_nms(ys, xs, scores, (40, 50), w, h, iou, 7)
    assert top.tolist() == kept.tolist()[:7] and total2 == total


def test_stencil_is_the_iou_rule() -> None:
    stencil = _suppression_stencil(10, 6, 0.3)
    sh, sw = stencil.shape
    for dy in range(-(sh // 2), sh // 2 + 1):
        for dx in range(-(sw // 2), sw // 2 + 1):
            expected = box_iou((0, 0, 10, 6), (dx, dy, 10, 6)) > 0.3
            assert stencil[dy + sh // 2, dx + sw // 2] == expected


def test_one_pixel_template_keeps_everything() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4) + 1
    result = match_template(image, image[:1, :1], method="TM_SQDIFF", threshold=0.0, max_results=5)
    assert result.filtered_matches == 12 and len(result.matches) == 5
    assert (result.matches[0].x, result.matches[0].y) == (0, 0)


@pytest.mark.parametrize("method", METHODS)
def test_worst_case_low_threshold_on_noise_is_fast(method: str) -> None:
    rng = np.random.default_rng(9)
    noise = rng.integers(0, 256, (1080, 1920), dtype=np.uint8)
    template = noise[500:564, 900:964].copy()
    start = time.perf_counter()
    result = match_template(noise, template, method=method, threshold=0.1, max_results=1000)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.5, f"{method} took {elapsed:.2f} s"  # ~0.03-0.06 s measured
    assert len(result.matches) <= 1000
    assert (result.matches[0].x, result.matches[0].y) == (900, 500)
    assert max_pairwise_iou(_boxes(result)) <= 0.3


# --- bad input ---------------------------------------------------------------------------------


def test_template_larger_than_image(patch: Image) -> None:
    with pytest.raises(InputError, match=r"template \(48×48\) is larger than the image \(40×30\)"):
        match_template(np.zeros((30, 40, 3), np.uint8), patch)
    with pytest.raises(InputError, match="larger than the image"):
        match_template(np.zeros((100, 40), np.uint8), np.zeros((10, 41), np.uint8))


def test_template_as_large_as_image() -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    result = match_template(image, image)
    assert result.score_map.shape == (1, 1) and result.filtered_matches == 1


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0, 3)])
def test_empty_template(coffee: Image, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="template is empty"):
        match_template(coffee, np.zeros(shape, np.uint8))


def test_unknown_method_lists_the_valid_ones(coffee: Image, patch: Image) -> None:
    with pytest.raises(InputError, match="TM_CCOEFF_NORMED, TM_CCORR_NORMED, TM_SQDIFF_NORMED"):
        match_template(coffee, patch, method="TM_FANCY")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": 2.5}, "max_results"),
        ({"nms_iou": 1.0}, "nms_iou"),
    ],
)
def test_bad_parameters(
    coffee: Image, patch: Image, kwargs: dict[str, float], pattern: str
) -> None:
    with pytest.raises(InputError, match=pattern):
        match_template(coffee, patch, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (np.zeros((50, 50, 2), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((50, 50, 3, 1), np.uint8), "2-D"),
        (np.zeros((50, 50), np.int16), "uint8, float32 or float64"),
        (np.full((50, 50), np.nan, np.float32), "NaN"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_arrays(image: object, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        match_template(image, np.zeros((5, 5), np.uint8))  # type: ignore[arg-type]


def test_mixed_dtypes_are_refused(coffee: Image, patch: Image) -> None:
    with pytest.raises(InputError, match="convert both"):
        match_template(coffee, patch.astype(np.float32))


def test_candidate_cap_keeps_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _MAX_NMS_CANDIDATES (tiny templates on noise) only the best candidates enter NMS."""
    import aerovision.engine.template as module

    monkeypatch.setattr(module, "_MAX_NMS_CANDIDATES", 50)
    noise = np.random.default_rng(11).integers(0, 256, (200, 300), dtype=np.uint8)
    result = match_template(noise, noise[50:53, 70:73], threshold=0.1, max_results=1000)
    assert 0 < result.filtered_matches <= 50
    assert (result.matches[0].x, result.matches[0].y) == (70, 50)
    assert max_pairwise_iou(_boxes(result)) <= 0.3


@pytest.mark.parametrize("method", ["TM_CCORR_NORMED", "TM_SQDIFF", "TM_CCOEFF_NORMED"])
def test_candidate_paths_agree(
    coffee: Image, patch: Image, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few candidates are checked one window at a time, many by one dilation: same answer."""
    import aerovision.engine.template as module

    results = []
    for limit in (0, 10**9):
        monkeypatch.setattr(module, "_WINDOW_CHECK_LIMIT", limit)
        results.append(
            match_template(coffee, patch, method=method, threshold=0.3, max_results=1000)
        )
    assert results[0].matches == results[1].matches
    assert results[0].filtered_matches == results[1].filtered_matches > 0


def test_numpy_scalars_and_bgra_scene(coffee: Image, patch: Image, paste: Paste) -> None:
    scene = paste(coffee, patch, PASTE_POSITIONS[:2])
    bgra = np.dstack([scene, np.full(scene.shape[:2], 255, np.uint8)])
    result = match_template(
        bgra,
        patch,
        threshold=np.float32(0.8),  # type: ignore[arg-type]
        max_results=np.int64(5),  # type: ignore[arg-type]
        nms_iou=np.float64(0.3),
    )
    _assert_found(result.matches, PASTE_POSITIONS[:2], 48)


def test_service_parameters_offer_exactly_the_engine_methods() -> None:
    from typing import get_args

    from aerovision.tools.template import TemplateMethod

    assert get_args(TemplateMethod) == METHODS
