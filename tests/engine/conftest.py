"""Shared data for the engine tests: real photographs (from scikit-image's wheel) and
helpers that build scenes with known answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

Image = npt.NDArray[np.uint8]
Position = tuple[int, int]

#: Top-left corners (x, y) of up to five non-overlapping 48x48 pastes in a 600x400 scene.
PASTE_POSITIONS: tuple[Position, ...] = ((40, 30), (300, 60), (500, 200), (120, 300), (420, 330))


def _bgr(rgb: Image) -> Image:
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)


def paste_scene(
    scene: Image, patch: Image, positions: Sequence[Position], *, sigma: float = 3.0, seed: int = 0
) -> Image:
    """`scene` with `patch` pasted at each (x, y), plus Gaussian noise of `sigma` grey levels."""
    out = scene.astype(np.float32)
    ph, pw = patch.shape[:2]
    for x, y in positions:
        out[y : y + ph, x : x + pw] = patch
    out += np.random.default_rng(seed).normal(0.0, sigma, out.shape).astype(np.float32)
    return np.asarray(np.clip(out + 0.5, 0, 255), dtype=np.uint8)


def box_iou(a: Sequence[int], b: Sequence[int]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def max_pairwise_iou(boxes: npt.NDArray[np.int64]) -> float:
    """Largest IoU between two different rows of an (N, 4) array of (x, y, w, h) boxes."""
    if len(boxes) < 2:
        return 0.0
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    ix = np.clip(np.minimum.outer(x + w, x + w) - np.maximum.outer(x, x), 0, None)
    iy = np.clip(np.minimum.outer(y + h, y + h) - np.maximum.outer(y, y), 0, None)
    inter = ix * iy
    iou = inter / (np.add.outer(w * h, w * h) - inter)
    np.fill_diagonal(iou, 0.0)
    return float(iou.max())


@pytest.fixture(scope="session")
def coffee() -> Image:
    """400x600 BGR photograph: the scene."""
    return _bgr(skimage.data.coffee())  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def astronaut() -> Image:
    """512x512 BGR photograph: the source of the patches."""
    return _bgr(skimage.data.astronaut())  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def patch(astronaut: Image) -> Image:
    """A textured 48x48 BGR crop of the astronaut (grey std ~37), not present in `coffee`."""
    return astronaut[100:148, 200:248].copy()


@pytest.fixture(scope="session")
def paste() -> Callable[..., Image]:
    return paste_scene
