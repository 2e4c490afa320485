"""Result pictures for template matching: boxes on the image, and the score heat map."""

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
