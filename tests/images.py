"""Test images made by the tests themselves (real photographs from scikit-image's wheel)."""

from __future__ import annotations

import struct
import zlib

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


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG signature and IHDR claiming ``width``×``height``, and nothing else."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def png_bomb(width: int, height: int) -> bytes:
    """A tiny but valid grey PNG of width×height black pixels (a decompression bomb)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_header(width, height, colour=0) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def jpeg_with_orientation(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose APP1 EXIF block says ``orientation`` (hand-made, little-endian TIFF)."""
    jpeg = encode(image, ".jpg")
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]
