"""One image described: size, channels, colour statistics, sharpness and a histogram."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError

CHANNEL_NAMES = {1: ("gray",), 3: ("blue", "green", "red"), 4: ("blue", "green", "red", "alpha")}
"""OpenCV's channel order for a decoded image."""


@dataclass(frozen=True)
class ChannelStats:
    name: str
    mean: float
    std: float
    min: int
    max: int
    histogram: list[int]


@dataclass(frozen=True)
class InspectResult:
    width: int
    height: int
    channels: int
    channels_stats: list[ChannelStats]
    brightness: float
    """Mean of the grayscale image, 0–255."""
    contrast: float
    """Standard deviation of the grayscale image."""
    sharpness: float
    """Variance of the grayscale image's Laplacian: higher is sharper (blur drives it to 0)."""

    def summary(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "brightness": round(self.brightness, 3),
            "contrast": round(self.contrast, 3),
            "sharpness": round(self.sharpness, 3),
            "channel_stats": [
                {"name": c.name, "mean": round(c.mean, 3), "std": round(c.std, 3),
                 "min": c.min, "max": c.max, "histogram": c.histogram}
                for c in self.channels_stats
            ],
        }


def inspect_image(image: npt.NDArray[np.uint8], *, bins: int = 32) -> InspectResult:
    """Describe ``image`` (8-bit, 1, 3 or 4 channels as OpenCV decodes them)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise InputError("inspect needs a non-empty 8-bit image")
    if not 2 <= bins <= 256:
        raise InputError(f"bins must be 2–256, got {bins}")
    planes = image[:, :, None] if image.ndim == 2 else image
    channels = planes.shape[2]
    if channels not in CHANNEL_NAMES:
        raise InputError(f"inspect takes 1, 3 or 4 channels, got {channels}")
    stats = []
    for index, name in enumerate(CHANNEL_NAMES[channels]):
        plane = np.ascontiguousarray(planes[:, :, index])
        mean, std = cv2.meanStdDev(plane)
        low, high, _, _ = cv2.minMaxLoc(plane)
        counts = cv2.calcHist([plane], [0], None, [bins], [0, 256]).ravel()
        stats.append(ChannelStats(
            name, float(mean[0, 0]), float(std[0, 0]), int(low), int(high),
            [int(c) for c in counts],
        ))
    gray = _gray(planes)
    mean, std = cv2.meanStdDev(gray)
    laplacian = cv2.Laplacian(gray, cv2.CV_64F)
    return InspectResult(
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        channels=channels,
        channels_stats=stats,
        brightness=float(mean[0, 0]),
        contrast=float(std[0, 0]),
        sharpness=float(laplacian.var()),
    )


def _gray(planes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if planes.shape[2] == 1:
        return np.ascontiguousarray(planes[:, :, 0])
    code = cv2.COLOR_BGRA2GRAY if planes.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(planes, code), dtype=np.uint8)


BAR_COLOURS = {"gray": (80, 80, 80), "blue": (200, 80, 0), "green": (0, 160, 0),
               "red": (0, 0, 220), "alpha": (150, 150, 150)}


def histogram_picture(result: InspectResult, *, width: int = 512, height: int = 200) -> npt.NDArray[
    np.uint8
]:
    """The channels' histograms as lines on a white picture (BGR)."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    peak = max((max(c.histogram) for c in result.channels_stats), default=1) or 1
    for channel in result.channels_stats:
        counts = np.asarray(channel.histogram, dtype=np.float64)
        xs = np.linspace(0, width - 1, len(counts))
        ys = (height - 1) - counts / peak * (height - 10)
        points = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(canvas, [points], False, BAR_COLOURS[channel.name], 2, cv2.LINE_AA)
    return canvas
