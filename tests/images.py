"""Test images made by the tests themselves (real photographs from scikit-image's wheel)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data as skdata


def photo(name: str = "astronaut") -> np.ndarray:
    """A real photograph as BGR uint8."""
    image = getattr(skdata, name)()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def scene_with_patch(
    k: int, *, size: tuple[int, int] = (480, 640), patch: int = 48, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A coffee-photo scene with a patch of the astronaut pasted ``k`` times.

    Returns ``(scene, template, [(x, y), ...])``; each pasted copy gets mild
    Gaussian noise (sigma 3 grey levels).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    scene = cv2.resize(photo("coffee"), (w, h), interpolation=cv2.INTER_AREA)
    template = photo("astronaut")[100 : 100 + patch, 180 : 180 + patch].copy()
    positions: list[tuple[int, int]] = []
    cols = w // (patch * 2)
    cells = rng.permutation(cols * (h // (patch * 2)))[:k]
    for cell in cells:
        x = int(cell % cols) * patch * 2 + int(rng.integers(0, patch // 2))
        y = int(cell // cols) * patch * 2 + int(rng.integers(0, patch // 2))
        noisy = template.astype(np.float32) + rng.normal(0, 3, template.shape)
        scene[y : y + patch, x : x + patch] = np.clip(noisy, 0, 255).astype(np.uint8)
        positions.append((x, y))
    return scene, template, positions


def scene_with_degraded_patch(*, blur: float = 1.5, noise: float = 12.0, seed: int = 0) -> tuple[
    np.ndarray, np.ndarray, tuple[int, int]
]:
    """A scene holding one blurred, noisy copy of the patch (TM_CCOEFF_NORMED ≈ 0.87).

    Found at threshold 0.7, not at 0.95: what a fallback chain is for.
    """
    rng = np.random.default_rng(seed)
    scene = cv2.resize(photo("coffee"), (640, 480), interpolation=cv2.INTER_AREA)
    patch = photo("astronaut")[100:148, 180:228].copy()
    degraded = cv2.GaussianBlur(patch, (0, 0), blur).astype(np.float32)
    degraded += rng.normal(0, noise, patch.shape)
    scene[200:248, 300:348] = np.clip(degraded, 0, 255).astype(np.uint8)
    return scene, patch, (300, 200)
