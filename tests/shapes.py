"""Generated 3D shapes with exact normals and scenes whose answer is known, for the
surface-matching tests (engine and service)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aerovision.engine.ply import PointCloud
from aerovision.engine.surface import SurfaceResult

Array = npt.NDArray[np.float64]


def unit(v: Array) -> Array:
    out: Array = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return out


@dataclass(frozen=True)
class Box:
    centre: tuple[float, float, float]
    size: tuple[float, float, float]

    def area(self) -> float:
        x, y, z = self.size
        return 2 * (x * y + y * z + x * z)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        half = np.array(self.size) / 2
        x, y, z = self.size
        areas = np.array([y * z, y * z, x * z, x * z, x * y, x * y])
        face = rng.choice(6, n, p=areas / areas.sum())
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        p = rng.uniform(-1, 1, (n, 3)) * half
        p[np.arange(n), axis] = sign * half[axis]
        normals = np.zeros((n, 3))
        normals[np.arange(n), axis] = sign
        return p + self.centre, normals

    def inside(self, p: Array) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = np.all(
            np.abs(p - self.centre) < np.array(self.size) / 2 - 1e-9, axis=1
        )
        return out


@dataclass(frozen=True)
class Cylinder:  # axis along z
    centre: tuple[float, float, float]
    radius: float
    height: float

    def area(self) -> float:
        return 2 * math.pi * self.radius * (self.height + self.radius)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        r, hh = self.radius, self.height / 2
        side, cap = 2 * math.pi * r * 2 * hh, math.pi * r * r
        kind = rng.choice(3, n, p=np.array([side, cap, cap]) / (side + 2 * cap))
        theta = rng.uniform(0, 2 * math.pi, n)
        rr = np.where(kind == 0, r, r * np.sqrt(rng.uniform(0, 1, n)))
        z = np.where(kind == 0, rng.uniform(-hh, hh, n), np.where(kind == 1, hh, -hh))
        p = np.stack([rr * np.cos(theta), rr * np.sin(theta), z], axis=1)
        normals = np.where(
            (kind == 0)[:, None],
            np.stack([np.cos(theta), np.sin(theta), np.zeros(n)], axis=1),
            np.stack([np.zeros(n), np.zeros(n), np.where(kind == 1, 1.0, -1.0)], axis=1),
        )
        return p + self.centre, normals

    def inside(self, p: Array) -> npt.NDArray[np.bool_]:
        d = p - self.centre
        return (d[:, 0] ** 2 + d[:, 1] ** 2 < (self.radius - 1e-9) ** 2) & (
            np.abs(d[:, 2]) < self.height / 2 - 1e-9
        )


@dataclass(frozen=True)
class Sphere:
    centre: tuple[float, float, float]
    radius: float

    def area(self) -> float:
        return 4 * math.pi * self.radius**2

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        normals = unit(rng.normal(size=(n, 3)))
        return np.asarray(self.centre) + self.radius * normals, normals

    def inside(self, p: Array) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = (
            np.sum((p - self.centre) ** 2, axis=1) < (self.radius - 1e-9) ** 2
        )
        return out


Shape = Box | Cylinder | Sphere

#: An asymmetric union: a slab, a post standing on it, a ball and a block sticking out.
OBJECT: tuple[Shape, ...] = (
    Box((0.0, 0.0, 0.0), (1.0, 0.6, 0.4)),
    Cylinder((0.3, 0.1, 0.35), 0.18, 0.5),
    Sphere((-0.45, -0.2, 0.15), 0.25),
    Box((-0.2, 0.4, -0.1), (0.25, 0.3, 0.2)),
)


def sample_union(parts: Sequence[Shape], n: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """About `n` points on the surface of the union (points inside another part removed)."""
    total = sum(p.area() for p in parts)
    points, normals = [], []
    for i, part in enumerate(parts):
        p, q = part.sample(max(1, round(1.3 * n * part.area() / total)), rng)
        keep = np.ones(len(p), dtype=bool)
        for j, other in enumerate(parts):
            if j != i:
                keep &= ~other.inside(p)
        points.append(p[keep])
        normals.append(q[keep])
    p, q = np.concatenate(points), np.concatenate(normals)
    pick = rng.permutation(len(p))[:n]
    return p[pick], q[pick]


def random_rotation(rng: np.random.Generator) -> Array:
    w, x, y, z = unit(rng.normal(size=4))
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def clutter(
    rng: np.random.Generator, around: Array, avoid: float, count: int
) -> tuple[Array, Array]:
    """`count` random boxes, cylinders and balls, turned at random, none closer than `avoid`
    to `around`, plus 200 random points with random normals."""
    points, normals = [], []
    for _ in range(count):
        kind = int(rng.integers(3))
        if kind == 0:
            x, y, z = (float(v) for v in rng.uniform(0.2, 0.7, 3))
            part: Shape = Box((0.0, 0.0, 0.0), (x, y, z))
        elif kind == 1:
            part = Cylinder(
                (0.0, 0.0, 0.0), float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.3, 0.8))
            )
        else:
            part = Sphere((0.0, 0.0, 0.0), float(rng.uniform(0.1, 0.35)))
        p, q = part.sample(int(600 * part.area()) + 50, rng)
        turn = random_rotation(rng)
        where = around + unit(rng.normal(size=3)) * rng.uniform(avoid + 0.4, avoid + 1.2)
        points.append(p @ turn.T + where)
        normals.append(q @ turn.T)
    points.append(around + rng.uniform(-2.0, 2.0, (200, 3)))
    normals.append(unit(rng.normal(size=(200, 3))))
    return np.concatenate(points), np.concatenate(normals)


@dataclass(frozen=True)
class Case:
    scene: PointCloud
    rotation: Array | None
    translation: Array | None


def make_scene(
    kind: str, seed: int, *, diameter: float, noise: float = 0.005, n: int = 3000
) -> Case:
    """`kind`: "full" (the whole object), "partial" (its half facing a random viewpoint, with
    clutter seen from there too) or "none" (clutter only). Positions get Gaussian noise of
    `noise` × diameter, normals ~3°."""
    rng = np.random.default_rng(seed)
    rotation, translation = random_rotation(rng), rng.uniform(-2.0, 2.0, 3)
    view = unit(rng.normal(size=3))
    points, normals = [], []
    if kind in ("full", "partial"):
        p, q = sample_union(OBJECT, n, rng)
        p, q = p @ rotation.T + translation, q @ rotation.T
        if kind == "partial":
            seen = q @ view > 0
            p, q = p[seen], q[seen]
        points.append(p)
        normals.append(q)
    if kind in ("partial", "none"):
        p, q = clutter(rng, translation, 0.9 if kind == "partial" else 0.0, 5)
        seen = q @ view > 0
        points.append(p[seen])
        normals.append(q[seen])
    p, q = np.concatenate(points), np.concatenate(normals)
    p = p + rng.normal(0.0, noise * diameter, p.shape)
    q = unit(q + rng.normal(0.0, 0.05, q.shape))
    if kind == "none":
        return Case(PointCloud(p, q), None, None)
    return Case(PointCloud(p, q), rotation, translation)


def pose_errors(
    pose: Array, rotation: Array, translation: Array, diameter: float
) -> tuple[float, float]:
    """(rotation error in degrees, translation error as a share of the diameter)."""
    cos = (np.trace(pose[:3, :3] @ rotation.T) - 1.0) / 2.0
    angle = math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))
    return angle, float(np.linalg.norm(pose[:3, 3] - translation)) / diameter


def solved(result: SurfaceResult, case: Case, diameter: float) -> bool:
    if result.pose is None or case.rotation is None or case.translation is None:
        return False
    angle, shift = pose_errors(result.pose, case.rotation, case.translation, diameter)
    return angle < 2.0 and shift < 0.01




def object_cloud(n: int = 4000, seed: int = 2024) -> PointCloud:
    """The test object (:data:`OBJECT`) sampled with ``n`` points."""
    return PointCloud(*sample_union(OBJECT, n, np.random.default_rng(seed)))


def ply_bytes(cloud: PointCloud, fmt: str = "ascii") -> bytes:
    """``cloud`` as a PLY file with x y z nx ny nz (ASCII or binary little endian)."""
    rows = np.hstack([cloud.points, cloud.normals]).astype(np.float32)
    header = (
        f"ply\nformat {fmt} 1.0\nelement vertex {len(rows)}\n"
        + "".join(f"property float {n}\n" for n in ("x", "y", "z", "nx", "ny", "nz"))
        + "end_header\n"
    ).encode()
    if fmt == "ascii":
        return header + "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in rows).encode()
    return header + rows.astype("<f4").tobytes()
