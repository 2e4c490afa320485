"""Result pictures: boxes and a score heat map for template matching, and both images side
by side with their matches and the found outline for feature matching."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError
from aerovision.engine.imageio import flatten_alpha


class _Box(Protocol):
    """Anything with a box and a score, like :class:`~aerovision.engine.template.Match`."""

    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def w(self) -> int: ...
    @property
    def h(self) -> int: ...
    @property
    def score(self) -> float: ...


def draw_matches(
    image: npt.NDArray[np.uint8],
    matches: Iterable[_Box],
    *,
    color: tuple[int, int, int] = (0, 255, 0),
) -> npt.NDArray[np.uint8]:
    """Draw each match's box and score on a copy of `image`.

    Parameters
    ----------
    image : (H, W[, C]) uint8 array
        Grey, BGR or BGRA (composited over white).
    matches : iterable of Match
        Anything with ``x, y, w, h, score``; the first one is drawn on top.
    color : (B, G, R) tuple of int
        Box colour, each in 0-255.

    Returns
    -------
    (H, W, 3) uint8 array
        BGR picture; line width and text size grow with the image so the labels
        stay readable (white text on a box-coloured band, dark outline).

    Examples
    --------
    >>> from aerovision.engine.template import Match
    >>> draw_matches(np.zeros((100, 200), np.uint8), [Match(10, 20, 30, 30, 0.9)]).shape
    (100, 200, 3)
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputError("image must be a uint8 numpy array")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"image must be (H, W) or (H, W, C) with C in 1, 3, 4; got {image.shape}")
    if image.size == 0:
        raise InputError("image is empty")
    if len(color) != 3 or not all(
        isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color
    ):
        raise InputError(f"color must be three integers in 0-255 (B, G, R), got {color!r}")
    if image.ndim == 3 and image.shape[2] == 4:
        canvas = flatten_alpha(image)
    elif image.ndim == 2 or image.shape[2] == 1:
        canvas = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    else:
        canvas = image.copy()
    canvas = np.ascontiguousarray(canvas)

    h, w = canvas.shape[:2]
    size = max(h, w) / 1000.0
    thickness = max(1, round(2 * size))
    font_scale = max(0.4, 0.6 * size)
    text_thickness = max(1, round(1.5 * size))
    font = cv2.FONT_HERSHEY_SIMPLEX
    bgr = tuple(int(c) for c in color)
    outline = (0, 0, 0)

    boxes: Sequence[_Box] = list(matches)
    for m in reversed(boxes):  # the best match ends up on top
        x0, y0, x1, y1 = int(m.x), int(m.y), int(m.x + m.w - 1), int(m.y + m.h - 1)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), outline, thickness + 2, cv2.LINE_AA)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), bgr, thickness, cv2.LINE_AA)
        label = f"{float(m.score):.2f}"
        (tw, th), base = cv2.getTextSize(label, font, font_scale, text_thickness)
        pad = max(1, thickness)
        top = y0 - th - base - 2 * pad
        if top < 0:  # no room above: put the label inside the box, at its top
            top = y0 + thickness
        left = min(max(x0, 0), max(w - tw - 2 * pad, 0))
        cv2.rectangle(
            canvas, (left, top), (left + tw + 2 * pad, top + th + base + 2 * pad), bgr, cv2.FILLED
        )
        origin = (left + pad, top + pad + th)
        cv2.putText(
            canvas, label, origin, font, font_scale, outline, text_thickness + 2, cv2.LINE_AA
        )
        cv2.putText(
            canvas, label, origin, font, font_scale, (255, 255, 255), text_thickness, cv2.LINE_AA
        )
    return canvas


def heatmap_image(
    score_map: npt.NDArray[Any],
    image_shape: tuple[int, ...],
    template_shape: tuple[int, ...],
) -> npt.NDArray[np.uint8]:
    """Colour the score map (TURBO) at image size, each score at its window's centre.

    Parameters
    ----------
    score_map : (H - h + 1, W - w + 1) array
        Scores in [0, 1] (``TemplateResult.score_map``); NaN counts as 0.
    image_shape : tuple of int
        ``image.shape``: (H, W[, C]).
    template_shape : tuple of int
        ``template.shape``: (h, w[, C]).

    Returns
    -------
    (H, W, 3) uint8 array
        BGR; pixel ``(x + w // 2, y + h // 2)`` shows the score of the box whose
        top-left corner is ``(x, y)``; the border where no window fits shows 0.

    Examples
    --------
    >>> heatmap_image(np.ones((3, 5), np.float32), (10, 12), (8, 8)).shape
    (10, 12, 3)
    """
    if not isinstance(score_map, np.ndarray) or score_map.ndim != 2:
        raise InputError("score_map must be a 2-D numpy array")
    if len(image_shape) < 2 or len(template_shape) < 2:
        raise InputError("image_shape and template_shape must be (height, width[, channels])")
    ih, iw = int(image_shape[0]), int(image_shape[1])
    th, tw = int(template_shape[0]), int(template_shape[1])
    expected = (ih - th + 1, iw - tw + 1)
    if score_map.shape != expected:
        raise InputError(
            f"score_map is {score_map.shape[1]}×{score_map.shape[0]} but a {tw}×{th} template "
            f"on a {iw}×{ih} image gives {expected[1]}×{expected[0]}"
        )
    levels = np.nan_to_num(score_map.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    levels = np.clip(levels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    canvas = np.zeros((ih, iw), dtype=np.uint8)
    canvas[th // 2 : th // 2 + expected[0], tw // 2 : tw // 2 + expected[1]] = levels
    return np.asarray(cv2.applyColorMap(canvas, cv2.COLORMAP_TURBO), dtype=np.uint8)


class _FeatureMatches(Protocol):
    """What :func:`draw_feature_matches` reads, like
    :class:`~aerovision.engine.feature.FeatureResult`."""

    @property
    def detector(self) -> str: ...
    @property
    def matcher(self) -> str: ...
    @property
    def good_matches(self) -> int: ...
    @property
    def inliers(self) -> int: ...
    @property
    def found(self) -> bool: ...
    @property
    def corners(self) -> npt.NDArray[np.float64] | None: ...
    @property
    def query_points(self) -> npt.NDArray[np.float32]: ...
    @property
    def train_points(self) -> npt.NDArray[np.float32]: ...
    @property
    def inlier_mask(self) -> npt.NDArray[np.bool_]: ...


INLIER_COLOR: tuple[int, int, int] = (255, 191, 0)
"""BGR of inlier lines (azure); the three colours stay apart for colour-blind readers."""
OUTLIER_COLOR: tuple[int, int, int] = (0, 64, 255)
"""BGR of outlier lines and dots (vermilion)."""
OUTLINE_COLOR: tuple[int, int, int] = (0, 230, 255)
"""BGR of the found object's outline on the train image (yellow)."""

_GAP = 8  # px between the two images
_MIN_BODY = 240  # smaller pictures are enlarged to this height
_MAX_BAND = 64  # caption band height limit
_MAX_LINES = 300  # lines drawn per kind; the best matches come first
_FEW_INLIERS = 10  # below this, outliers get (faded) lines too


def draw_feature_matches(
    query: npt.NDArray[np.uint8],
    train: npt.NDArray[np.uint8],
    result: _FeatureMatches,
    *,
    max_width: int = 2400,
    max_height: int = 1600,
) -> npt.NDArray[np.uint8]:
    """Show the query and train images side by side with their matches and the outline.

    Parameters
    ----------
    query, train : (h, w[, C]) uint8 arrays
        The images given to :func:`~aerovision.engine.feature.match_features`:
        grey, BGR or BGRA (composited over white).
    result : FeatureResult
        Its matches (``query_points``, ``train_points``, ``inlier_mask``, in the
        images' pixels), counts, ``corners`` and ``found``.
    max_width, max_height : int
        Size limits of the picture, >= 64; both images shrink together to fit.

    Returns
    -------
    (H, W, 3) uint8 array
        BGR picture: a caption band on top, the query on the left, the train image
        on the right. With 10 inliers or more, inliers are joined by azure lines and
        outliers shown as vermilion dots only; with fewer, every match gets a line,
        outliers faded. At most 300 lines of each kind, best matches first. When
        ``found``, the query outline is drawn on the train image in yellow.

    Notes
    -----
    When one image is more than 1.5 times taller than the other, the shorter one
    is enlarged (at most 4 times) towards the other's height, so both stay legible;
    pictures under 240 pixels tall are enlarged to that height; 8 pixels separate
    the two images. Match coordinates are mapped with each image's own scale.

    Examples
    --------
    >>> from aerovision.engine.feature import match_features
    >>> flat = np.zeros((300, 400), np.uint8)
    >>> draw_feature_matches(flat, flat, match_features(flat, flat)).shape  # 28-px caption
    (328, 808, 3)
    """
    q = _bgr_canvas("query", query)
    t = _bgr_canvas("train", train)
    for name, value in (("max_width", max_width), ("max_height", max_height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 64:
            raise InputError(f"{name} must be an integer >= 64, got {value!r}")
    q_pts = np.asarray(result.query_points, dtype=np.float64).reshape(-1, 2)
    t_pts = np.asarray(result.train_points, dtype=np.float64).reshape(-1, 2)
    mask = np.asarray(result.inlier_mask, dtype=bool).reshape(-1)
    if not len(q_pts) == len(t_pts) == len(mask):
        raise InputError(
            f"result has {len(q_pts)} query points, {len(t_pts)} train points and "
            f"{len(mask)} inlier flags: they must be equal"
        )

    (qh, qw), (th, tw) = q.shape[:2], t.shape[:2]
    (q_h0, q_w0), (t_h0, t_w0) = (qh, qw), (th, tw)
    sq = st = 1.0
    if max(qh, th) > 1.5 * min(qh, th):  # enlarge the shorter image towards the taller
        if qh < th:
            sq = min(th / qh, 4.0)
        else:
            st = min(qh / th, 4.0)
    body_h = max(qh * sq, th * st)
    body_w = qw * sq + tw * st
    grow = max(1.0, _MIN_BODY / body_h)  # tiny images: enlarge both
    fit = min(grow, (max_width - _GAP) / body_w, (max_height - _MAX_BAND) / body_h)
    sq, st = sq * fit, st * fit
    q = _resized(q, sq)
    t = _resized(t, st)
    (qh, qw), (th, tw) = q.shape[:2], t.shape[:2]
    width = qw + _GAP + tw
    size = max(qh, th, _MIN_BODY) / 1000.0

    verdict = "found" if result.found else "not found"
    caption = (
        f"{result.detector} + {result.matcher}: {int(result.good_matches)} good matches, "
        f"{int(result.inliers)} inliers - {verdict}"
    )
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.45, 0.7 * size)
    text_thickness = max(1, round(1.5 * size))
    (text_w, text_h), _ = cv2.getTextSize(caption, font, font_scale, text_thickness)
    if text_w > width - 12:  # narrow picture: smaller caption
        font_scale = max(0.25, font_scale * (width - 12) / text_w)
        (text_w, text_h), _ = cv2.getTextSize(caption, font, font_scale, text_thickness)
    band_h = min(_MAX_BAND, 2 * text_h + 4)
    canvas = np.full((band_h + max(qh, th), width, 3), 40, dtype=np.uint8)
    canvas[band_h : band_h + qh, :qw] = q
    canvas[band_h : band_h + th, qw + _GAP :] = t
    cv2.putText(
        canvas,
        caption,
        (6, band_h - (band_h - text_h) // 2),
        font,
        font_scale,
        (255, 255, 255),
        text_thickness,
        cv2.LINE_AA,
    )

    thickness = max(1, round(1.5 * size))
    radius = max(2, round(3 * size))
    q_xy = (q_pts + 0.5) * (qw / q_w0, qh / q_h0) - 0.5 + (0.0, band_h)
    t_xy = (t_pts + 0.5) * (tw / t_w0, th / t_h0) - 0.5 + (qw + _GAP, band_h)
    inl = np.flatnonzero(mask)[:_MAX_LINES]
    out = np.flatnonzero(~mask)[:_MAX_LINES]
    many = int(mask.sum()) >= _FEW_INLIERS
    faded = canvas.copy()
    for i in out.tolist():
        a, b = _pixel(q_xy[i]), _pixel(t_xy[i])
        if not many:
            cv2.line(faded, a, b, OUTLIER_COLOR, 1, cv2.LINE_AA)
        cv2.circle(faded, a, radius, OUTLIER_COLOR, -1, cv2.LINE_AA)
        cv2.circle(faded, b, radius, OUTLIER_COLOR, -1, cv2.LINE_AA)
    if len(out):
        cv2.addWeighted(faded, 0.6, canvas, 0.4, 0.0, dst=canvas)
    for i in inl.tolist():
        a, b = _pixel(q_xy[i]), _pixel(t_xy[i])
        cv2.line(canvas, a, b, INLIER_COLOR, thickness, cv2.LINE_AA)
        cv2.circle(canvas, a, radius, INLIER_COLOR, -1, cv2.LINE_AA)
        cv2.circle(canvas, b, radius, INLIER_COLOR, -1, cv2.LINE_AA)

    if result.found and result.corners is not None:
        outline = np.asarray(result.corners, dtype=np.float64).reshape(4, 2)
        outline = (outline + 0.5) * (tw / t_w0, th / t_h0) - 0.5
        poly = [np.round(outline * 16).astype(np.int32)]  # 4 fractional bits
        panel = canvas[band_h : band_h + th, qw + _GAP :]  # a view: the outline stays on it
        cv2.polylines(panel, poly, True, (0, 0, 0), 2 * thickness + 3, cv2.LINE_AA, shift=4)
        cv2.polylines(panel, poly, True, OUTLINE_COLOR, 2 * thickness + 1, cv2.LINE_AA, shift=4)
    return canvas


def _bgr_canvas(name: str, image: Any) -> npt.NDArray[np.uint8]:
    """A BGR copy of a grey, BGR or BGRA uint8 image (alpha over white)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputError(f"{name} must be a uint8 numpy array")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"{name} must be (H, W) or (H, W, C) with C in 1, 3, 4; got {image.shape}")
    if image.size == 0:
        raise InputError(f"{name} is empty")
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(flatten_alpha(image))
    if image.ndim == 2 or image.shape[2] == 1:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return np.ascontiguousarray(image)


def _resized(image: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, int(w * scale + 1e-6)), max(1, int(h * scale + 1e-6)))  # never over a limit
    if scale < 1.0:
        interpolation = cv2.INTER_AREA
    else:  # sharp pixels when enlarging a lot, smooth otherwise
        interpolation = cv2.INTER_NEAREST if scale >= 3.0 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), dtype=np.uint8)


def _pixel(xy: npt.NDArray[np.float64]) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))
