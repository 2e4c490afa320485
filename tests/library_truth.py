"""Ground truth for library search, made from scikit-image's photographs.

- library images: one crop of each of :data:`LIBRARY_PHOTOS`;
- near-duplicates of them: JPEG 50–95, resized 0.25–2×, cropped up to 10 %, gamma;
- objects: a library image warped by a known homography (scale 0.3–3× of its
  size, any rotation, some perspective), partly covered, pasted into one of the
  :data:`BACKGROUND_PHOTOS`, with the library image's outline in the query;
- distractors: crops of the background photos, which no library image shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import skimage

Image = npt.NDArray[np.uint8]

DATA = Path(skimage.__file__).parent / "data"

LIBRARY_PHOTOS = (
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png", "page.png",
    "coins.png", "moon.png", "hubble_deep_field.jpg", "retina.jpg", "brick.png", "gravel.png",
    "ihc.png", "logo.png", "motorcycle_left.png", "text.png",
)
BACKGROUND_PHOTOS = ("grass.png", "microaneurysms.png", "cell.png", "clock_motion.png",
                     "chessboard_RGB.png")


@cache
def photo(name: str) -> Image:
    """A photograph as BGR (or grey) uint8, long side at most 640."""
    image = cv2.imread(str(DATA / name), cv2.IMREAD_UNCHANGED)
    assert image is not None, name
    if image.dtype != np.uint8:
        low, high = float(image.min()), float(image.max())
        image = ((image - low) * (255.0 / max(high - low, 1e-9))).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    h, w = image.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def library_images() -> list[tuple[str, Image]]:
    """``(name, image)``: the central 80 % of each library photo."""
    out = []
    for name in LIBRARY_PHOTOS:
        image = photo(name)
        h, w = image.shape[:2]
        out.append((name.split(".")[0], image[h // 10: h - h // 10, w // 10: w - w // 10].copy()))
    return out


def colour(image: Image) -> Image:
    return image if image.ndim == 3 else _u8(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))


def _u8(array: object) -> Image:
    return np.asarray(array, dtype=np.uint8)


def near_duplicate(image: Image, rng: np.random.Generator) -> tuple[str, Image]:
    """One random near-duplicate of ``image`` and what was done to it."""
    kind = ["jpeg", "resize", "crop", "gamma"][int(rng.integers(4))]
    h, w = image.shape[:2]
    if kind == "jpeg":
        quality = int(rng.integers(50, 96))
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        return f"jpeg {quality}", _u8(cv2.imdecode(data, cv2.IMREAD_UNCHANGED))
    if kind == "resize":
        factor = float(np.exp(rng.uniform(math.log(0.25), math.log(2.0))))
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        return f"resize {factor:.2f}", _u8(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    if kind == "crop":
        share = rng.uniform(0.02, 0.10)  # of each side, split between both ends
        dx, dy = round(w * share), round(h * share)
        x0, y0 = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
        return f"crop {share:.2f}", image[y0: h - (dy - y0), x0: w - (dx - x0)].copy()
    gamma = float(rng.uniform(0.6, 1.6))
    table = ((np.arange(256) / 255.0) ** gamma * 255).round().astype(np.uint8)
    return f"gamma {gamma:.2f}", _u8(cv2.LUT(image, table))


@dataclass(frozen=True)
class ObjectQuery:
    query: Image
    polygon: npt.NDArray[np.float64]  # the library image's corners in the query
    note: str


def background(index: int, size: tuple[int, int] = (800, 600)) -> Image:
    """A cluttered scene (a background photo filling ``size``), colour."""
    image = colour(photo(BACKGROUND_PHOTOS[index % len(BACKGROUND_PHOTOS)]))
    return _u8(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))


def object_query(image: Image, rng: np.random.Generator, scene_index: int) -> ObjectQuery:
    """``image`` warped into a background scene (see the module docstring); the scene
    is 800×600, or larger for an object enlarged so much that it would not fit."""
    h, w = image.shape[:2]
    for _ in range(100):
        scale = float(np.exp(rng.uniform(math.log(0.3), math.log(3.0))))
        side = math.sqrt(w * h) * scale  # the object's size in the scene
        if side < 90:
            continue
        sw = max(800, round(side * 1.9))
        scene = background(scene_index, (sw, sw * 3 // 4))
        sh = scene.shape[0]
        angle = rng.uniform(0, 2 * math.pi)
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - [w / 2, h / 2]
        k = side / math.sqrt(w * h)
        rotation = np.array([[math.cos(angle), -math.sin(angle)],
                             [math.sin(angle), math.cos(angle)]])
        placed = corners @ rotation.T * k
        placed += rng.uniform(-0.08, 0.08, placed.shape) * side  # perspective
        centre = [rng.uniform(0, sw), rng.uniform(0, sh)]
        placed += centre
        if placed[:, 0].min() < 0 or placed[:, 1].min() < 0 or placed[:, 0].max() > sw \
                or placed[:, 1].max() > sh:
            continue
        src = corners + [w / 2, h / 2]
        homography = cv2.getPerspectiveTransform(src.astype(np.float32),
                                                 placed.astype(np.float32))
        warped = cv2.warpPerspective(colour(image), homography, (sw, sh))
        mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), homography, (sw, sh))
        out = scene.copy()
        out[mask > 0] = warped[mask > 0]
        # cover up to 30 % of the object's bounding box with another patch of the scene
        x0, y0 = placed.min(axis=0)
        x1, y1 = placed.max(axis=0)
        cover = rng.uniform(0.0, 0.3)
        cw, ch = int((x1 - x0) * math.sqrt(cover)), int((y1 - y0) * math.sqrt(cover))
        if cw > 4 and ch > 4:
            cx, cy = int(rng.uniform(x0, x1 - cw)), int(rng.uniform(y0, y1 - ch))
            patch = np.roll(scene, (sh // 3, sw // 3), axis=(0, 1))[cy:cy + ch, cx:cx + cw]
            out[cy:cy + ch, cx:cx + cw] = patch
        note = f"scale {scale:.2f}, {math.degrees(angle):.0f}°, covered {cover:.2f}"
        return ObjectQuery(out, placed, note)
    raise AssertionError("no placement found")


def distractors() -> list[Image]:
    """Crops of the background photos (no library image shows them)."""
    out = []
    for name in BACKGROUND_PHOTOS:
        image = colour(photo(name))
        h, w = image.shape[:2]
        out += [image[: h // 2 + h // 4, : w // 2 + w // 4].copy(), image[h // 4:, w // 4:].copy()]
    return out


def encode(image: Image, ext: str = ".png") -> bytes:
    return bytes(cv2.imencode(ext, image)[1].tobytes())
