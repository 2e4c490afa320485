"""Surface matching: point pair features (Drost et al. 2010), verification and ICP.

The pipeline, all in vectorised numpy (plus scipy's KD-tree):

1. :func:`train_model` samples the model on a voxel grid (step
   ``relative_sampling_step`` × diameter), computes the point pair feature of
   every ordered pair of samples, quantises it and stores the pairs in a hash
   table (sorted keys) with their rotation angle ``alpha_m``;
2. :func:`match_surface` samples the scene with the same step, takes every
   fifth sample (chosen at random with `rng`) as a reference point, pairs it
   with every scene sample within the model's diameter, looks the quantised
   features up, and votes in a (model point, rotation angle) accumulator per
   reference point, reference points in chunks so memory stays bounded;
3. each reference point's best vote is a pose; poses are clustered (rotation
   and translation thresholds) and a cluster's pose is the vote-weighted mean;
4. the best clusters are verified (share of model points landing on the scene
   with agreeing normals), the most promising are refined with point-to-plane
   ICP and verified again; the final pose is the best *verified* one, never
   the one with the least residual alone. A scene without the model gives
   ``poses_found == 0`` and ``pose is None``.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRAINING_PARAMS: tuple[str, ...] = ("relative_sampling_step", "relative_distance_step", "num_angles")
"""The parameters that change a trained model; a cache key is (model file bytes, these)."""

MODEL_FORMAT: Final = 1
"""Version of :meth:`SurfaceModel.to_bytes`'s layout and of the training algorithm;
part of :func:`training_key`, so a change invalidates cached models."""

_MAX_MODEL_POINTS: Final = 3000
"""Most sampled model points a model may have: the table holds N² pairs (~9M here)."""

_MIN_MODEL_POINTS: Final = 4
"""Fewest sampled model points a model needs."""

_REF_STRIDE: Final = 5
"""One scene sample in this many is a reference point (Drost et al. use 1/5)."""

_CHUNK_PAIRS: Final = 1 << 19
"""Scene (reference, partner) candidates handled per vectorised step."""

_NORMAL_SPLIT: Final = -0.25
"""Inside a voxel, points whose normal has a dot product below this with the voxel's
first normal form a second sample (the two sides of a thin part stay apart)."""

_CLUSTERS_VERIFIED: Final = 24
"""Pose clusters (best voted first) that are verified."""

_CLUSTERS_REFINED: Final = 6
"""Verified clusters (best first) refined with ICP."""

_ACCUMULATOR: Final = 1 << 24
"""Most accumulator cells (reference points × model points × 2 angles) per chunk."""

_MIN_SCORE: Final = 0.5
"""Default verification score a pose needs to count as found."""


# --- model ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SurfaceModel:
    """A model trained for :func:`match_surface` (see :func:`train_model`).

    Attributes
    ----------
    relative_sampling_step, relative_distance_step : float
        Training parameters, relative to `diameter`.
    num_angles : int
        Rotation discretisation (angle step ``2 pi / num_angles``).
    diameter : float
        Diagonal of the model's bounding box, in model units.
    points, normals : (M, 3) float64 arrays
        The sampled model, with unit normals.
    table_keys : (K,) int64 array
        Distinct quantised features, sorted.
    table_starts : (K + 1,) int64 array
        Pairs with feature ``table_keys[k]`` are ``table_starts[k]:table_starts[k + 1]``.
    pair_ref : (P,) int32 array
        First (reference) model point of each pair, grouped by key.
    pair_alpha : (P,) float32 array
        Rotation angle of each pair about its reference normal, in radians.
    num_input_points : int
        Points of the model cloud given to :func:`train_model`.
    train_ms : float
        Time spent training this object; 0.0 for a model from :meth:`from_bytes`.
    """

    relative_sampling_step: float
    relative_distance_step: float
    num_angles: int
    diameter: float
    points: FloatArray
    normals: FloatArray
    table_keys: IntArray
    table_starts: IntArray
    pair_ref: npt.NDArray[np.int32]
    pair_alpha: npt.NDArray[np.float32]
    num_input_points: int
    train_ms: float = 0.0

    @property
    def num_points(self) -> int:
        """Number of sampled model points M."""
        return int(self.points.shape[0])

    @property
    def sampling_distance(self) -> float:
        """Voxel size of the sampling, in model units."""
        return self.relative_sampling_step * self.diameter

    def to_bytes(self) -> bytes:
        """Serialise to bytes (an ``.npz`` archive, no pickle); see :meth:`from_bytes`."""
        meta = {
            "format": MODEL_FORMAT,
            "relative_sampling_step": self.relative_sampling_step,
            "relative_distance_step": self.relative_distance_step,
            "num_angles": self.num_angles,
            "diameter": self.diameter,
            "num_input_points": self.num_input_points,
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            points=self.points,
            normals=self.normals,
            table_keys=self.table_keys,
            table_starts=self.table_starts,
            pair_ref=self.pair_ref,
            pair_alpha=self.pair_alpha,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SurfaceModel:
        """Rebuild a model written by :meth:`to_bytes`.

        Raises
        ------
        InputError
            The data is not a model written by this version (corrupt cache entry).
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(bytes(arrays.pop("meta")).decode())
            if meta.get("format") != MODEL_FORMAT:
                raise InputError(
                    f"the trained model has format {meta.get('format')!r}, "
                    f"this version reads {MODEL_FORMAT}: train it again"
                )
            model = cls(
                relative_sampling_step=float(meta["relative_sampling_step"]),
                relative_distance_step=float(meta["relative_distance_step"]),
                num_angles=int(meta["num_angles"]),
                diameter=float(meta["diameter"]),
                points=np.asarray(arrays["points"], dtype=np.float64),
                normals=np.asarray(arrays["normals"], dtype=np.float64),
                table_keys=np.asarray(arrays["table_keys"], dtype=np.int64),
                table_starts=np.asarray(arrays["table_starts"], dtype=np.int64),
                pair_ref=np.asarray(arrays["pair_ref"], dtype=np.int32),
                pair_alpha=np.asarray(arrays["pair_alpha"], dtype=np.float32),
                num_input_points=int(meta["num_input_points"]),
            )
        except InputError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise InputError("the trained model data is corrupt: train it again") from exc
        _check_model_arrays(model)
        return model


def _check_model_arrays(model: SurfaceModel) -> None:
    m = model.points.shape[0]
    ok = (
        model.points.ndim == 2
        and model.points.shape[1] == 3
        and model.normals.shape == model.points.shape
        and model.table_starts.shape == (model.table_keys.shape[0] + 1,)
        and model.pair_ref.shape == model.pair_alpha.shape
        and model.table_starts[0] == 0
        and model.table_starts[-1] == model.pair_ref.shape[0]
        and bool(np.all(np.diff(model.table_starts) > 0))
        and bool(np.all(np.diff(model.table_keys) > 0))
        and (model.pair_ref.size == 0 or 0 <= int(model.pair_ref.min()))
        and (model.pair_ref.size == 0 or int(model.pair_ref.max()) < m)
        and model.diameter > 0
        and 1 <= model.num_angles <= 360
    )
    if not ok:
        raise InputError("the trained model data is inconsistent: train it again")


def training_key(params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a surface task's parameters that determines the trained model.

    Parameters
    ----------
    params : mapping
        Task parameters; those in :data:`TRAINING_PARAMS` must be present.

    Returns
    -------
    dict
        ``{"relative_sampling_step": float, "relative_distance_step": float,
        "num_angles": int, "model_format": MODEL_FORMAT}``: hash it with the
        model file's bytes to name a cached :class:`SurfaceModel`.

    Examples
    --------
    >>> training_key({"relative_sampling_step": 0.05, "relative_distance_step": 0.05,
    ...               "num_angles": 30, "use_icp": True})["num_angles"]
    30
    """
    key: dict[str, Any] = {
        "relative_sampling_step": float(params["relative_sampling_step"]),
        "relative_distance_step": float(params["relative_distance_step"]),
        "num_angles": int(params["num_angles"]),
    }
    key["model_format"] = MODEL_FORMAT
    return key


def train_model(
    model: PointCloud,
    *,
    relative_sampling_step: float = 0.05,
    relative_distance_step: float = 0.05,
    num_angles: int = 30,
) -> SurfaceModel:
    """Build the point pair feature table of a model.

    Parameters
    ----------
    model : PointCloud
        The object, with unit normals pointing out of it.
    relative_sampling_step : float
        Voxel size of the sampling, relative to the model's diameter (bounding
        box diagonal), in [0.01, 0.5]; smaller is finer and slower.
    relative_distance_step : float
        Quantisation step of the pair distance, relative to the diameter,
        in [0.01, 0.5].
    num_angles : int
        Number of steps of a full turn, in [1, 360]: the quantisation of the
        feature angles and of the rotation about a normal (``2 pi / num_angles``).

    Returns
    -------
    SurfaceModel
        The sampled model and its hash table; serialisable with
        :meth:`SurfaceModel.to_bytes`.

    Raises
    ------
    InputError
        A parameter out of range, a model whose points all coincide, or a
        sampling with fewer than 4 or more than 3000 points (a finer or
        coarser `relative_sampling_step` is suggested).

    Notes
    -----
    Sampling: points are grouped by voxel; inside a voxel, points whose normal
    turns more than ~104° from the voxel's first normal form a second group,
    so the two sides of a thin part are not averaged together. Each group
    becomes one sample: the mean point and the normalised mean normal.

    The feature of an ordered pair (m1, m2) with d = m2 - m1 is
    ``(|d|, angle(n1, d), angle(n2, d), angle(n1, n2))`` (Drost et al. 2010),
    the distance quantised by ``relative_distance_step * diameter`` and the
    angles by ``2 pi / num_angles``. The pair's angle ``alpha_m`` is the angle
    of d about n1 once n1 is turned onto the x axis.

    References
    ----------
    .. [1] B. Drost, M. Ulrich, N. Navab, S. Ilic, "Model globally, match locally:
       efficient and robust 3D object recognition", CVPR 2010.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = rng.normal(size=(500, 3)); n /= np.linalg.norm(n, axis=1, keepdims=True)
    >>> model = train_model(PointCloud(n, n), relative_sampling_step=0.2)
    >>> model.num_points > 10
    True
    """
    start = time.perf_counter()
    _check_cloud("model", model)
    _check_step("relative_sampling_step", relative_sampling_step)
    _check_step("relative_distance_step", relative_distance_step)
    if isinstance(num_angles, bool) or not isinstance(num_angles, (int, np.integer)):
        raise InputError(f"num_angles must be an integer in [1, 360], got {num_angles!r}")
    if not 1 <= num_angles <= 360:
        raise InputError(f"num_angles must be in [1, 360], got {num_angles}")
    lo, hi = model.points.min(axis=0), model.points.max(axis=0)
    diameter = float(np.linalg.norm(hi - lo))
    if not diameter > 0:
        raise InputError("the model's points all coincide: it has no shape to match")
    step = float(relative_sampling_step) * diameter
    points, normals = _sample(model.points, model.normals, step)
    m = points.shape[0]
    if m < _MIN_MODEL_POINTS:
        raise InputError(
            f"the model has only {m} points after sampling at relative_sampling_step="
            f"{relative_sampling_step}: at least {_MIN_MODEL_POINTS} are needed "
            "(use a smaller step or a denser model)"
        )
    if m > _MAX_MODEL_POINTS:
        suggest = float(relative_sampling_step) * math.sqrt(m / _MAX_MODEL_POINTS) * 1.05
        raise InputError(
            f"the model has {m} points after sampling at relative_sampling_step="
            f"{relative_sampling_step}, over the limit of {_MAX_MODEL_POINTS}: "
            f"use a step of at least {min(suggest, 0.5):.3f}"
        )
    quant = _Quantiser(diameter, float(relative_distance_step), int(num_angles))
    frames = _frames(normals)

    keys_parts: list[IntArray] = []
    ref_parts: list[npt.NDArray[np.int32]] = []
    alpha_parts: list[npt.NDArray[np.float32]] = []
    rows = max(1, _CHUNK_PAIRS // m)
    everyone = np.arange(m)
    for first in range(0, m, rows):
        refs = everyone[first : first + rows]
        r_idx = np.repeat(refs, m)
        p_idx = np.tile(everyone, refs.size)
        keep = r_idx != p_idx
        r_idx, p_idx = r_idx[keep], p_idx[keep]
        keys, alpha = _pair_features(points, normals, frames[r_idx], r_idx, p_idx, quant)
        keys_parts.append(keys)
        ref_parts.append(r_idx.astype(np.int32))
        alpha_parts.append(alpha)
    all_keys = np.concatenate(keys_parts)
    order = np.argsort(all_keys, kind="stable")
    all_keys = all_keys[order]
    table_keys, first_at = np.unique(all_keys, return_index=True)
    starts = np.append(first_at, all_keys.size).astype(np.int64)
    points.flags.writeable = False
    normals.flags.writeable = False
    return SurfaceModel(
        relative_sampling_step=float(relative_sampling_step),
        relative_distance_step=float(relative_distance_step),
        num_angles=int(num_angles),
        diameter=diameter,
        points=points,
        normals=normals,
        table_keys=table_keys.astype(np.int64),
        table_starts=starts,
        pair_ref=np.concatenate(ref_parts)[order],
        pair_alpha=np.concatenate(alpha_parts)[order],
        num_input_points=model.num_points,
        train_ms=(time.perf_counter() - start) * 1000.0,
    )


def _check_cloud(name: str, cloud: object) -> None:
    if not isinstance(cloud, PointCloud):
        raise InputError(f"{name} must be a PointCloud, got {type(cloud).__name__}")


def _check_step(name: str, value: object) -> None:
    if not _is_real(value) or not 0.01 <= float(value) <= 0.5:  # type: ignore[arg-type]
        raise InputError(f"{name} must be a number in [0.01, 0.5], got {value!r}")


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --- geometry helpers ----------------------------------------------------------------------


def _sample(points: FloatArray, normals: FloatArray, step: float) -> tuple[FloatArray, FloatArray]:
    """Voxel-grid sampling with a split of opposite normals; returns (points, unit normals)."""
    cell = np.floor((points - points.min(axis=0)) / step).astype(np.int64)
    dims = cell.max(axis=0) + 1
    voxel = (cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2]
    _, first, inverse = np.unique(voxel, return_index=True, return_inverse=True)
    reference = normals[first][inverse]
    side = np.einsum("ij,ij->i", normals, reference) < _NORMAL_SPLIT
    group = inverse * 2 + side
    _, group = np.unique(group, return_inverse=True)
    count = np.bincount(group).astype(np.float64)
    n = count.size
    out_p = np.empty((n, 3))
    out_n = np.empty((n, 3))
    for axis in range(3):
        out_p[:, axis] = np.bincount(group, weights=points[:, axis], minlength=n) / count
        out_n[:, axis] = np.bincount(group, weights=normals[:, axis], minlength=n)
    length = np.linalg.norm(out_n, axis=1)
    flat = length < 1e-6  # opposite normals cancelled out exactly: keep one of them
    if flat.any():
        first_of = np.zeros(n, dtype=np.int64)
        first_of[group[::-1]] = np.arange(group.size)[::-1]
        out_n[flat] = normals[first_of[flat]]
        length[flat] = 1.0
    out_n /= length[:, None]
    return out_p, out_n


def _frames(normals: FloatArray) -> npt.NDArray[np.float64]:
    """(N, 3, 3) rotations taking each normal onto +x (Rodrigues, stable near -x)."""
    n = normals
    x = n[:, 0]
    # rotation axis n × e_x = (0, n_z, -n_y), angle acos(n_x)
    axis = np.stack([np.zeros_like(x), n[:, 2], -n[:, 1]], axis=1)
    s = np.linalg.norm(axis, axis=1)
    c = x
    k = np.where(s[:, None] > 1e-12, axis / np.maximum(s, 1e-300)[:, None], [0.0, 0.0, 1.0])
    kx, ky, kz = k[:, 0], k[:, 1], k[:, 2]
    one_c = 1.0 - c
    r = np.empty((n.shape[0], 3, 3))
    r[:, 0, 0] = c + kx * kx * one_c
    r[:, 0, 1] = kx * ky * one_c - kz * s
    r[:, 0, 2] = kx * kz * one_c + ky * s
    r[:, 1, 0] = ky * kx * one_c + kz * s
    r[:, 1, 1] = c + ky * ky * one_c
    r[:, 1, 2] = ky * kz * one_c - kx * s
    r[:, 2, 0] = kz * kx * one_c - ky * s
    r[:, 2, 1] = kz * ky * one_c + kx * s
    r[:, 2, 2] = c + kz * kz * one_c
    return r


@dataclass(frozen=True)
class _Quantiser:
    diameter: float
    relative_distance_step: float
    num_angles: int
    dist_step: float = field(init=False)
    angle_step: float = field(init=False)
    angle_bins: int = field(init=False)
    dist_bins: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dist_step", self.relative_distance_step * self.diameter)
        object.__setattr__(self, "angle_step", 2.0 * math.pi / self.num_angles)
        object.__setattr__(self, "angle_bins", int(math.pi / self.angle_step) + 1)
        object.__setattr__(self, "dist_bins", int(1.0 / self.relative_distance_step) + 2)

    @property
    def max_distance(self) -> float:
        """Longest pair distance the table can hold."""
        return self.diameter * 1.0


def _pair_features(
    points: FloatArray,
    normals: FloatArray,
    ref_frames: npt.NDArray[np.float64],
    ref: IntArray,
    partner: IntArray,
    quant: _Quantiser,
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """Quantised feature keys and alpha angles of the pairs (ref, partner).

    ``ref_frames[i]`` is the frame of ``ref[i]`` (see :func:`_frames`).
    """
    d = points[partner] - points[ref]
    dist = np.sqrt(np.einsum("ij,ij->i", d, d))
    unit = d / np.maximum(dist, 1e-300)[:, None]
    n1, n2 = normals[ref], normals[partner]
    a1 = np.arccos(np.clip(np.einsum("ij,ij->i", n1, unit), -1.0, 1.0))
    a2 = np.arccos(np.clip(np.einsum("ij,ij->i", n2, unit), -1.0, 1.0))
    a3 = np.arccos(np.clip(np.einsum("ij,ij->i", n1, n2), -1.0, 1.0))
    inv = 1.0 / quant.angle_step
    bins = quant.angle_bins
    di = np.minimum((dist / quant.dist_step).astype(np.int64), quant.dist_bins - 1)
    key = di * bins + np.minimum((a1 * inv).astype(np.int64), bins - 1)
    key = key * bins + np.minimum((a2 * inv).astype(np.int64), bins - 1)
    key = key * bins + np.minimum((a3 * inv).astype(np.int64), bins - 1)
    # alpha: angle of d about x once n1 is on x
    qy = np.einsum("ij,ij->i", ref_frames[:, 1, :], d)
    qz = np.einsum("ij,ij->i", ref_frames[:, 2, :], d)
    alpha = np.arctan2(qz, qy).astype(np.float32)
    return key, alpha


def _rotations_to_quaternions(r: npt.NDArray[np.float64]) -> FloatArray:
    """(N, 3, 3) rotations to (N, 4) unit quaternions (w, x, y, z), w >= 0."""
    m = r.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack(
        [
            np.stack([1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], 1),
            np.stack([m[:, 2, 1] - m[:, 1, 2], 1 + 2 * m[:, 0, 0] - tr, m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], 1),
            np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 + 2 * m[:, 1, 1] - tr, m[:, 1, 2] + m[:, 2, 1]], 1),
            np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], 1 + 2 * m[:, 2, 2] - tr], 1),
        ],
        axis=1,
    )  # (N, 4 candidates, 4): each is 4 q_k q, best conditioned where its |q_k| is largest
    diag = np.stack([1 + tr, 1 + 2 * m[:, 0, 0] - tr, 1 + 2 * m[:, 1, 1] - tr, 1 + 2 * m[:, 2, 2] - tr], 1)
    q = cand[np.arange(m.shape[0]), np.argmax(diag, axis=1)]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q


def _quaternions_to_rotations(q: FloatArray) -> npt.NDArray[np.float64]:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    r = np.empty((q.shape[0], 3, 3))
    r[:, 0, 0] = 1 - 2 * (y * y + z * z)
    r[:, 0, 1] = 2 * (x * y - w * z)
    r[:, 0, 2] = 2 * (x * z + w * y)
    r[:, 1, 0] = 2 * (x * y + w * z)
    r[:, 1, 1] = 1 - 2 * (x * x + z * z)
    r[:, 1, 2] = 2 * (y * z - w * x)
    r[:, 2, 0] = 2 * (x * z - w * y)
    r[:, 2, 1] = 2 * (y * z + w * x)
    r[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def _rotation_angle(r1: npt.NDArray[np.float64], r2: npt.NDArray[np.float64]) -> FloatArray:
    """Angle (radians) of r1 r2^T for stacks of rotations."""
    c = (np.einsum("...ij,...ij->...", r1, r2) - 1.0) / 2.0
    return np.arccos(np.clip(c, -1.0, 1.0))


def _rodrigues(w: FloatArray) -> FloatArray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(theta) * kx + (1.0 - math.cos(theta)) * (kx @ kx)


# --- matching ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SurfacePose:
    """One verified pose: ``pose`` (4×4, model → scene) and its verification ``score``."""

    pose: FloatArray
    score: float
    inliers: int
    votes: float
    icp_residual: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form: pose as nested lists, numbers rounded."""
        return {
            "pose": _pose_list(self.pose),
            "score": round(float(self.score), 4),
            "inliers": int(self.inliers),
            "votes": round(float(self.votes), 1),
            "icp_residual": None if self.icp_residual is None else float(f"{self.icp_residual:.6g}"),
        }


def _pose_list(pose: FloatArray) -> list[list[float]]:
    return [[float(f"{v:.9g}") for v in row] for row in pose.tolist()]


@dataclass(frozen=True, eq=False)
class SurfaceResult:
    """Outcome of :func:`match_surface`.

    Attributes
    ----------
    pose : (4, 4) float64 array or None
        Rigid transform taking model coordinates to scene coordinates, of the
        best verified pose; None when no pose passes verification.
    poses_found : int
        Distinct poses that pass verification.
    score : float
        Verification score of the best candidate, in [0, 1], reported even when
        it fails (then ``pose`` is None); see :func:`match_surface`.
    poses : tuple of SurfacePose
        The poses that pass, best first (at most 10).
    icp_residual : float or None
        RMS point-to-plane distance (scene units) between the posed model and
        the scene after ICP, for `pose`; None without ICP or without a pose.
    num_model_points, num_scene_points : int
        Points of the model and scene clouds given (before sampling).
    num_model_samples, num_scene_samples : int
        Points after sampling (the model's and the scene's voting points).
    timings : dict of str to float
        Milliseconds: ``train_ms`` (0 for a model from a cache), ``sample_ms``,
        ``vote_ms``, ``cluster_ms``, ``verify_ms``, ``icp_ms``, ``match_ms``
        (all of :func:`match_surface`).
    """

    pose: FloatArray | None
    poses_found: int
    score: float
    poses: tuple[SurfacePose, ...]
    icp_residual: float | None
    num_model_points: int
    num_scene_points: int
    num_model_samples: int
    num_scene_samples: int
    timings: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """Return the SPEC's ``result_data`` for a surface task, with plain Python types."""
        return {
            "pose": None if self.pose is None else _pose_list(self.pose),
            "num_model_points": int(self.num_model_points),
            "num_scene_points": int(self.num_scene_points),
            "icp_residual": None if self.icp_residual is None else float(f"{self.icp_residual:.6g}"),
            "poses_found": int(self.poses_found),
            "score": round(float(self.score), 4),
            "poses": [p.as_dict() for p in self.poses],
            "num_model_samples": int(self.num_model_samples),
            "num_scene_samples": int(self.num_scene_samples),
            "timings": {k: round(float(v), 2) for k, v in self.timings.items()},
        }


def match_surface(
    model: SurfaceModel,
    scene: PointCloud,
    *,
    use_icp: bool = True,
    icp_tolerance: float = 0.005,
    icp_iterations: int = 100,
    rng: int | np.random.Generator | None = None,
    min_score: float = _MIN_SCORE,
) -> SurfaceResult:
    """Find a trained model in a scene point cloud.

    Parameters
    ----------
    model : SurfaceModel
        From :func:`train_model` (or :meth:`SurfaceModel.from_bytes`).
    scene : PointCloud
        Where to look, in the model's units, with unit normals.
    use_icp : bool
        Refine the best hypotheses with point-to-plane ICP before the final
        verification (default). Without it the clustered voting poses are
        verified as they are.
    icp_tolerance : float
        ICP stops when the RMS point-to-plane residual changes by less than this
        fraction of itself between two iterations (``|r_k - r_{k-1}| <=
        icp_tolerance * r_{k-1}``, OpenCV's rule), in (0, 1].
    icp_iterations : int
        Most ICP iterations per hypothesis, in [1, 1000].
    rng : int, numpy Generator or None
        Seed of the choice of scene reference points; pass a value for
        reproducible results.
    min_score : float
        Verification score a pose needs to count as found, in (0, 1].

    Returns
    -------
    SurfaceResult
        The best verified pose (or None), the number of distinct verified poses,
        scores, residual, point counts and timings.

    Raises
    ------
    InputError
        A parameter out of range or a model/scene of the wrong type.

    Notes
    -----
    Voting follows Drost et al. 2010: the scene is sampled on the model's voxel
    grid; one sample in five (at random) is a reference point and is paired
    with every sample within the model's diameter. Each (reference, partner)
    feature votes for the (model point, rotation angle) of every model pair in
    the same hash cell. The best vote of each reference point is a pose; poses
    within one angle step (at least 6°, at most 30°) and a tenth of the
    diameter of the best one are clustered, the cluster pose being their
    vote-weighted mean.

    Verification: a model sample is an inlier when the posed sample has a scene
    point within half the sampling distance whose normal is within 45° of its
    own. The score is the share of inliers among the model samples that can be
    seen: when the scene's normals are biased towards one side (a partial
    view taken from a viewpoint, the mean scene normal longer than 0.25),
    only the model samples facing that side count, else all of them. A pose
    counts as found when its score is at least `min_score` and at least a
    tenth of all model samples are inliers; found poses closer than 5° and a
    twentieth of the diameter are one pose.

    ICP: the model samples are matched to their nearest scene point (scene
    sampled at a third of the sampling distance); pairs farther than a radius
    (twice the sampling distance at first, then three times the RMS residual)
    or with normals more than 60° apart are rejected; each step solves the
    linearised point-to-plane problem.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.normal(size=(2000, 3)) * [1.0, 0.6, 0.3]
    >>> n = p / [1.0, 0.36, 0.09]; n /= np.linalg.norm(n, axis=1, keepdims=True)
    >>> trained = train_model(PointCloud(p, n))
    >>> moved = PointCloud(p + [0.5, 0.0, 0.0], n)
    >>> result = match_surface(trained, moved, rng=0)
    >>> result.poses_found, np.round(result.pose[:3, 3], 2).tolist()
    (1, [0.5, 0.0, 0.0])
    """
    start = time.perf_counter()
    if not isinstance(model, SurfaceModel):
        raise InputError(f"model must be a SurfaceModel (see train_model), got {type(model).__name__}")
    _check_cloud("scene", scene)
    if not isinstance(use_icp, (bool, np.bool_)):
        raise InputError(f"use_icp must be true or false, got {use_icp!r}")
    if not _is_real(icp_tolerance) or not 0.0 < float(icp_tolerance) <= 1.0:
        raise InputError(f"icp_tolerance must be a number in (0, 1], got {icp_tolerance!r}")
    if isinstance(icp_iterations, bool) or not isinstance(icp_iterations, (int, np.integer)):
        raise InputError(f"icp_iterations must be an integer in [1, 1000], got {icp_iterations!r}")
    if not 1 <= icp_iterations <= 1000:
        raise InputError(f"icp_iterations must be in [1, 1000], got {icp_iterations}")
    if not _is_real(min_score) or not 0.0 < float(min_score) <= 1.0:
        raise InputError(f"min_score must be a number in (0, 1], got {min_score!r}")
    gen = np.random.default_rng(rng)
    timings: dict[str, float] = {"train_ms": float(model.train_ms)}
    clock = time.perf_counter()

    step = model.sampling_distance
    scene_p, scene_n = _sample(scene.points, scene.normals, step)
    fine_p, fine_n = _sample(scene.points, scene.normals, step / 3.0)
    tree = cKDTree(fine_p)
    view = _view_direction(fine_n)
    clock = _lap(timings, "sample_ms", clock)

    quant = _Quantiser(model.diameter, model.relative_distance_step, model.num_angles)
    n_refs = max(1, -(-scene_p.shape[0] // _REF_STRIDE))
    refs = np.sort(gen.choice(scene_p.shape[0], size=n_refs, replace=False))
    hyp_ref, hyp_model, hyp_alpha, hyp_votes = _vote(model, scene_p, scene_n, refs, quant)
    clock = _lap(timings, "vote_ms", clock)

    rot, trans = _hypothesis_poses(model, scene_p, scene_n, hyp_ref, hyp_model, hyp_alpha, quant)
    c_rot, c_trans, c_votes = _cluster_poses(rot, trans, hyp_votes, quant, model.diameter)
    clock = _lap(timings, "cluster_ms", clock)

    verifier = _Verifier(model, tree, fine_n, view)
    top = np.argsort(-c_votes, kind="stable")[:_CLUSTERS_VERIFIED]
    candidates = [
        _Candidate(c_rot[i], c_trans[i], float(c_votes[i]), *verifier.score(c_rot[i], c_trans[i]))
        for i in top.tolist()
    ]
    candidates.sort(key=lambda c: (-c.inliers, -c.votes))
    verify_ms = (time.perf_counter() - clock) * 1000.0
    clock = time.perf_counter()

    icp_ms = 0.0
    if use_icp:
        refined = []
        for cand in candidates[:_CLUSTERS_REFINED]:
            r, t, residual = _icp(
                model, cand.rotation, cand.translation, tree, fine_p, fine_n,
                float(icp_tolerance), int(icp_iterations),
            )
            refined.append(_Candidate(r, t, cand.votes, *verifier.score(r, t), residual))
        candidates = refined + candidates[_CLUSTERS_REFINED:]
        icp_ms = (time.perf_counter() - clock) * 1000.0
        clock = time.perf_counter()

    passing = _distinct_passing(candidates, float(min_score), model)
    best_score = max((c.score for c in candidates), default=0.0)
    verify_ms += (time.perf_counter() - clock) * 1000.0
    timings["verify_ms"] = verify_ms
    timings["icp_ms"] = icp_ms
    timings["match_ms"] = (time.perf_counter() - start) * 1000.0

    poses = tuple(
        SurfacePose(_matrix(c.rotation, c.translation), c.score, c.inliers, c.votes, c.residual)
        for c in passing[:10]
    )
    for p in poses:
        p.pose.flags.writeable = False
    best = poses[0] if poses else None
    return SurfaceResult(
        pose=None if best is None else best.pose,
        poses_found=len(passing),
        score=float(best.score) if best is not None else float(best_score),
        poses=poses,
        icp_residual=None if best is None else best.icp_residual,
        num_model_points=model.num_input_points,
        num_scene_points=scene.num_points,
        num_model_samples=model.num_points,
        num_scene_samples=int(scene_p.shape[0]),
        timings=timings,
    )


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = (now - since) * 1000.0
    return now


def _matrix(rotation: FloatArray, translation: FloatArray) -> FloatArray:
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def _view_direction(normals: FloatArray) -> FloatArray | None:
    """Unit mean scene normal when the scene looks taken from one side, else None."""
    mean = normals.mean(axis=0)
    length = float(np.linalg.norm(mean))
    return mean / length if length > 0.25 else None


def _vote(
    model: SurfaceModel,
    scene_p: FloatArray,
    scene_n: FloatArray,
    refs: IntArray,
    quant: _Quantiser,
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Best (model point, alpha bin) of each reference point: (ref, model, alpha, votes).

    A vote for model pair j from scene pair i lands in accumulator cell
    ``ref_i * M * 2A + model_ref_j * 2A + (bin_i - bin_j + A)``: the rotation bin
    ``bin_i - bin_j`` modulo A is folded afterwards, so each vote costs one add.
    """
    s = scene_p.shape[0]
    m = model.num_points
    a = model.num_angles
    width = m * 2 * a
    frames = _frames(scene_n[refs])
    dmax2 = quant.max_distance**2
    keys_table, starts = model.table_keys, model.table_starts
    model_code = (
        model.pair_ref.astype(np.int32) * np.int32(2 * a)
        - _alpha_bins(model.pair_alpha, quant)
        + np.int32(a)
    )
    rows = max(1, min(refs.size, _CHUNK_PAIRS // max(s, 1), _ACCUMULATOR // width))
    out: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []
    for first in range(0, refs.size, rows):
        chunk = refs[first : first + rows]
        c = chunk.size
        diff = scene_p[None, :, :] - scene_p[chunk][:, None, :]
        dist2 = np.einsum("ijk,ijk->ij", diff, diff)
        local, partner = np.nonzero((dist2 <= dmax2) & (dist2 > 0.0))
        keys, alpha_s = _pair_features(
            scene_p, scene_n, frames[first + local], chunk[local], partner, quant
        )
        pos = np.minimum(np.searchsorted(keys_table, keys), keys_table.size - 1)
        hit = keys_table[pos] == keys
        pos = pos[hit]
        scene_code = local[hit].astype(np.int32) * np.int32(width) + _alpha_bins(
            alpha_s[hit], quant
        )
        begin = starts[pos]
        count = starts[pos + 1] - begin
        total = int(count.sum())
        if total:
            # indices of the model pairs of every hit bucket, bucket after bucket
            pair = np.repeat((begin - np.cumsum(count) + count).astype(np.int32), count)
            pair += np.arange(total, dtype=np.int32)
            cell = model_code[pair]
            cell += np.repeat(scene_code, count)
            acc = np.bincount(cell, minlength=c * width)
        else:
            acc = np.zeros(c * width, dtype=np.int64)
        votes = acc.reshape(c, m, 2, a).sum(axis=2).reshape(c, m * a)
        best = np.argmax(votes, axis=1)
        peak = votes[np.arange(c), best]
        keep = peak > 0
        out.append((chunk[keep], best[keep] // a, best[keep] % a, peak[keep]))
    return (
        np.concatenate([o[0] for o in out]),
        np.concatenate([o[1] for o in out]),
        np.concatenate([o[2] for o in out]),
        np.concatenate([o[3] for o in out]).astype(np.float64),
    )


def _alpha_bins(alpha: npt.NDArray[np.float32], quant: _Quantiser) -> npt.NDArray[np.int32]:
    """Bins of angles in [-pi, pi] at the rotation step, in [0, num_angles - 1]."""
    scaled = (alpha.astype(np.float32) + np.float32(math.pi)) * np.float32(1.0 / quant.angle_step)
    return np.minimum(scaled.astype(np.int32), np.int32(quant.num_angles - 1))


def _hypothesis_poses(
    model: SurfaceModel,
    scene_p: FloatArray,
    scene_n: FloatArray,
    hyp_ref: IntArray,
    hyp_model: IntArray,
    hyp_alpha: IntArray,
    quant: _Quantiser,
) -> tuple[npt.NDArray[np.float64], FloatArray]:
    """Poses R = R_s^T R_x(alpha) R_m, t = s - R m of the voting peaks."""
    rs = _frames(scene_n[hyp_ref])
    rm = _frames(model.normals[hyp_model])
    alpha = hyp_alpha * quant.angle_step  # bin_s - bin_m: centred on alpha_s - alpha_m
    ca, sa = np.cos(alpha), np.sin(alpha)
    rx = np.zeros((alpha.size, 3, 3))
    rx[:, 0, 0] = 1.0
    rx[:, 1, 1] = ca
    rx[:, 1, 2] = -sa
    rx[:, 2, 1] = sa
    rx[:, 2, 2] = ca
    rot = np.transpose(rs, (0, 2, 1)) @ rx @ rm
    trans = scene_p[hyp_ref] - np.einsum("nij,nj->ni", rot, model.points[hyp_model])
    return rot, trans


def _cluster_poses(
    rot: npt.NDArray[np.float64],
    trans: FloatArray,
    votes: FloatArray,
    quant: _Quantiser,
    diameter: float,
) -> tuple[npt.NDArray[np.float64], FloatArray, FloatArray]:
    """Greedy clustering, best voted first; returns (rotations, translations, votes)."""
    if votes.size == 0:
        return np.empty((0, 3, 3)), np.empty((0, 3)), np.empty(0)
    order = np.argsort(-votes, kind="stable")
    rot, trans, votes = rot[order], trans[order], votes[order]
    quat = _rotations_to_quaternions(rot)
    max_angle = min(max(quant.angle_step, math.radians(6.0)), math.radians(30.0))
    cos_half = math.cos(max_angle / 2.0)
    max_shift2 = (0.1 * diameter) ** 2
    similar_rot = np.abs(quat @ quat.T) >= cos_half
    d = trans[:, None, :] - trans[None, :, :]
    similar = similar_rot & (np.einsum("ijk,ijk->ij", d, d) <= max_shift2)
    free = np.ones(votes.size, dtype=bool)
    out_q, out_t, out_v = [], [], []
    for i in range(votes.size):
        if not free[i]:
            continue
        members = np.flatnonzero(similar[i] & free)
        free[members] = False
        w = votes[members]
        q = quat[members] * np.sign(quat[members] @ quat[i] + 1e-12)[:, None]
        out_q.append((w[:, None] * q).sum(axis=0))
        out_t.append((w[:, None] * trans[members]).sum(axis=0) / w.sum())
        out_v.append(float(w.sum()))
    return _quaternions_to_rotations(np.array(out_q)), np.array(out_t), np.array(out_v)


@dataclass(frozen=True, eq=False)
class _Candidate:
    rotation: FloatArray
    translation: FloatArray
    votes: float
    score: float
    inliers: int
    residual: float | None = None


class _Verifier:
    """Scores poses by the share of (visible) model samples that land on the scene."""

    def __init__(
        self, model: SurfaceModel, tree: cKDTree, scene_n: FloatArray, view: FloatArray | None
    ) -> None:
        self.points = model.points
        self.normals = model.normals
        self.tree = tree
        self.scene_n = scene_n
        self.view = view
        self.tol = 0.5 * model.sampling_distance
        self.cos = math.cos(math.radians(45.0))

    def score(self, rotation: FloatArray, translation: FloatArray) -> tuple[float, int]:
        p = self.points @ rotation.T + translation
        n = self.normals @ rotation.T
        dist, idx = self.tree.query(p, distance_upper_bound=self.tol)
        near = np.flatnonzero(np.isfinite(dist))
        agree = np.einsum("ij,ij->i", n[near], self.scene_n[idx[near]]) >= self.cos
        inliers = int(np.count_nonzero(agree))
        m = self.points.shape[0]
        if self.view is None:
            expected = m
        else:
            expected = max(int(np.count_nonzero(n @ self.view > 0.0)), m // 4, 1)
        return min(inliers / expected, 1.0), inliers


def _distinct_passing(
    candidates: list[_Candidate], min_score: float, model: SurfaceModel
) -> list[_Candidate]:
    """Candidates over the bar, best first, duplicates (5°, diameter / 20) removed."""
    floor = max(1, model.num_points // 10)
    good = [c for c in candidates if c.score >= min_score and c.inliers >= floor]
    good.sort(key=lambda c: (-c.score, -c.inliers))
    kept: list[_Candidate] = []
    for c in good:
        if not any(
            float(_rotation_angle(c.rotation, k.rotation)) < math.radians(5.0)
            and float(np.linalg.norm(c.translation - k.translation)) < model.diameter / 20.0
            for k in kept
        ):
            kept.append(c)
    return kept


def _icp(
    model: SurfaceModel,
    rotation: FloatArray,
    translation: FloatArray,
    tree: cKDTree,
    scene_p: FloatArray,
    scene_n: FloatArray,
    tolerance: float,
    iterations: int,
) -> tuple[FloatArray, FloatArray, float]:
    """Point-to-plane ICP from a pose; returns (rotation, translation, RMS residual)."""
    r, t = rotation.copy(), translation.copy()
    radius = 2.0 * model.sampling_distance
    floor = model.sampling_distance / 3.0
    cos = math.cos(math.radians(60.0))
    previous = math.inf
    rms = math.inf
    for _ in range(iterations):
        p = model.points @ r.T + t
        n = model.normals @ r.T
        dist, idx = tree.query(p, distance_upper_bound=radius)
        ok = np.flatnonzero(np.isfinite(dist))
        ok = ok[np.einsum("ij,ij->i", n[ok], scene_n[idx[ok]]) >= cos]
        if ok.size < 6:
            break
        src = p[ok]
        dst = scene_p[idx[ok]]
        nq = scene_n[idx[ok]]
        b = np.einsum("ij,ij->i", dst - src, nq)
        rms = float(np.sqrt(np.mean(b * b)))
        if previous < math.inf and abs(previous - rms) <= tolerance * previous:
            break
        previous = rms
        centre = src.mean(axis=0)
        a = np.hstack([np.cross(src - centre, nq), nq])
        ata = a.T @ a + np.eye(6) * 1e-12
        x = np.linalg.solve(ata, a.T @ b)
        delta = _rodrigues(x[:3])
        r = delta @ r
        t = delta @ (t - centre) + centre + x[3:]
        spread = float(np.sqrt(np.mean(np.sum((dst - src) ** 2, axis=1))))
        radius = min(radius, max(3.0 * spread, floor))
    return r, t, rms
