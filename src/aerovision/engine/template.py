"""Template matching: ``cv2.matchTemplate``, scores in [0, 1], and greedy NMS.

The pipeline of :func:`match_template`:

1. check the arguments (``InputError`` with a message a user can act on);
2. bring image and template to the same colour space (grey or BGR); a template
   alpha channel becomes the ``mask`` of ``cv2.matchTemplate``;
3. turn the raw response into a score map: float32, finite, in [0, 1], higher is
   better ("absolute" for the ``*_NORMED`` methods, "relative" min-max for the
   others);
4. candidates = pixels with score >= threshold that are the maximum of their
   neighbourhood (a window of offsets NMS would suppress anyway);
5. greedy Non-Maximum Suppression, so no two reported boxes overlap with an IoU
   above ``nms_iou``, even on plateaus of equal scores.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError

METHODS: tuple[str, ...] = (
    "TM_CCOEFF_NORMED",
    "TM_CCORR_NORMED",
    "TM_SQDIFF_NORMED",
    "TM_CCOEFF",
    "TM_CCORR",
    "TM_SQDIFF",
)

_NORMED: Final = frozenset({"TM_CCOEFF_NORMED", "TM_CCORR_NORMED", "TM_SQDIFF_NORMED"})
_LOWER_IS_BETTER: Final = frozenset({"TM_SQDIFF", "TM_SQDIFF_NORMED"})
_ZERO_MEAN: Final = frozenset({"TM_CCOEFF", "TM_CCOEFF_NORMED"})

_WINDOW_CHECK_LIMIT: Final = 256
"""Up to this many pixels over the threshold, each is checked for being a local maximum
on its own; above it, the whole score map is dilated once."""

_PLATEAU_LIMIT: Final = 2048
"""Above this many local maxima (plateaus: flat template on a flat area), keep one per
cell of the local-maximum window before NMS."""

_MAX_NMS_CANDIDATES: Final = 100_000
"""Hard cap on the candidates given to NMS (only reachable with templates of a few
pixels at a low threshold); past it only the best-scoring ones are kept, so NMS
time stays bounded and ``filtered_matches`` is then a lower bound."""

_NMS_CHUNK: Final = 256
"""Candidates tested against the suppression raster in one vector operation."""

_FLAT_RESPONSE: Final = 1e-5
"""Relative spread under which an unnormalised response is rounding noise (OpenCV's
FFT correlation leaves ~1e-6 of the largest possible value on a truly flat map)."""

_ALPHA_OPAQUE_U8: Final = 128
"""Template pixels with alpha >= this (>= 0.5 for float templates) take part in matching."""

FloatMap = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Match:
    """One detection: the box ``(x, y, w, h)`` in image pixels and its score."""

    x: int
    y: int
    w: int
    h: int
    score: float

    def as_dict(self) -> dict[str, int | float]:
        """Return ``{"x", "y", "w", "h", "score"}`` with plain Python types, score to 4 decimals."""
        return {
            "x": int(self.x),
            "y": int(self.y),
            "w": int(self.w),
            "h": int(self.h),
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True, eq=False)
class TemplateResult:
    """Outcome of :func:`match_template`.

    Attributes
    ----------
    method : str
        The OpenCV method name used.
    matches : tuple of Match
        Best first, at most ``max_results``.
    filtered_matches : int
        Matches left after the threshold and NMS, before the ``max_results`` cut.
    best_score : float
        Maximum of ``score_map``, reported even when no match passes the threshold.
    score_mode : str
        ``"absolute"`` for the ``*_NORMED`` methods, ``"relative"`` for the others
        (min-max normalised over this response map, so 1.0 is "best in this image").
    score_map : (H - h + 1, W - w + 1) float32 array
        Read-only score of the box whose top-left corner is at each pixel; finite,
        in [0, 1], higher is better.

    Results compare by identity (``eq=False``): they hold an array.
    """

    method: str
    matches: tuple[Match, ...]
    filtered_matches: int
    best_score: float
    score_mode: str
    score_map: FloatMap

    def summary(self) -> dict[str, Any]:
        """Return the SPEC's ``result_data`` for a template task, with plain Python types."""
        return {
            "method": self.method,
            "matches_found": len(self.matches),
            "best_score": round(float(self.best_score), 4),
            "filtered_matches": int(self.filtered_matches),
            "matches": [m.as_dict() for m in self.matches],
            "score_mode": self.score_mode,
        }


def match_template(
    image: npt.NDArray[Any],
    template: npt.NDArray[Any],
    *,
    method: str = "TM_CCOEFF_NORMED",
    threshold: float = 0.8,
    max_results: int = 20,
    use_grayscale: bool = True,
    nms_iou: float = 0.3,
) -> TemplateResult:
    """Find every occurrence of `template` in `image`.

    Parameters
    ----------
    image : (H, W[, C]) array
        Scene, uint8 or float (float32/float64), grey, BGR or BGRA (C = 1, 3 or 4).
        An alpha channel on the image is ignored.
    template : (h, w[, C]) array
        What to look for, same dtype kind as `image` and no larger than it. A BGRA
        template uses its alpha as the matching mask: only pixels with alpha >= 128
        (>= 0.5 for float) count, so transparent corners of a PNG are ignored.
    method : str
        One of :data:`METHODS`.
    threshold : float
        Minimum score, in [0, 1]; the service restricts it to [0.1, 1].
    max_results : int
        At most this many matches are returned (>= 1).
    use_grayscale : bool
        Match on grey levels (default) or, if False, on the BGR colours; a grey
        input is then replicated to three channels when the other one has colour.
    nms_iou : float
        Boxes overlapping a better one with an IoU above this are suppressed, in [0, 1).

    Returns
    -------
    TemplateResult
        Matches best first, the survivors count, the best score and the score map.

    Raises
    ------
    InputError
        Unknown method, parameter out of range, unsupported array, empty or
        fully transparent template, template larger than the image, or a flat
        template with a TM_CCOEFF method (its correlation coefficient is undefined).

    Notes
    -----
    Scores: TM_CCOEFF_NORMED and TM_CCORR_NORMED give the response clipped to
    [0, 1]; TM_SQDIFF_NORMED gives ``1 - response``; the unnormalised methods
    give ``(v - min) / (max - min)`` (``(max - v) / (max - min)`` for TM_SQDIFF)
    over this response map, and a constant map gives zeros. Non-finite
    responses (masked matching over flat regions) count as the worst score.

    Candidates are the pixels scoring at least `threshold` that are also the
    maximum of their (2 rx + 1) × (2 ry + 1) neighbourhood, where (rx, ry) ≈ 0.32
    (w, h) for ``nms_iou=0.3`` is the largest offset at which two boxes still
    overlap by more than `nms_iou`: a pixel with a better neighbour that close
    would only ever report the same object again. (A few candidates are checked
    one by one, many with one grey dilation of the map: the result is the same.)
    All boxes have the template's size, so their IoU depends only on their
    offset; greedy NMS (best score first, ties in raster order) paints, for each
    kept box, the offsets whose IoU exceeds `nms_iou` into a raster, and keeps a
    candidate only if its pixel is still clear. On plateaus (a flat template on a
    flat area) the candidates are first cut to one per window-sized cell.

    Examples
    --------
    >>> scene = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    >>> result = match_template(scene, scene[30:62, 40:72])
    >>> (result.matches[0].x, result.matches[0].y, result.filtered_matches)
    (40, 30, 1)
    """
    _check_options(method, threshold, max_results, nms_iou)
    image = _check_array("image", image)
    template = _check_array("template", template)
    if (image.dtype == np.uint8) != (template.dtype == np.uint8):
        raise InputError(
            f"image is {image.dtype} but template is {template.dtype}: "
            "convert both to uint8 (or both to float) first"
        )
    ih, iw = image.shape[:2]
    th, tw = template.shape[:2]
    if th > ih or tw > iw:
        raise InputError(f"template ({tw}×{th}) is larger than the image ({iw}×{ih})")

    img, tpl, mask = _prepare(image, template, use_grayscale)
    if method in _ZERO_MEAN:
        _, std = cv2.meanStdDev(tpl, mask=mask)
        if not np.any(std > 0):
            raise InputError(
                f"the template is flat (all its pixels have the same value), so {method} "
                "cannot score it: use TM_SQDIFF_NORMED, or a template with some texture"
            )

    code = getattr(cv2, method)
    if mask is None:
        response = cv2.matchTemplate(img, tpl, code)
    else:
        response = cv2.matchTemplate(img, tpl, code, mask=mask)
    raw: FloatMap = np.asarray(response, dtype=np.float32)
    scale = 0.0
    if method not in _NORMED:  # largest possible |response|, to tell a flat map from noise
        if img.dtype == np.uint8:
            peak = float(max(int(img.max()), int(tpl.max())))
        else:
            peak = max(float(np.abs(img).max()), float(np.abs(tpl).max()))
        scale = float(tpl.size) * peak * peak
    # OpenCV guards its divisions, so only masks (0/0 over flat areas) and float inputs
    # (overflow) can leave NaN/Inf in the response
    check_finite = mask is not None or img.dtype != np.uint8
    score, best = _scores(raw, method, scale, check_finite)

    ys, xs, vals = _candidates(score, best, threshold, tw, th, nms_iou)
    top, survivors = _greedy_nms(ys, xs, vals, score.shape, tw, th, nms_iou, int(max_results))
    matches = tuple(Match(int(xs[i]), int(ys[i]), tw, th, float(vals[i])) for i in top.tolist())
    score.flags.writeable = False
    return TemplateResult(
        method=method,
        matches=matches,
        filtered_matches=survivors,
        best_score=best,
        score_mode="absolute" if method in _NORMED else "relative",
        score_map=score,
    )


def _check_options(method: str, threshold: float, max_results: int, nms_iou: float) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if not _is_real(threshold) or not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if isinstance(max_results, bool) or not isinstance(max_results, (int, np.integer)):
        raise InputError(f"max_results must be an integer >= 1, got {max_results!r}")
    if max_results < 1:
        raise InputError(f"max_results must be >= 1, got {max_results}")
    if not _is_real(nms_iou) or not 0.0 <= nms_iou < 1.0:
        raise InputError(f"nms_iou must be a number in [0, 1), got {nms_iou!r}")


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_array(name: str, a: object) -> npt.NDArray[Any]:
    if not isinstance(a, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim not in (2, 3):
        raise InputError(f"{name} must be a 2-D (grey) or 3-D (colour) array, got {a.ndim}-D")
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise InputError(f"{name} must have 1, 3 or 4 channels, got {a.shape[2]}")
    if a.dtype not in (np.uint8, np.float32, np.float64):
        raise InputError(f"{name} must be uint8, float32 or float64, got {a.dtype}")
    if a.size == 0:
        raise InputError(f"{name} is empty ({a.shape[1]}×{a.shape[0]} pixels)")
    if a.dtype != np.uint8:
        if not np.isfinite(a).all():
            raise InputError(f"{name} contains NaN or infinite values")
        a = a.astype(np.float32, copy=False)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return a


def _prepare(
    image: npt.NDArray[Any], template: npt.NDArray[Any], use_grayscale: bool
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[np.uint8] | None]:
    """Return (image, template, mask) in one colour space, ready for cv2.matchTemplate."""
    mask: npt.NDArray[np.uint8] | None = None
    if template.ndim == 3 and template.shape[2] == 4:
        alpha = template[:, :, 3]
        cut = _ALPHA_OPAQUE_U8 if template.dtype == np.uint8 else 0.5
        opaque = alpha >= cut
        if not opaque.any():
            raise InputError(
                "the template is fully transparent (no pixel has alpha >= 50%): "
                "there is nothing to match"
            )
        if not opaque.all():
            mask = opaque.astype(np.uint8) * np.uint8(255)

    if use_grayscale:
        image = _to_gray(image)
        template = _to_gray(template)
        return image, template, mask

    image, template = _drop_alpha(image), _drop_alpha(template)
    if image.ndim != template.ndim:  # one is grey: replicate it to BGR
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        else:
            template = cv2.cvtColor(template, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image), np.ascontiguousarray(template), mask


def _drop_alpha(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.ascontiguousarray(a[:, :, :3]) if a.ndim == 3 and a.shape[2] == 4 else a


def _to_gray(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Grey from grey, BGR or BGRA (alpha ignored)."""
    if a.ndim == 2:
        return np.ascontiguousarray(a)
    code = cv2.COLOR_BGR2GRAY if a.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(a), code))


def _scores(
    raw: FloatMap, method: str, scale: float = 0.0, check_finite: bool = True
) -> tuple[FloatMap, float]:
    """Turn a raw response into scores in [0, 1], in place; return (scores, best).

    `scale` bounds |response| for the unnormalised methods; a map whose spread is
    below ``_FLAT_RESPONSE * scale`` is FFT rounding noise and scores 0 everywhere.
    `check_finite` may be False only when NaN/Inf cannot occur (unmasked uint8).
    """
    # a float32 map has no NaN/Inf iff its (float64) sum is finite: one cheap pass
    if check_finite and not math.isfinite(cv2.sumElems(raw)[0]):
        finite = np.isfinite(raw)
        if method in _NORMED:
            worst = 1.0 if method in _LOWER_IS_BETTER else 0.0  # the raw value scoring 0
        elif finite.any():
            lo, hi, _, _ = cv2.minMaxLoc(raw, mask=finite.view(np.uint8))
            worst = hi if method in _LOWER_IS_BETTER else lo
        else:
            worst = 0.0
        raw[~finite] = worst

    lo, hi, lo_at, hi_at = cv2.minMaxLoc(raw)
    best_at = lo_at if method in _LOWER_IS_BETTER else hi_at  # (x, y)
    if method in _NORMED:
        if method in _LOWER_IS_BETTER:
            np.subtract(1.0, raw, out=raw)
            lo, hi = 1.0 - hi, 1.0 - lo
        if lo < 0.0:
            cv2.threshold(raw, 0.0, 0.0, cv2.THRESH_TOZERO, dst=raw)
        if hi > 1.0:
            cv2.threshold(raw, 1.0, 1.0, cv2.THRESH_TRUNC, dst=raw)
    else:
        span = hi - lo
        noise = max(
            _FLAT_RESPONSE * scale, 8 * float(np.finfo(np.float32).eps) * max(abs(hi), abs(lo))
        )
        if span <= noise:
            raw.fill(0.0)
        else:
            # float32 (v - lo) / (hi - lo) lies exactly in [0, 1]: lo and hi are float32 values
            if method in _LOWER_IS_BETTER:
                np.subtract(hi, raw, out=raw)
            else:
                np.subtract(raw, lo, out=raw)
            np.divide(raw, span, out=raw)
    return raw, float(raw[best_at[1], best_at[0]])


def _candidates(
    score: FloatMap, best: float, threshold: float, w: int, h: int, nms_iou: float
) -> tuple[IntArray, IntArray, FloatMap]:
    """Return (ys, xs, scores) of the pixels that are >= threshold and local maxima.

    A pixel below the maximum of its (2rx+1, 2ry+1) window has a better neighbour
    overlapping it by more than nms_iou, so it never names an object of its own.
    """
    thr = np.float32(threshold)
    if best < thr:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0, np.float32)
    flat = score.reshape(-1)
    rw = score.shape[1]
    rx, ry = _dominance_radius(w, h, nms_iou)
    passing = np.greater_equal(score, thr)

    if (rx or ry) and cv2.countNonZero(passing.view(np.uint8)) > _WINDOW_CHECK_LIMIT:
        # many: one dilation of the whole map finds the local maxima
        peaks = np.greater_equal(
            score, cv2.dilate(score, np.ones((2 * ry + 1, 2 * rx + 1), np.uint8))
        )
        index = np.flatnonzero(peaks)
        index = index[flat[index] >= thr]
        if index.size > _PLATEAU_LIMIT:
            ys, xs = _cell_winners(score, peaks & passing, rx + 1, ry + 1)
            return ys, xs, score[ys, xs]
        ys, xs = np.divmod(index, rw)
        return ys, xs, flat[index]

    index = np.flatnonzero(passing)
    ys, xs = np.divmod(index, rw)
    values = flat[index]
    if rx or ry:  # few: check their windows one by one
        peak = [
            float(score[max(y - ry, 0) : y + ry + 1, max(x - rx, 0) : x + rx + 1].max()) <= v
            for y, x, v in zip(ys.tolist(), xs.tolist(), values.tolist(), strict=True)
        ]
        keep = np.asarray(peak, dtype=bool)
        ys, xs, values = ys[keep], xs[keep], values[keep]
    return ys, xs, values


def _cell_winners(
    score: FloatMap, passing: npt.NDArray[np.bool_], cx: int, cy: int
) -> tuple[IntArray, IntArray]:
    """Best passing pixel of each cx-by-cy cell (first in raster order on ties)."""
    rh, rw = score.shape
    ny, nx = -(-rh // cy), -(-rw // cx)
    grid = np.full((ny * cy, nx * cx), -1.0, dtype=np.float32)
    np.copyto(grid[:rh, :rw], score, where=passing)
    rows = grid.reshape(ny * cy, nx, cx)
    col_in_cell = rows.argmax(axis=2)  # (ny*cy, nx)
    row_best = np.take_along_axis(rows, col_in_cell[:, :, None], axis=2)[:, :, 0]
    cells = row_best.reshape(ny, cy, nx)
    row_in_cell = cells.argmax(axis=1)  # (ny, nx)
    cell_best = np.take_along_axis(cells, row_in_cell[:, None, :], axis=1)[:, 0, :]
    iy, ix = np.nonzero(cell_best >= 0.0)
    ys = iy * cy + row_in_cell[iy, ix]
    xs = ix * cx + col_in_cell[ys, ix]
    return ys.astype(np.intp), xs.astype(np.intp)


def _pair_iou(dx: int, dy: int, w: int, h: int) -> float:
    """IoU of two w-by-h boxes offset by (dx, dy)."""
    inter = max(w - abs(dx), 0) * max(h - abs(dy), 0)
    return inter / (2 * w * h - inter)


@lru_cache(maxsize=64)
def _dominance_radius(w: int, h: int, nms_iou: float) -> tuple[int, int]:
    """Largest (rx, ry), about proportional to (w, h), with IoU at offset (rx, ry) > nms_iou."""
    # equal relative shift f on both axes: (1-f)^2 / (2 - (1-f)^2) > iou
    f = 1.0 - math.sqrt(2.0 * nms_iou / (1.0 + nms_iou))
    rx, ry = min(int(f * w), w - 1), min(int(f * h), h - 1)
    while (rx or ry) and not _pair_iou(rx, ry, w, h) > nms_iou:
        if rx * h >= ry * w:
            rx -= 1
        else:
            ry -= 1
    return rx, ry


@lru_cache(maxsize=64)
def _suppression_stencil(w: int, h: int, nms_iou: float) -> npt.NDArray[np.bool_]:
    """Offsets (centred) at which a box of the same size overlaps with IoU > nms_iou."""
    dx = np.arange(-(w - 1), w)
    dy = np.arange(-(h - 1), h)
    inter = (h - np.abs(dy))[:, None] * (w - np.abs(dx))[None, :]
    stencil = inter > nms_iou * (2 * w * h - inter)
    rows = np.flatnonzero(stencil.any(axis=1))
    cols = np.flatnonzero(stencil.any(axis=0))
    trimmed: npt.NDArray[np.bool_] = stencil[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    trimmed.flags.writeable = False
    return trimmed


def _greedy_nms(
    ys: IntArray,
    xs: IntArray,
    scores: FloatMap,
    shape: tuple[int, ...],
    w: int,
    h: int,
    nms_iou: float,
    max_results: int,
) -> tuple[IntArray, int]:
    """Return (indices of the best `max_results` kept candidates, best first, number kept).

    Ties in score are broken by raster order (top row first, then left first).
    """
    stencil = _suppression_stencil(w, h, nms_iou)
    sh, sw = stencil.shape
    if sh == 1 and sw == 1:
        # no two distinct boxes overlap enough to suppress each other: all are kept
        top = min(ys.size, max_results)
        pick = np.argpartition(-scores, top - 1)[:top] if top < ys.size else np.arange(ys.size)
        return pick[np.lexsort((xs[pick], ys[pick], -scores[pick]))], int(ys.size)
    if ys.size > _MAX_NMS_CANDIDATES:
        pick = np.argpartition(-scores, _MAX_NMS_CANDIDATES - 1)[:_MAX_NMS_CANDIDATES]
        order = pick[np.lexsort((xs[pick], ys[pick], -scores[pick]))]
    else:
        order = np.lexsort((xs, ys, -scores))
    oy, ox = sh // 2, sw // 2
    sys_, sxs = ys[order], xs[order]
    suppressed = np.zeros((shape[0] + sh - 1, shape[1] + sw - 1), dtype=bool)
    kept: list[int] = []
    for start in range(0, order.size, _NMS_CHUNK):
        cys = sys_[start : start + _NMS_CHUNK]
        cxs = sxs[start : start + _NMS_CHUNK]
        alive = np.flatnonzero(~suppressed[cys + oy, cxs + ox])
        for i in alive.tolist():
            y, x = int(cys[i]), int(cxs[i])
            if suppressed[y + oy, x + ox]:
                continue
            kept.append(start + i)
            window = suppressed[y : y + sh, x : x + sw]
            np.logical_or(window, stencil, out=window)
    return order[np.asarray(kept[:max_results], dtype=np.intp)], len(kept)
