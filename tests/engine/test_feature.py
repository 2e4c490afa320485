"""Feature matching: known homographies on real photographs, unrelated pairs, degenerate inputs.

The ground truth: a crop of a photograph (the object) is searched for in the whole
photograph warped by a random homography (scale 0.6-1.5, rotation up to 45°, mild
perspective) with a brightness change and Gaussian noise; the crop's outline mapped
by that homography is where ``corners`` must land.
"""

from __future__ import annotations

import itertools
import json
import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from aerovision.engine import feature
from aerovision.engine.errors import InputError
from aerovision.engine.feature import DETECTORS, MATCHERS, FeatureResult, match_features

Image = npt.NDArray[np.uint8]
COMBINATIONS = list(itertools.product(DETECTORS, MATCHERS))
PAIRS_PER_COMBINATION = 12
GROUND_TRUTH_SEED = 20240325


def _bgr(name: str) -> Image:
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    code = cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR
    return np.ascontiguousarray(cv2.cvtColor(image, code), dtype=np.uint8)


@pytest.fixture(scope="module")
def photos() -> list[Image]:
    """Textured photographs from scikit-image's wheel, BGR."""
    names = (
        "astronaut",
        "coffee",
        "chelsea",
        "stereo_motorcycle",
        "camera",
        "immunohistochemistry",
    )
    return [_bgr(name) for name in names]


def random_homography(
    rng: np.random.Generator, w: int, h: int
) -> tuple[npt.NDArray[np.float64], tuple[int, int]]:
    """A homography about the image centre (scale 0.6-1.5, rotation ±45°, mild perspective)
    and the canvas size (w, h) that holds the whole warped image with a 10-pixel margin."""
    scale = rng.uniform(0.6, 1.5)
    angle = np.deg2rad(rng.uniform(-45.0, 45.0))
    centre = np.array([[1.0, 0.0, -w / 2], [0.0, 1.0, -h / 2], [0.0, 0.0, 1.0]])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rotate = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    perspective = np.eye(3)
    perspective[2, :2] = rng.uniform(-0.3, 0.3, 2) / max(w, h)  # ±15 % scale change at the edges
    hom = perspective @ rotate @ centre
    outline = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], dtype=np.float64)
    ends = cv2.perspectiveTransform(outline, hom)[0]
    lo, hi = ends.min(axis=0), ends.max(axis=0)
    shift = np.array([[1.0, 0.0, 10 - lo[0]], [0.0, 1.0, 10 - lo[1]], [0.0, 0.0, 1.0]])
    hom = shift @ hom
    size = (math.ceil(hi[0] - lo[0]) + 20, math.ceil(hi[1] - lo[1]) + 20)
    return hom / hom[2, 2], size


def object_on_scene(
    photo: Image, rng: np.random.Generator
) -> tuple[Image, Image, npt.NDArray[np.float64]]:
    """(query = a crop of 40-70 % of each side, train = the warped photo, true corners)."""
    h, w = photo.shape[:2]
    qw, qh = int(w * rng.uniform(0.4, 0.7)), int(h * rng.uniform(0.4, 0.7))
    x0, y0 = int(rng.integers(0, w - qw)), int(rng.integers(0, h - qh))
    query = np.ascontiguousarray(photo[y0 : y0 + qh, x0 : x0 + qw])
    hom, size = random_homography(rng, w, h)
    warped = cv2.warpPerspective(photo, hom, size, flags=cv2.INTER_LINEAR).astype(np.float32)
    warped = warped * rng.uniform(0.8, 1.2) + rng.uniform(-20.0, 20.0)
    warped += rng.normal(0.0, rng.uniform(2.0, 5.0), warped.shape).astype(np.float32)
    train = np.asarray(np.clip(warped + 0.5, 0, 255), dtype=np.uint8)
    outline = np.array([[[x0, y0], [x0 + qw, y0], [x0 + qw, y0 + qh], [x0, y0 + qh]]], float)
    return query, train, cv2.perspectiveTransform(outline, hom)[0]


@pytest.fixture(scope="module")
def ground_truth(photos: list[Image]) -> list[tuple[Image, Image, npt.NDArray[np.float64]]]:
    rng = np.random.default_rng(GROUND_TRUTH_SEED)
    return [object_on_scene(photos[i % len(photos)], rng) for i in range(PAIRS_PER_COMBINATION)]


def corner_error(result: FeatureResult, truth: npt.NDArray[np.float64]) -> float:
    """Mean distance (px) from our corners to the true ones; inf without corners."""
    if result.corners is None:
        return math.inf
    return float(np.linalg.norm(result.corners - truth, axis=1).mean())


def _assert_empty(result: FeatureResult) -> None:
    assert result.good_matches == 0 and result.inliers == 0 and result.inlier_ratio == 0.0
    assert result.homography is None and result.corners is None and result.center is None
    assert result.found is False
    assert result.query_points.shape == (0, 2) and result.train_points.shape == (0, 2)
    assert result.inlier_mask.shape == (0,)


# --- ground truth -------------------------------------------------------------------------


@pytest.mark.parametrize(("detector", "matcher"), COMBINATIONS)
def test_corners_of_an_object_in_a_warped_photo(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]], detector: str, matcher: str
) -> None:
    tolerance, share = (5.0, 0.8) if detector == "ORB" else (3.0, 0.9)
    errors, found = [], []
    for query, train, truth in ground_truth:
        result = match_features(query, train, detector=detector, matcher=matcher)
        errors.append(corner_error(result, truth))
        found.append(result.found)
        if result.found:  # a found outline is never far off: within 5 % of its size
            size = math.sqrt(cv2.contourArea(truth.astype(np.float32)))
            assert errors[-1] < 0.05 * size, (errors[-1], size)
    good = np.asarray(errors) < tolerance
    assert good.mean() >= share, np.round(errors, 2)
    assert np.mean(found) >= share, found


def test_same_image_gives_its_own_outline(photos: list[Image]) -> None:
    scene = photos[0]
    result = match_features(scene[100:300, 150:350], scene)
    assert result.found and result.inlier_ratio > 0.9
    expected = [[150, 100], [350, 100], [350, 300], [150, 300]]
    assert result.corners is not None
    np.testing.assert_allclose(result.corners, expected, atol=0.5)
    assert result.center == pytest.approx((250.0, 200.0), abs=0.5)


def test_points_are_in_original_pixels(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]],
) -> None:
    query, train, truth = ground_truth[0]
    result = match_features(query, train)
    inner = np.array(
        [[[0, 0], [query.shape[1], 0], [query.shape[1], query.shape[0]], [0, query.shape[0]]]],
        float,
    )
    true_h = cv2.getPerspectiveTransform(inner[0].astype(np.float32), truth.astype(np.float32))
    mapped = cv2.perspectiveTransform(result.query_points[None].astype(np.float64), true_h)[0]
    residual = np.linalg.norm(mapped - result.train_points, axis=1)
    assert np.median(residual[result.inlier_mask]) < 1.5
    assert result.query_points.dtype == np.float32 and result.train_points.dtype == np.float32
    assert (result.query_points >= -1).all() and (result.query_points[:, 0] <= query.shape[1]).all()


# --- unrelated pairs and degenerate inputs ------------------------------------------------


@pytest.fixture(scope="module")
def unrelated(photos: list[Image]) -> list[tuple[Image, Image]]:
    """Crops of one photograph against warps of another (or a texture), never the same."""
    rng = np.random.default_rng(7)
    grass, brick, text = (_bgr(n) for n in ("grass", "brick", "text"))
    sources = [
        (photos[0], photos[1]),
        (photos[2], photos[4]),
        (photos[5], photos[3]),
        (grass, brick),
        (text, photos[1]),
    ]
    pairs = []
    for a, b in sources:
        query, _, _ = object_on_scene(a, rng)
        _, train, _ = object_on_scene(b, rng)
        pairs.append((query, train))
    return pairs


@pytest.mark.parametrize(("detector", "matcher"), COMBINATIONS)
@pytest.mark.parametrize(("ratio", "cap"), [(0.75, 200), (1.0, 5000)])
def test_unrelated_images_are_not_found(
    unrelated: list[tuple[Image, Image]], detector: str, matcher: str, ratio: float, cap: int
) -> None:
    for query, train in unrelated:
        result = match_features(
            query, train, detector=detector, matcher=matcher, ratio_threshold=ratio, max_matches=cap
        )
        assert not result.found, (result.good_matches, result.inliers)


def _grey(image: Image) -> Image:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _flat(h: int, w: int, value: int = 128, channels: int = 0) -> Image:
    shape = (h, w) if channels == 0 else (h, w, channels)
    return np.full(shape, value, dtype=np.uint8)


@pytest.mark.parametrize(("detector", "matcher"), COMBINATIONS)
def test_textureless_tiny_and_flat_images_give_empty_results(
    photos: list[Image], detector: str, matcher: str
) -> None:
    textured = photos[0]
    cases = [
        (_flat(200, 300), textured),  # single grey level
        (textured, _flat(200, 300, 0)),
        (_flat(120, 160, 200, 3), _flat(120, 160, 10, 4)),  # single colours, BGR and BGRA
        (textured[:8, :8], textured),  # tiny
        (textured, textured[100:108, 100:108]),
        (textured[:1, :1], textured[:1, :1]),
        (textured[:1, :300], textured[:300, :2]),  # 1 and 2 pixels wide: AKAZE would corrupt memory
        (textured[:3, :40], textured[:40, :5]),
    ]
    for query, train in cases:
        _assert_empty(match_features(query, train, detector=detector, matcher=matcher))


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("side", [1, 2, 3, 5, 15, 16, 17, 31, 64])
def test_small_images_never_crash(photos: list[Image], detector: str, side: int) -> None:
    textured = np.ascontiguousarray(photos[3][50:450, 100:500, 1])
    for shape in ((side, side), (side, 200), (200, side)):
        query = np.ascontiguousarray(textured[100 : 100 + shape[0], 200 : 200 + shape[1]])
        result = match_features(query, textured, detector=detector)
        assert result.good_matches <= result.query_keypoints
        if result.found:  # an exact crop: it can only be found where it was cut
            h, w = shape
            expected = [[200, 100], [200 + w, 100], [200 + w, 100 + h], [200, 100 + h]]
            np.testing.assert_allclose(result.corners, expected, atol=2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("detector", "matcher"), COMBINATIONS)
@pytest.mark.parametrize("rows", [(0, 5), (5, 0), (1, 1), (3, 1), (1, 2), (2, 2), (4, 3)])
def test_few_descriptors_never_crash(detector: str, matcher: str, rows: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    width, dtype = (128, np.float32) if detector == "SIFT" else (32, np.uint8)
    q, t = (rng.integers(0, 256, (n, width)).astype(dtype) for n in rows)
    q_idx, t_idx = feature._good_matches(q, t, detector, matcher, 0.9, 0)
    assert len(q_idx) == len(t_idx) <= rows[0]
    if rows[1] < 2:
        assert q_idx == []  # no second neighbour, no ratio


# --- matchers -----------------------------------------------------------------------------


def test_flann_index_and_brute_force_norm_fit_the_descriptor() -> None:
    assert feature._index_params("SIFT")["algorithm"] == 1  # FLANN_INDEX_KDTREE
    for detector in ("ORB", "AKAZE", "BRISK"):
        assert feature._index_params(detector)["algorithm"] == 6  # FLANN_INDEX_LSH
        assert feature._norm(detector) == cv2.NORM_HAMMING
    assert feature._norm("SIFT") == cv2.NORM_L2


@pytest.mark.parametrize("detector", DETECTORS)
def test_descriptor_types_and_both_matchers_agree(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]], detector: str
) -> None:
    query, train, _ = ground_truth[1]
    engine = feature._make_detector(detector)
    _, q_desc = feature._detect(engine, _grey(query), detector)
    assert q_desc is not None
    assert q_desc.dtype == (np.float32 if detector == "SIFT" else np.uint8)
    flann = match_features(query, train, detector=detector, matcher="FLANN")
    brute = match_features(query, train, detector=detector, matcher="BFMatcher")
    assert flann.found and brute.found
    assert abs(flann.good_matches - brute.good_matches) <= 0.25 * brute.good_matches
    tolerance = 5.0 if detector == "ORB" else 3.0
    np.testing.assert_allclose(flann.corners, brute.corners, atol=tolerance)  # type: ignore[arg-type]


def test_lsh_lonely_neighbour_gets_a_second_opinion() -> None:
    """LSH puts an exact copy in the query's bucket and often nothing else: brute force
    then supplies the second neighbour, and the copy passes the ratio test."""
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, (4, 32)).astype(np.uint8)
    query = train[:1].copy()
    cv2.setRNGSeed(0)
    lsh = cv2.FlannBasedMatcher(feature._index_params("ORB"), {"checks": 50})
    assert len(lsh.knnMatch(query, train, k=2)[0]) < 2  # the case under test does happen
    q_idx, t_idx = feature._good_matches(query, train, "ORB", "FLANN", 0.75, 0)
    assert (q_idx, t_idx) == ([0], [0])


# --- parameters ---------------------------------------------------------------------------


def test_max_matches_keeps_the_best(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]],
) -> None:
    query, train, _ = ground_truth[2]
    full = match_features(query, train, detector="BRISK", matcher="BFMatcher", max_matches=5000)
    assert full.good_matches > 40
    for cap in (1, 7, 40):
        cut = match_features(query, train, detector="BRISK", matcher="BFMatcher", max_matches=cap)
        assert cut.good_matches == cap
        np.testing.assert_array_equal(cut.query_points, full.query_points[:cap])
        np.testing.assert_array_equal(cut.train_points, full.train_points[:cap])


@pytest.mark.parametrize("detector", DETECTORS)
def test_good_matches_are_sorted_by_distance(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]], detector: str
) -> None:
    query, train, _ = ground_truth[3]
    engine = feature._make_detector(detector)
    _, q_desc = feature._detect(engine, _grey(query), detector)
    _, t_desc = feature._detect(engine, _grey(train), detector)
    assert q_desc is not None and t_desc is not None
    q_idx, t_idx = feature._good_matches(q_desc, t_desc, detector, "BFMatcher", 0.75, 0)
    norm = cv2.NORM_L2 if detector == "SIFT" else cv2.NORM_HAMMING
    dist = [cv2.norm(q_desc[i], t_desc[j], norm) for i, j in zip(q_idx, t_idx, strict=True)]
    assert len(dist) > 20 and np.all(np.diff(dist) >= -1e-3)


@pytest.mark.parametrize("detector", DETECTORS)
def test_lower_ratio_gives_no_more_matches(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]], detector: str
) -> None:
    query, train, _ = ground_truth[4]
    counts = [
        match_features(
            query, train, detector=detector, ratio_threshold=r, max_matches=5000
        ).good_matches
        for r in (0.4, 0.6, 0.75, 0.9, 1.0)
    ]
    assert counts == sorted(counts) and counts[0] < counts[-1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"detector": "SURF"}, "detector"),
        ({"detector": "sift"}, "detector"),
        ({"matcher": "KNN"}, "matcher"),
        ({"ratio_threshold": 0.0}, "ratio_threshold"),
        ({"ratio_threshold": 1.01}, "ratio_threshold"),
        ({"ratio_threshold": float("nan")}, "ratio_threshold"),
        ({"ratio_threshold": "0.7"}, "ratio_threshold"),
        ({"ratio_threshold": True}, "ratio_threshold"),
        ({"max_matches": 0}, "max_matches"),
        ({"max_matches": -3}, "max_matches"),
        ({"max_matches": 2.5}, "max_matches"),
        ({"max_matches": True}, "max_matches"),
        ({"rng": "seed"}, "rng"),
        ({"rng": -1}, "rng"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], field: str) -> None:
    image = np.zeros((50, 50), np.uint8)
    with pytest.raises(InputError, match=field):
        match_features(image, image, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([[0, 1], [2, 3]], "numpy array"),
        (np.zeros((10, 10), np.float32), "uint8"),
        (np.zeros((10, 10), np.uint16), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros((10,), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
    ],
)
@pytest.mark.parametrize("side", ["query", "train"])
def test_bad_images(bad: object, message: str, side: str) -> None:
    good = np.zeros((50, 50), np.uint8)
    args = (bad, good) if side == "query" else (good, bad)
    with pytest.raises(InputError, match=f"{side}.*{message}"):
        match_features(*args)


def test_grey_bgr_and_bgra_inputs_agree(photos: list[Image]) -> None:
    scene = photos[1]
    query = scene[80:280, 200:450]
    grey = cv2.cvtColor(query, cv2.COLOR_BGR2GRAY)
    variants = [
        query,
        np.dstack([query, np.full(grey.shape, 77, np.uint8)]),
        grey,
        grey[:, :, None],
    ]
    results = [match_features(v, scene, detector="AKAZE") for v in variants]
    for r in results:
        assert r.found
        np.testing.assert_array_equal(r.query_points, results[0].query_points)


def test_reproducible_with_rng(
    ground_truth: list[tuple[Image, Image, npt.NDArray[np.float64]]],
) -> None:
    query, train, _ = ground_truth[5]
    for detector in ("SIFT", "ORB"):
        a = match_features(query, train, detector=detector, rng=42)
        b = match_features(query, train, detector=detector, rng=np.random.default_rng(42))
        c = match_features(query, train, detector=detector)
        d = match_features(query, train, detector=detector)
        for x, y in ((a, b), (c, d)):
            np.testing.assert_array_equal(x.query_points, y.query_points)
            np.testing.assert_array_equal(x.inlier_mask, y.inlier_mask)
            assert x.homography is not None and y.homography is not None
            np.testing.assert_array_equal(x.homography, y.homography)


def test_inputs_untouched_and_result_read_only(photos: list[Image]) -> None:
    scene = photos[0]
    query = scene[100:300, 150:350].copy()
    before = (query.copy(), scene.copy())
    result = match_features(query, scene)
    np.testing.assert_array_equal(query, before[0])
    np.testing.assert_array_equal(scene, before[1])
    for array in (result.homography, result.corners, result.query_points, result.inlier_mask):
        assert array is not None
        with pytest.raises(ValueError):
            array[0] = 0


# --- geometry and summary -----------------------------------------------------------------


def test_implausible_outlines_are_rejected() -> None:
    w, h = 200, 100

    def plausible(hom: npt.NDArray[np.float64]) -> bool:
        outline = feature._outline(hom, w, h)
        assert outline is not None
        return feature._plausible(hom, outline[:4], w, h)

    identity = np.eye(3)
    assert plausible(identity)
    mirror = np.diag([-1.0, 1.0, 1.0])
    mirror[0, 2] = 400
    assert not plausible(mirror)
    assert not plausible(np.diag([0.01, 0.01, 1.0]))  # too small
    assert not plausible(np.diag([1.0, 0.1, 1.0]))  # squashed
    beyond_horizon = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.008, 0.0, 1.0]])
    assert feature._outline(beyond_horizon, w, h) is None  # corner (200, 0) has w = -0.6
    bowtie = np.array([[0, 0], [200, 100], [200, 0], [0, 100]], float)
    assert not feature._plausible(identity, bowtie, w, h)


def test_corner_sigma_grows_when_inliers_bunch_up() -> None:
    rng = np.random.default_rng(1)
    hom = np.array([[0.9, 0.1, 20.0], [-0.1, 0.9, 30.0], [1e-4, 0.0, 1.0]])
    spread = rng.uniform(0, 200, (40, 2)).astype(np.float32)
    bunched = rng.uniform(90, 110, (40, 2)).astype(np.float32)
    sigmas = []
    for pts in (spread, bunched):
        mapped = cv2.perspectiveTransform(pts[None].astype(np.float64), hom)[0]
        mapped += rng.normal(0, 0.7, mapped.shape)
        sigmas.append(feature._corner_sigma(hom, pts, mapped.astype(np.float32), 200, 200))
    assert sigmas[0] < 1.5 < 10 * sigmas[0] < sigmas[1]


def test_summary_is_plain_json(photos: list[Image]) -> None:
    scene = photos[0]
    result = match_features(scene[100:300, 150:350], scene, detector="ORB", matcher="BFMatcher")
    data = result.summary()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "query_keypoints",
        "train_keypoints",
        "good_matches",
        "detector",
        "matcher",
        "homography",
        "inliers",
        "inlier_ratio",
        "corners",
        "center",
        "found",
    }
    assert (data["detector"], data["matcher"], data["found"]) == ("ORB", "BFMatcher", True)
    assert data["good_matches"] == result.good_matches > 0
    assert len(data["homography"]) == 3 and all(len(row) == 3 for row in data["homography"])
    assert data["homography"][2][2] == 1.0
    assert result.corners is not None and len(data["corners"]) == 4
    assert data["corners"][0] == [round(x, 2) for x in result.corners[0]]
    empty = match_features(_flat(50, 50), scene).summary()
    assert empty["homography"] is None and empty["corners"] is None and empty["center"] is None
    assert empty["found"] is False and empty["good_matches"] == 0


def test_a_pair_that_is_not_found_reports_no_location_at_all() -> None:
    """A fit that fails the checks locates nothing: no homography, corners or centre
    beside ``found: false``, though its inliers are still counted."""
    seen_rejected_fit = False
    for query, train in (("astronaut", "coffee"), ("chelsea", "rocket"), ("coffee", "chelsea")):
        for detector in ("SIFT", "ORB"):
            result = match_features(_bgr(query), _bgr(train), detector=detector,
                                    matcher="BFMatcher", ratio_threshold=0.9)
            assert result.found is False, (query, train, detector)
            data = result.summary()
            assert (data["homography"], data["corners"], data["center"]) == (None, None, None)
            seen_rejected_fit |= data["inliers"] > 0
    assert seen_rejected_fit  # the rule was tested on fits that were made, then refused


def test_brisk_with_flann_finds_what_brute_force_finds_on_warped_photos() -> None:
    """FLANN's LSH index misses some nearest neighbours; those that come back alone are
    asked of brute force, so recall stays with BFMatcher's."""
    rng = np.random.default_rng(7)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "stereo_motorcycle"):
        query = cv2.resize(_bgr(name), (480, 360))
        corners = np.float32([[0, 0], [480, 0], [480, 360], [0, 360]])
        moved = (corners + rng.uniform(-0.12, 0.12, (4, 2)) * [480, 360]).astype(np.float32)
        train = cv2.warpPerspective(query, cv2.getPerspectiveTransform(corners, moved), (480, 360))
        flann = match_features(query, train, detector="BRISK", matcher="FLANN", max_matches=5000)
        brute = match_features(query, train, detector="BRISK", matcher="BFMatcher",
                               max_matches=5000)
        assert flann.found and brute.found, name
        assert flann.good_matches >= 0.9 * brute.good_matches, (name, flann.good_matches,
                                                                brute.good_matches)
