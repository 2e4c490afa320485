"""What an image library keeps of each image, and how a query is checked against it.

An image is described once, when it is added (:func:`describe`):

- ``contsign`` — a 64-bit content signature of the decoded pixels (BLAKE2b): the
  same picture always gets the same signature, whatever file it came in (a PNG
  saved again with another compression level keeps it; a re-encoded JPEG does not);
- ``phash`` — a 64-bit perceptual hash (the signs of the 8×8 lowest frequencies of
  the DCT of a 32×32 grey thumbnail against their median): near-duplicates
  (re-encoded, resized, gamma) are a few bits apart, unrelated photographs ~32;
- ``vector`` — a global descriptor (:data:`VECTOR_SIZE` floats, unit length): the
  layout (low DCT frequencies), colours (an HSV histogram) and texture (gradient
  orientations in a 2×2 grid), for ``similar`` look-alikes and as a second way
  to find duplicates;
- ``features`` — up to :data:`LIBRARY_FEATURES` SIFT keypoints (the strongest,
  found on the image scaled to at most :data:`LIBRARY_LONG_SIDE` pixels), their
  positions in the image's own pixels, for the geometric check.

A query is described the same way with more keypoints (:func:`describe_query`),
and :class:`Verifier` checks it against one library image after another: SIFT
matches (RootSIFT, Lowe's ratio test) and a homography with the feature engine's
verdict (:func:`aerovision.engine.feature.locate_matches`), then whether the
match is the whole picture (``duplicate``) or an object in it (:func:`classify`).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine import feature
from aerovision.engine.errors import InputError

VECTOR_SIZE: Final = 192
"""Length of the global descriptor."""

LIBRARY_FEATURES: Final = 400
"""Keypoints kept per library image: the strongest SIFT responses."""

LIBRARY_LONG_SIDE: Final = 640
"""Library images are described at most this large (long side, pixels)."""

QUERY_FEATURES: Final = 20000
QUERY_LONG_SIDE: Final = 1024
QUERY_SHORTEST: Final = 400
"""Smaller queries are enlarged to this long side before looking for keypoints."""

RATIO: Final = 0.8
"""Lowe's ratio for library matches (RootSIFT)."""

MIN_INLIERS: Final = 12
"""A verified match has at least this many inliers."""

DUPLICATE_OVERLAP: Final = 0.7
"""A verified match is the same picture when the library image's outline in the query
and the query's frame overlap by at least this share of each (crops up to ~15 % per
side, any rotation)."""

HASH_DUPLICATE_BITS: Final = 10
"""Without keypoints to check (a flat logo, a tiny icon), two images are the same
picture when their perceptual hashes are at most this many bits apart..."""
HASH_DUPLICATE_COSINE: Final = 0.95
"""...and their global descriptors this alike."""

SURE_DUPLICATE_BITS: Final = 4
"""Hashes this close and layouts as alike as :data:`SURE_DUPLICATE_LAYOUT` are the
same picture without a geometric check (re-encoded, resized, brightened): a
``duplicate`` search answers them without looking for keypoints at all."""
SURE_DUPLICATE_LAYOUT: Final = 0.99

HASH_DUPLICATE_LAYOUT: Final = 0.95
"""Without keypoints to check, a layout this alike (and hashes within
:data:`HASH_DUPLICATE_BITS`) is the same picture too: gamma moves colours, so the
whole descriptor's cosine drops below :data:`HASH_DUPLICATE_COSINE` while the layout
stays."""

LAYOUT = slice(0, 64)
"""The layout part of the global descriptor (low DCT frequencies of the grey image)."""


def layout_cosine(a: FloatArray, b: FloatArray) -> float:
    """How alike two images' layouts are (brightness- and colour-blind), -1–1."""
    x, y = a[..., LAYOUT], b[..., LAYOUT]
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / norm if norm > 0 else 0.0

MatchType = Literal["duplicate", "object"]

FloatArray = npt.NDArray[np.float32]


_FEATURES_MAGIC: Final = b"AVF1"


@dataclass(frozen=True, eq=False)
class Features:
    """SIFT keypoints of one image: ``points`` (N, 2) float32 in the image's pixels,
    ``descriptors`` (N, 128) uint8 (OpenCV's SIFT values are whole numbers 0–255),
    ``size`` (width, height)."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        n = len(self.points)
        head = _FEATURES_MAGIC + struct.pack("<III", n, *self.size)
        return head + self.points.astype("<f4").tobytes() + self.descriptors.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        if data[:4] != _FEATURES_MAGIC or len(data) < 16:
            raise InputError("not a stored keypoint set")
        n, width, height = struct.unpack_from("<III", data, 4)
        if len(data) != 16 + n * 8 + n * 128:
            raise InputError("a stored keypoint set is truncated")
        points = np.frombuffer(data, dtype="<f4", count=n * 2, offset=16).reshape(n, 2)
        descriptors = np.frombuffer(data, dtype=np.uint8, count=n * 128, offset=16 + n * 8)
        return cls(points.astype(np.float32), descriptors.reshape(n, 128), (width, height))


@dataclass(frozen=True, eq=False)
class Description:
    """Everything a library keeps of one image (see the module docstring)."""

    contsign: int
    phash: int
    vector: FloatArray
    features: Features
    width: int
    height: int
    embedding: FloatArray | None = None
    """A semantic embedding (:mod:`aerovision.engine.embedder`), when a model is set."""


def split_contsign(sign: int) -> tuple[int, int]:
    """``(sign1, sign2)``: the high and low 32 bits, as the seed's wire format has them."""
    return (sign >> 32) & 0xFFFFFFFF, sign & 0xFFFFFFFF


def join_contsign(sign1: int, sign2: int) -> int:
    if not (0 <= sign1 <= 0xFFFFFFFF and 0 <= sign2 <= 0xFFFFFFFF):
        raise InputError("sign1 and sign2 are unsigned 32-bit integers")
    return (sign1 << 32) | sign2


def to_signed(value: int) -> int:
    """A uint64 as the int64 a database column holds (same bits)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def contsign(image: npt.NDArray[np.uint8]) -> int:
    """The content signature of a decoded image (its shape and pixels)."""
    digest = hashlib.blake2b(digest_size=8, person=b"aerovision-cs")
    digest.update(struct.pack("<3I", *image.shape, *(1,) * (3 - image.ndim)))
    digest.update(np.ascontiguousarray(image).data)
    return int.from_bytes(digest.digest(), "big")


def grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY), dtype=np.uint8)
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _bgr(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return image


def _dct32(grey_image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    small = cv2.resize(grey_image, (32, 32), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.dct(small.astype(np.float32)), dtype=np.float32)


def phash(image: npt.NDArray[np.uint8]) -> int:
    """The perceptual hash of an image (see the module docstring)."""
    low = _dct32(grey(image))[:8, :8].reshape(64)
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(hashes: npt.NDArray[np.uint64], value: int) -> npt.NDArray[np.uint8]:
    """Bits differing between each of ``hashes`` and ``value``."""
    counted: npt.NDArray[np.uint8] = np.bitwise_count(hashes ^ np.uint64(value)).astype(np.uint8)
    return counted


def global_vector(image: npt.NDArray[np.uint8]) -> FloatArray:
    """The global descriptor (see the module docstring), unit length."""
    bgr = _bgr(image)
    g = grey(bgr)
    layout = _dct32(g)[:8, :8].reshape(64).copy()
    layout[0] = 0.0  # brightness is not layout
    hsv = cv2.cvtColor(cv2.resize(bgr, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    colour = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 2], [0, 180, 0, 256, 0, 256])
    colour = np.sqrt(colour.reshape(96))
    small = cv2.resize(g, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1)
    magnitude, angle = cv2.cartToPolar(gx, gy)
    orientation = (np.floor(angle % math.pi / math.pi * 8).astype(int)) % 8
    texture = np.zeros((2, 2, 8), np.float32)
    for i in range(2):
        for j in range(2):
            cell = (slice(32 * i, 32 * i + 32), slice(32 * j, 32 * j + 32))
            texture[i, j] = np.bincount(
                orientation[cell].ravel(), magnitude[cell].ravel(), minlength=8
            )
    texture = np.sqrt(texture.reshape(32))
    parts = [(layout, 0.5), (colour, 0.65), (texture, 0.55)]
    vector = np.concatenate([_unit(part) * weight for part, weight in parts]).astype(np.float32)
    return _unit(vector)


def _unit(v: npt.NDArray[Any]) -> FloatArray:
    norm = float(np.linalg.norm(v))
    return np.asarray(v / norm if norm > 0 else v, dtype=np.float32)


_SIFT: cv2.SIFT | None = None


def features(
    image: npt.NDArray[np.uint8], *, max_features: int, long_side: int, at_least: int = 0
) -> Features:
    """The strongest ``max_features`` SIFT keypoints of ``image`` scaled to at most
    ``long_side`` pixels (and up to ``at_least``: a thumbnail-sized query has more
    keypoints enlarged), positions in the image's own pixels."""
    global _SIFT
    g = grey(image)
    h, w = g.shape
    scale = min(1.0, long_side / max(h, w))
    if max(h, w) < at_least:
        scale = at_least / max(h, w)
    if scale != 1.0:
        g = np.asarray(cv2.resize(g, (max(1, round(w * scale)), max(1, round(h * scale))),
                                  interpolation=cv2.INTER_AREA), dtype=np.uint8)
    if _SIFT is None:
        _SIFT = cv2.SIFT.create()
    empty = Features(np.empty((0, 2), np.float32), np.empty((0, 128), np.uint8), (w, h))
    if min(g.shape) < 16:
        return empty
    keypoints, descriptors = _SIFT.detectAndCompute(g, None)
    if descriptors is None or not keypoints:
        return empty
    order = _strongest_per_scale(keypoints, max_features)
    points = np.asarray(cv2.KeyPoint.convert([keypoints[i] for i in order]), np.float32)
    points = points.reshape(-1, 2) / scale
    desc = np.clip(np.rint(descriptors[order]), 0, 255).astype(np.uint8)
    return Features(points.astype(np.float32), desc, (w, h))


def _strongest_per_scale(keypoints: Sequence[cv2.KeyPoint], budget: int) -> list[int]:
    """Indices of ``budget`` keypoints: the strongest of each octave in turn, so an
    object seen much smaller than it is stored still has its coarse keypoints (the
    strongest of all are mostly fine ones, which vanish when it is small)."""
    by_octave: dict[int, list[int]] = {}
    for i in sorted(range(len(keypoints)), key=lambda i: -keypoints[i].response):
        octave = keypoints[i].octave & 0xFF
        by_octave.setdefault(octave - 256 if octave >= 128 else octave, []).append(i)
    chosen: list[int] = []
    queues = [by_octave[o] for o in sorted(by_octave)]
    while len(chosen) < budget and any(queues):
        for queue in queues:
            if queue and len(chosen) < budget:
                chosen.append(queue.pop(0))
    return chosen


def describe(image: npt.NDArray[np.uint8]) -> Description:
    """Everything a library keeps of ``image`` (a decoded grey, BGR or BGRA array)."""
    _check(image)
    h, w = image.shape[:2]
    return Description(
        contsign=contsign(image),
        phash=phash(image),
        vector=global_vector(image),
        features=features(image, max_features=LIBRARY_FEATURES, long_side=LIBRARY_LONG_SIDE),
        width=w,
        height=h,
    )


def describe_query(image: npt.NDArray[np.uint8], *, with_features: bool = True) -> Description:
    """A search query's description: more keypoints than a library image's (the object
    may be a small part of it); none unless ``with_features``."""
    _check(image)
    h, w = image.shape[:2]
    feats = (
        features(image, max_features=QUERY_FEATURES, long_side=QUERY_LONG_SIDE,
                 at_least=QUERY_SHORTEST)
        if with_features
        else Features(np.empty((0, 2), np.float32), np.empty((0, 128), np.uint8), (w, h))
    )
    return Description(contsign(image), phash(image), global_vector(image), feats, w, h)


def _check(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError("an image is a 2-D grey or 3-D BGR/BGRA uint8 array")
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise InputError("an image has 1, 3 or 4 channels")
    if image.size == 0:
        raise InputError("the image is empty")


def root_sift(descriptors: npt.NDArray[np.uint8]) -> FloatArray:
    """RootSIFT (L1-normalise, square root): L2 on it compares like the Hellinger kernel."""
    d = descriptors.astype(np.float32)
    d /= np.maximum(d.sum(axis=1, keepdims=True), 1e-6)
    return np.asarray(np.sqrt(d), dtype=np.float32)


@dataclass(frozen=True)
class Located:
    """A library image verified in the query: ``homography`` maps its pixels to the
    query's, ``polygon`` is its outline there (4 points), ``overlap`` the smaller of
    the shares of the outline and of the query frame that the two have in common."""

    homography: list[list[float]]
    polygon: list[list[float]]
    inliers: int
    overlap: float

    @property
    def match_type(self) -> MatchType:
        return "duplicate" if self.overlap >= DUPLICATE_OVERLAP else "object"

    @property
    def score(self) -> float:
        """0–1: how sure the geometric check is (inliers, saturating)."""
        return round(1.0 - math.exp(-self.inliers / 40.0), 4)


class Verifier:
    """Checks one query against library images one after another: the query's
    keypoints are indexed once (FLANN KD-tree on RootSIFT), each library image's
    keypoints look up their two nearest query keypoints."""

    def __init__(self, query: Features) -> None:
        self.query = query
        self._index: cv2.FlannBasedMatcher | None = None
        if len(query) >= 2:
            self._index = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 32})
            cv2.setRNGSeed(0)
            self._index.add([root_sift(query.descriptors)])
            self._index.train()

    def locate(self, reference: Features) -> Located | None:
        """Where ``reference`` (a library image's keypoints) is in the query, verified;
        None when it is not."""
        if self._index is None or len(reference) < MIN_INLIERS:
            return None
        pairs = self._index.knnMatch(root_sift(reference.descriptors), k=2)
        good = sorted(
            (p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance),
            key=lambda m: m.distance,
        )
        if len(good) < MIN_INLIERS:
            return None
        result = feature.locate_matches(
            feature.Described(reference.points, reference.descriptors, reference.size),
            feature.Described(self.query.points, self.query.descriptors, self.query.size),
            [m.queryIdx for m in good], [m.trainIdx for m in good],
            detector="SIFT", matcher="FLANN", max_matches=500, seed=0,
        )
        if not result.found or result.homography is None or result.corners is None:
            return None
        if result.inliers < MIN_INLIERS:
            return None
        corners = result.corners.astype(np.float32)
        qw, qh = self.query.size
        frame = np.array([[0, 0], [qw, 0], [qw, qh], [0, qh]], np.float32)
        common, _ = cv2.intersectConvexConvex(corners, frame)
        outline_area = abs(float(cv2.contourArea(corners)))
        overlap = min(common / max(outline_area, 1e-9), common / float(qw * qh))
        return Located(
            homography=[[float(f"{v:.6g}") for v in row] for row in result.homography.tolist()],
            polygon=[[round(x, 2), round(y, 2)] for x, y in result.corners.tolist()],
            inliers=int(result.inliers),
            overlap=round(float(overlap), 4),
        )


def hash_duplicate(a: Description, phash_b: int, vector_b: FloatArray) -> bool:
    """Whether two images without keypoints to check are the same picture."""
    bits = int(hamming(np.array([a.phash], np.uint64), phash_b)[0])
    return bits <= HASH_DUPLICATE_BITS and float(a.vector @ vector_b) >= HASH_DUPLICATE_COSINE
