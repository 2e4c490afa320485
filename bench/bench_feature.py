"""Feature matching: AeroVision's engine against the bare OpenCV pipeline.

Run ``python -m bench.bench_feature`` for a table. Each pair is a real photograph
(scikit-image's ``stereo_motorcycle`` left view) resized to 640x480 or 1152x864
(~1 MP), and the same photograph warped by a known homography (rotation 20°,
scale 0.85, mild perspective) with mild noise. Each row times, in the same
process and interleaved run by run (median of ``repeats``):

- baseline: the textbook OpenCV pipeline with the same parameters: one detector,
  ``detectAndCompute`` on both images, ``knnMatch(k=2)`` with the same FLANN
  index (or brute-force norm) built from the same seed, Lowe's ratio test at
  0.75, sort by distance and keep 200, ``cv2.findHomography(..., cv2.USAC_MAGSAC,
  3.0, maxIters=2000, confidence=0.999)``;
- aerovision: ``match_features(query, train, detector=..., matcher=...)``, which
  adds the input checks, the one-match-per-train-point filter, a least-squares
  refit on the inliers, the outline and the ``found`` verdict.

Both get the same grey arrays, converted outside the timed region. The goal is a
ratio of at most 1.1. ``note`` gives our mean corner error against the known
homography. The last rows time the homography step alone (MAGSAC++ as baseline
against ``cv2.RANSAC``) on the good matches of each 640x480 pair, with the corner
error each one gives: the reason ``match_features`` uses MAGSAC++.
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import skimage.data

from aerovision.engine import feature
from aerovision.engine.feature import DETECTORS, match_features
from bench.timing import median_pair, row

Image = npt.NDArray[np.uint8]
SIZES = ((640, 480), (1152, 864))
RATIO = 0.75
MAX_MATCHES = 200
FLANN_SEED = int(np.random.default_rng(0).integers(2**31 - 1))
"""What ``match_features`` seeds OpenCV's RNG with by default (``rng=None``): FLANN's
search time depends on its random trees or hash tables (LSH: ±20 % between seeds)."""


def build_pair(
    size: tuple[int, int], seed: int = 0
) -> tuple[Image, Image, npt.NDArray[np.float64]]:
    """Return (query grey, train grey, true homography query → train) at `size` (w, h)."""
    left = skimage.data.stereo_motorcycle()[0]  # type: ignore[no-untyped-call]
    grey = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
    query = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    w, h = size
    angle, scale = np.deg2rad(20.0), 0.85
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    to_centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]], dtype=np.float64)
    rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
    tilt = np.array([[1, 0, 0], [0, 1, 0], [0.08 / w, -0.05 / h, 1]], dtype=np.float64)
    hom = back @ tilt @ rotate @ to_centre
    warped = np.asarray(cv2.warpPerspective(query, hom, size), dtype=np.float32)
    warped += np.random.default_rng(seed).normal(0.0, 3.0, warped.shape).astype(np.float32)
    train = np.asarray(np.clip(warped + 0.5, 0, 255), dtype=np.uint8)
    return query, train, hom / hom[2, 2]


def _detector(name: str) -> cv2.Feature2D:
    params = feature._DETECTOR_PARAMS[name]
    if name == "SIFT":
        return cv2.SIFT.create(**params)
    if name == "ORB":
        return cv2.ORB.create(**params)
    contrib = getattr(cv2, "xfeatures2d", None)
    factory = getattr(contrib, f"{name}_create", None) or getattr(cv2, f"{name}_create")
    engine: cv2.Feature2D = factory(**params)
    return engine


def _matcher(detector: str, matcher: str) -> cv2.DescriptorMatcher:
    binary = detector != "SIFT"
    if matcher == "FLANN":
        index = feature._LSH if binary else feature._KDTREE
        return cv2.FlannBasedMatcher(dict(index), {"checks": 50})
    return cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2)


def good_points(
    query: Image, train: Image, detector: str, matcher: str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The bare pipeline up to the homography: the best good matches' coordinates."""
    engine = _detector(detector)
    kq, dq = engine.detectAndCompute(query, None)
    kt, dt = engine.detectAndCompute(train, None)
    cv2.setRNGSeed(FLANN_SEED)
    pairs = _matcher(detector, matcher).knnMatch(dq, dt, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    good.sort(key=attrgetter("distance"))
    del good[MAX_MATCHES:]
    src = np.array([kq[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 2)
    dst = np.array([kt[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 2)
    return src, dst


def bare_pipeline(query: Image, train: Image, detector: str, matcher: str) -> Any:
    src, dst = good_points(query, train, detector, matcher)
    return cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 3.0, maxIters=2000, confidence=0.999)


def corner_error(
    hom: npt.NDArray[Any] | None, true: npt.NDArray[np.float64], w: int, h: int
) -> float:
    """Mean distance (px) between the query outline mapped by `hom` and by `true`."""
    if hom is None:
        return float("inf")
    outline = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], dtype=np.float64)
    ours = cv2.perspectiveTransform(outline, np.asarray(hom, dtype=np.float64))[0]
    return float(np.linalg.norm(ours - cv2.perspectiveTransform(outline, true)[0], axis=1).mean())


def bench_feature(repeats: int = 5) -> list[dict[str, Any]]:
    """Time ``match_features`` against the bare OpenCV pipeline; one row per measurement.

    Parameters
    ----------
    repeats : int
        Interleaved runs per row; the median is reported.

    Returns
    -------
    list of dict
        ``{"name", "baseline_ms", "aerovision_ms", "ratio", "note"}``: every detector
        with FLANN at 640x480 and ~1 MP, with BFMatcher at 640x480, then the
        homography step alone (MAGSAC++ against RANSAC) at 640x480.
    """
    rows: list[dict[str, Any]] = []
    cases = [(size, d, "FLANN") for size in SIZES for d in DETECTORS]
    cases += [(SIZES[0], d, "BFMatcher") for d in DETECTORS]
    pairs = {size: build_pair(size) for size in SIZES}
    for size, detector, matcher in cases:
        query, train, true = pairs[size]
        result = match_features(query, train, detector=detector, matcher=matcher)
        error = corner_error(result.homography, true, *size)
        base, ours = median_pair(
            partial(bare_pipeline, query, train, detector, matcher),
            partial(match_features, query, train, detector=detector, matcher=matcher),
            repeats,
        )
        rows.append(
            row(
                f"feature {detector}+{matcher} {size[0]}x{size[1]}",
                base,
                ours,
                f"corner error {error:.2f} px; {result.good_matches} good, "
                f"{result.inliers} inliers, found={result.found}",
            )
        )

    query, train, true = pairs[SIZES[0]]
    for detector in DETECTORS:
        src, dst = good_points(query, train, detector, "FLANN")
        magsac = partial(
            cv2.findHomography, src, dst, cv2.USAC_MAGSAC, 3.0, maxIters=2000, confidence=0.999
        )
        ransac = partial(
            cv2.findHomography, src, dst, cv2.RANSAC, 3.0, maxIters=2000, confidence=0.999
        )
        base, ours = median_pair(magsac, ransac, max(repeats, 20))
        rows.append(
            row(
                f"homography MAGSAC++ vs RANSAC {detector} 640x480",
                base,
                ours,
                f"{len(src)} matches; corner error MAGSAC++ "
                f"{corner_error(magsac()[0], true, *SIZES[0]):.2f} px, "
                f"RANSAC {corner_error(ransac()[0], true, *SIZES[0]):.2f} px "
                "(aerovision column = RANSAC)",
            )
        )
    return rows


if __name__ == "__main__":
    table = bench_feature()
    width = max(len(r["name"]) for r in table)
    print(f"{'name':<{width}}  {'baseline ms':>11}  {'aerovision ms':>13}  {'ratio':>6}  note")
    for r in table:
        print(
            f"{r['name']:<{width}}  {r['baseline_ms']:>11.2f}  {r['aerovision_ms']:>13.2f}  "
            f"{r['ratio']:>6.3f}  {r['note']}"
        )
