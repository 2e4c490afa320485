"""Pictures of point clouds: the surface-matching result and PLY thumbnails.

Points are drawn by orthographic projection and square splats, with a z-buffer
(the nearest point wins each pixel, whatever the drawing order) and Lambert
shading from the normals, in numpy only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud

Image = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

BACKGROUND: Final = (32, 32, 32)
SCENE_COLOUR: Final = (200, 200, 200)
MODEL_COLOUR: Final = (60, 200, 60)
"""BGR colours: scene points grey, the posed model green."""

_MAX_DRAWN: Final = 200_000
"""Clouds larger than this are thinned (evenly, deterministically) before drawing."""

_SIZE_LIMIT: Final = 8192


def _rotation_x(deg: float) -> FloatArray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_y(deg: float) -> FloatArray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@lru_cache(maxsize=1)
def _views() -> tuple[tuple[str, FloatArray], ...]:
    """The three views: rows are the screen x (right), screen y (up) and towards-the-viewer axes."""
    return (
        ("front (x, y)", np.eye(3)),
        ("side (z, y)", _rotation_y(-90.0)),
        ("top (x, z)", _rotation_x(90.0)),
    )


@lru_cache(maxsize=1)
def _thumbnail_view() -> FloatArray:
    """An oblique view from above and to the side."""
    view: FloatArray = _rotation_x(25.0) @ _rotation_y(-35.0)
    return view


def render_alignment(
    model: PointCloud,
    scene: PointCloud,
    pose: npt.NDArray[np.float64] | None,
    *,
    size: tuple[int, int] = (900, 300),
) -> Image:
    """Draw the scene with the posed model overlaid, from three orthographic views.

    Parameters
    ----------
    model : PointCloud
        The model, in model coordinates.
    scene : PointCloud
        The scene.
    pose : (4, 4) array or None
        Model-to-scene transform (``SurfaceResult.pose``); None draws the scene
        alone and says that no pose was found.
    size : (width, height)
        Picture size in pixels; the width is split into three panels (front,
        side and top views, all at the same scale). Each side in [96, 8192].

    Returns
    -------
    (height, width, 3) uint8 array
        BGR picture: scene points grey, model points green, shaded by their
        normals; nearer points hide farther ones, and the model wins ties
        with the surface it lies on.

    Raises
    ------
    InputError
        Arguments of the wrong type, a pose that is not a finite 4×4 array,
        or a size out of range.

    Examples
    --------
    >>> cloud = PointCloud(np.random.default_rng(0).normal(size=(100, 3)), np.ones((100, 3)))
    >>> render_alignment(cloud, cloud, np.eye(4)).shape
    (300, 900, 3)
    """
    width, height = _check_size(size, min_side=96)
    if not isinstance(model, PointCloud) or not isinstance(scene, PointCloud):
        raise InputError("model and scene must be PointCloud objects")
    clouds: list[tuple[FloatArray, FloatArray, tuple[int, int, int], float]] = [
        (*_thin(scene.points, scene.normals), SCENE_COLOUR, 0.0)
    ]
    if pose is not None:
        matrix = _check_pose(pose)
        points, normals = _thin(model.points, model.normals)
        rot, trans = matrix[:3, :3], matrix[:3, 3]
        clouds.append((points @ rot.T + trans, normals @ rot.T, MODEL_COLOUR, 1.0))

    panel_w = width // 3
    everything = np.concatenate([c[0] for c in clouds])
    centre = (everything.min(axis=0) + everything.max(axis=0)) / 2.0
    extent = max(
        float(np.ptp(everything @ view[:2].T, axis=0).max(initial=0.0)) for _, view in _views()
    )
    scale = 0.88 * min(panel_w, height - 24) / max(extent, 1e-12)
    # the model is drawn a little nearer than it is, so it wins over the surface it lies on
    bias = 0.05 * float(np.linalg.norm(np.ptp(clouds[-1][0], axis=0))) if pose is not None else 0.0

    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for k, (name, view) in enumerate(_views()):
        x0 = k * panel_w
        w = width - x0 if k == 2 else panel_w
        panel = np.empty((height, w, 3), dtype=np.uint8)
        panel[:] = BACKGROUND
        _draw(panel, clouds, view, centre, scale, bias, lift=6)
        cv2.putText(
            panel, name, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA
        )
        canvas[:, x0 : x0 + w] = panel
        if k:
            canvas[:, x0] = (90, 90, 90)
    if pose is None:
        label, colour = "no pose found: scene only", (80, 80, 255)
    else:
        label, colour = "green: posed model   grey: scene", (230, 230, 230)
    cv2.putText(
        canvas, label, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
    )
    return canvas


def render_cloud_thumbnail(cloud: PointCloud, long_side: int = 256) -> Image:
    """Draw a point cloud from an oblique view, as a small picture.

    Parameters
    ----------
    cloud : PointCloud
        The points to draw.
    long_side : int
        Pixels along the picture's longer side, in [32, 8192]; the other side
        follows the cloud's projected shape (at least 32).

    Returns
    -------
    (H, W, 3) uint8 array
        BGR picture, points shaded by their normals on a dark background.

    Raises
    ------
    InputError
        `cloud` is not a PointCloud or `long_side` is out of range.

    Examples
    --------
    >>> cloud = PointCloud(np.random.default_rng(0).normal(size=(100, 3)), np.ones((100, 3)))
    >>> max(render_cloud_thumbnail(cloud, 128).shape[:2])
    128
    """
    if not isinstance(cloud, PointCloud):
        raise InputError(f"cloud must be a PointCloud, got {type(cloud).__name__}")
    if isinstance(long_side, bool) or not isinstance(long_side, (int, np.integer)):
        raise InputError(f"long_side must be an integer in [32, {_SIZE_LIMIT}], got {long_side!r}")
    if not 32 <= long_side <= _SIZE_LIMIT:
        raise InputError(f"long_side must be in [32, {_SIZE_LIMIT}], got {long_side}")
    points, normals = _thin(cloud.points, cloud.normals)
    view = _thumbnail_view()
    screen = points @ view[:2].T
    lo, hi = screen.min(axis=0), screen.max(axis=0)
    span_x, span_y = (float(v) for v in hi - lo)
    longest = max(span_x, span_y)
    side = int(long_side)
    if longest <= 0.0:  # a single point, or all points on the line of sight
        w = h = side
        longest = 1.0
    else:
        w = side if span_x >= span_y else max(32, math.ceil(side * span_x / longest))
        h = side if span_y > span_x else max(32, math.ceil(side * span_y / longest))
    canvas = np.empty((h, w, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    centre = np.linalg.lstsq(view[:2], (lo + hi) / 2.0, rcond=None)[0]
    _draw(
        canvas,
        [(points, normals, (235, 200, 150), 0.0)],
        view,
        centre,
        0.9 * side / longest,
        0.0,
    )
    return canvas


def _check_size(size: object, *, min_side: int) -> tuple[int, int]:
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    )
    if not ok:
        raise InputError(f"size must be (width, height) in pixels, got {size!r}")
    width, height = int(size[0]), int(size[1])  # type: ignore[index]
    if not (min_side <= width <= _SIZE_LIMIT and min_side <= height <= _SIZE_LIMIT):
        raise InputError(
            f"size must be within [{min_side}, {_SIZE_LIMIT}] on each side, got {size!r}"
        )
    return width, height


def _check_pose(pose: object) -> FloatArray:
    try:
        matrix = np.asarray(pose, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("pose must be a 4×4 array of numbers") from exc
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise InputError(f"pose must be a finite 4×4 array, got shape {matrix.shape}")
    return matrix


def _thin(points: FloatArray, normals: FloatArray) -> tuple[FloatArray, FloatArray]:
    if points.shape[0] <= _MAX_DRAWN:
        return points, normals
    pick = np.linspace(0, points.shape[0] - 1, _MAX_DRAWN).astype(np.intp)
    return points[pick], normals[pick]


def _draw(
    canvas: Image,
    clouds: list[tuple[FloatArray, FloatArray, tuple[int, int, int], float]],
    view: FloatArray,
    centre: FloatArray,
    scale: float,
    bias: float,
    *,
    lift: int = 0,
) -> None:
    """Splat the clouds into the contiguous `canvas` (in place) through the rotation `view`,
    `centre` at the middle of the canvas raised by `lift` pixels."""
    h, w = canvas.shape[:2]
    xs, ys, depth, colour, radii = [], [], [], [], []
    for points, normals, base, weight in clouds:
        local = (points - centre) @ view.T
        # splat radius from the density: squares about as wide as the gaps between the
        # points on screen (about half of a closed surface faces the viewer)
        area = float(np.prod(np.ptp(local[:, :2], axis=0) * scale + 1.0))
        gap = math.sqrt(2.0 * area / points.shape[0])
        radii.append(np.full(points.shape[0], min(int(gap / 2.0 + 0.5), 4), dtype=np.intp))
        shade = 0.35 + 0.65 * np.clip(normals @ view[2], 0.0, 1.0)
        xs.append(np.rint(w / 2 + local[:, 0] * scale).astype(np.intp))
        ys.append(np.rint(h / 2 - lift - local[:, 1] * scale).astype(np.intp))
        depth.append(local[:, 2] + weight * bias)
        colour.append((shade[:, None] * np.array(base, dtype=np.float64)).astype(np.uint8))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    z = np.concatenate(depth)
    rgb = np.concatenate(colour)
    size = np.concatenate(radii)
    # z-buffer: rank the points nearest first, then per pixel keep the lowest rank
    near_first = np.argsort(-z, kind="stable")
    rank = np.empty(x.size, dtype=np.int64)
    rank[near_first] = np.arange(x.size)
    offsets = np.arange(-4, 5)
    dx, dy = (d.ravel() for d in np.meshgrid(offsets, offsets))
    ring = np.maximum(np.abs(dx), np.abs(dy))
    keys = []
    for r in np.unique(size).tolist():  # each splat size with its own offsets
        sel = np.flatnonzero(size == r)
        ox, oy = dx[ring <= r], dy[ring <= r]
        px = (x[sel, None] + ox).ravel()
        py = (y[sel, None] + oy).ravel()
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        keys.append((py[inside] * w + px[inside]) * x.size + np.repeat(rank[sel], ox.size)[inside])
    key = np.concatenate(keys)
    key.sort()
    pixel = key // x.size
    first = np.flatnonzero(np.diff(pixel, prepend=-1))
    flat = canvas.reshape(-1, 3)
    flat[pixel[first]] = rgb[near_first[key[first] % x.size]]
