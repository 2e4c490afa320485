"""Surface matching: point pair features (Drost et al. 2010), verification and ICP.

The pipeline, all in vectorised numpy (plus scipy's KD-tree):

1. :func:`train_model` samples the model on a voxel grid (step
   ``relative_sampling_step`` × diameter), computes the point pair feature of
   every ordered pair of samples, quantises it and stores the pairs in a hash
   table (sorted keys) with their rotation angle ``alpha_m``;
2. :func:`match_surface` samples the scene with the same step, takes one
   sample in five (chosen with `rng`) as a reference point, pairs it with the
   scene samples within the model's diameter (found through a grid of
   diameter-sized cells), looks the quantised features up, and votes in a
   (model point, rotation angle) accumulator per reference point; reference
   points go in small chunks, so memory stays bounded and cache-friendly;
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRAINING_PARAMS: tuple[str, ...] = (
    "relative_sampling_step",
    "relative_distance_step",
    "num_angles",
)
"""The parameters that change a trained model; a cache key is (model file bytes, these)."""

MODEL_FORMAT: Final = 1
"""Version of :meth:`SurfaceModel.to_bytes`'s layout and of the training algorithm:
:meth:`SurfaceModel.from_bytes` refuses other versions (then train again)."""

_MAX_MODEL_POINTS: Final = 3000
"""Most sampled model points a model may have: the table holds N² pairs (~9M here)."""

_MIN_MODEL_POINTS: Final = 4
"""Fewest sampled model points a model needs."""

_MAX_BUCKET: Final = 128
"""Most model pairs kept per quantised feature (see train_model's Notes)."""

_REF_STRIDE: Final = 5
"""One scene sample in this many is a reference point (Drost et al. use 1/5)..."""

_MIN_REFS: Final = 300
"""... but at least this many (all of them in smaller scenes: coarse sampling)."""

_CHUNK_PAIRS: Final = 1 << 19
"""Scene (reference, partner) candidates handled per vectorised step."""

_NORMAL_SPLIT: Final = -0.25
"""Inside a voxel, points whose normal has a dot product below this with the voxel's
first normal form a second sample (the two sides of a thin part stay apart)."""

_CLUSTERS_VERIFIED: Final = 24
"""Pose clusters (best supported first) that are verified."""

_MAX_HYPOTHESES: Final = 1500
"""Voting poses (best voted first) that are clustered."""

_CLUSTERS_REFINED: Final = 6
"""Verified clusters (best first) refined with ICP."""

_MAX_PARTNERS: Final = 300
"""Scene partners per reference point above which an even subsample is kept."""

_MAX_CANDIDATES: Final = 8 * _MAX_PARTNERS
"""Candidate partners (points of the 27 cells around a reference point's cell) above
which an even subsample is kept: partners are about a sixth of the candidates."""

_DENSE_KEYS: Final = 1 << 20
"""Up to this many possible feature keys, buckets are found with a direct table."""

_ACCUMULATOR: Final = 1 << 18
"""Most accumulator cells (reference points × model points × 2 angles) per chunk: small
chunks keep every temporary in cache and in reused memory (fresh pages are costly)."""

_INLIER_DISTANCE: Final = 0.5
"""A posed model sample is an inlier within this many sampling distances of the scene..."""

_INLIER_HEIGHT: Final = 0.2
_INLIER_ANGLE: Final = 30.0
"""... with a scene normal within this many degrees of its own."""

_ICP_ANGLE: Final = 45.0
"""ICP pairs whose normals differ by more than this many degrees are rejected."""

_MAX_POSES: Final = 10
"""Most poses reported (and refined a second time)."""

_FEATURE_ANGLES: Final = 30
"""The feature angles are quantised by 2 pi / min(num_angles, this): finer bins split the
votes of noisy normals until nothing peaks; a finer num_angles refines the rotation."""

_MIN_SCORE: Final = 0.55
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
        The sampled model (voxel means), with unit normals: the voting points.
    fine_points, fine_normals : (F, 3) float64 arrays
        Model points at half the sampling step (actual points of the input, one
        per half-size voxel), for the final ICP.
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
    fine_points: FloatArray
    fine_normals: FloatArray
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

    @property
    def check_scale(self) -> float:
        """Length unit of verification and ICP: the sampling distance, but not less than at
        the default step (5 % of the diameter), since finer sampling means no less noise."""
        return max(self.sampling_distance, 0.05 * self.diameter)

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
            fine_points=self.fine_points,
            fine_normals=self.fine_normals,
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
                fine_points=np.asarray(arrays["fine_points"], dtype=np.float64),
                fine_normals=np.asarray(arrays["fine_normals"], dtype=np.float64),
                table_keys=np.asarray(arrays["table_keys"], dtype=np.int64),
                table_starts=np.asarray(arrays["table_starts"], dtype=np.int64),
                pair_ref=np.asarray(arrays["pair_ref"], dtype=np.int32),
                pair_alpha=np.asarray(arrays["pair_alpha"], dtype=np.float32),
                num_input_points=int(meta["num_input_points"]),
            )
        except InputError:
            raise
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            zipfile.BadZipFile,
        ) as exc:
            raise InputError("the trained model data is corrupt: train it again") from exc
        _check_model_arrays(model)
        return model


def _check_model_arrays(model: SurfaceModel) -> None:
    m = model.points.shape[0]
    ok = (
        model.points.ndim == 2
        and model.points.shape[1] == 3
        and model.normals.shape == model.points.shape
        and model.fine_points.ndim == 2
        and model.fine_points.shape[1] == 3
        and model.fine_normals.shape == model.fine_points.shape
        and model.table_starts.shape == (model.table_keys.shape[0] + 1,)
        and model.pair_ref.shape == model.pair_alpha.shape
        and model.table_starts[0] == 0
        and model.table_starts[-1] == model.pair_ref.shape[0]
        and bool(np.all(np.diff(model.table_starts) > 0))
        and bool(np.all(np.diff(model.table_keys) > 0))
        and (model.pair_ref.size == 0 or int(model.pair_ref.min()) >= 0)
        and (model.pair_ref.size == 0 or int(model.pair_ref.max()) < m)
        and model.points.shape[0] >= _MIN_MODEL_POINTS
        and model.fine_points.shape[0] >= 1
        and all(
            bool(np.isfinite(a).all())
            for a in (model.points, model.normals, model.fine_points, model.fine_normals)
        )
        and bool(np.isfinite(model.pair_alpha).all())
        and math.isfinite(model.diameter)
        and model.diameter > 0
        and 0.01 <= model.relative_sampling_step <= 0.5
        and 0.01 <= model.relative_distance_step <= 0.5
        and 1 <= model.num_angles <= 360
    )
    if not ok:
        raise InputError("the trained model data is inconsistent: train it again")


def training_key(params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a surface task's parameters that determines the trained model.

    Parameters
    ----------
    params : mapping
        Task parameters; those in :data:`TRAINING_PARAMS` must be present, the
        others are ignored.

    Returns
    -------
    dict
        ``{"relative_sampling_step": float, "relative_distance_step": float,
        "num_angles": int}``: the keyword arguments of :func:`train_model`.
        Hash them with the model file's bytes (and, to be safe, with
        :data:`MODEL_FORMAT`) to name a cached :class:`SurfaceModel`; a cached
        model from another format is refused by :meth:`SurfaceModel.from_bytes`.

    Examples
    --------
    >>> training_key({"relative_sampling_step": 0.05, "relative_distance_step": 0.05,
    ...               "num_angles": 30, "use_icp": True})
    {'relative_sampling_step': 0.05, 'relative_distance_step': 0.05, 'num_angles': 30}
    """
    return {
        "relative_sampling_step": float(params["relative_sampling_step"]),
        "relative_distance_step": float(params["relative_distance_step"]),
        "num_angles": int(params["num_angles"]),
    }


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
        rotation about a normal (``2 pi / num_angles``) and, up to 30, of the
        feature angles.

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
    angles by ``2 pi / min(num_angles, 30)``: finer feature bins split the votes
    of noisy normals until nothing peaks (with 360 they found nothing on noisy
    scans), so a larger `num_angles` refines only the rotation. The pair's
    angle ``alpha_m`` is the angle of d about n1 once n1 is turned onto the x
    axis. A hash cell holding more
    than 64 pairs (flat or symmetric patches, the least telling features) keeps
    an even subsample of 64: fewer, more useful votes.

    The model also keeps actual input points at half the sampling step
    (``fine_points``) for the final ICP. Training time grows with the square
    of the number of samples (about 0.1 s for 500, the default on most shapes).

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
        suggest = math.ceil(1000 * relative_sampling_step * math.sqrt(m / _MAX_MODEL_POINTS) * 1.1)
        raise InputError(
            f"the model has {m} points after sampling at relative_sampling_step="
            f"{relative_sampling_step}, over the limit of {_MAX_MODEL_POINTS}: "
            f"use a step of at least {min(suggest / 1000, 0.5):.3f}"
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
    table_keys, first_at, counts = np.unique(all_keys, return_index=True, return_counts=True)
    # crowded buckets (flat and symmetric patches: the least telling features) keep an
    # evenly spread subset of at most _MAX_BUCKET pairs
    rank = np.arange(all_keys.size) - np.repeat(first_at, counts)
    size = np.repeat(counts, counts)
    keep = (rank * np.minimum(size, _MAX_BUCKET)) % size < np.minimum(size, _MAX_BUCKET)
    order = order[keep]
    kept = np.minimum(counts, _MAX_BUCKET)
    starts = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
    fine_points, fine_normals = _sample(model.points, model.normals, step / 2.0, real=True)
    for array in (points, normals, fine_points, fine_normals):
        array.flags.writeable = False
    return SurfaceModel(
        relative_sampling_step=float(relative_sampling_step),
        relative_distance_step=float(relative_distance_step),
        num_angles=int(num_angles),
        diameter=diameter,
        points=points,
        normals=normals,
        fine_points=fine_points,
        fine_normals=fine_normals,
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


def _sample(
    points: FloatArray, normals: FloatArray, step: float, *, real: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Voxel-grid sampling with a split of opposite normals; returns (points, unit normals).

    Each group gives its mean point and mean normal, or with `real` the member
    closest to the mean (an actual surface point, unbiased at edges, for ICP).
    """
    cell = _cells(points, step)
    _, first, inverse = np.unique(_CellKey(cell)(cell), return_index=True, return_inverse=True)
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
    if real:
        off = points - out_p[group]
        order = np.lexsort((np.einsum("ij,ij->i", off, off), group))
        pick = order[np.flatnonzero(np.diff(group[order], prepend=-1))]
        return points[pick], normals[pick]
    length = np.linalg.norm(out_n, axis=1)
    flat = length < 1e-6  # opposite normals cancelled out exactly: keep one of them
    if flat.any():
        first_of = np.unique(group, return_index=True)[1]  # every group 0..n-1 occurs
        out_n[flat] = normals[first_of[flat]]
        length[flat] = 1.0
    out_n /= length[:, None]
    return out_p, out_n


def _cells(points: FloatArray, size: float) -> IntArray:
    """Integer coordinates (>= 0) of the cubes of side `size` holding the points."""
    scaled = (points - points.min(axis=0)) / size
    if not float(scaled.max(initial=0.0)) < 2.0**52:
        raise InputError(
            "the cloud spans more than 2^52 sampling steps: its points are too far "
            "apart for its size (remove far outliers)"
        )
    cells: IntArray = np.floor(scaled).astype(np.int64)
    return cells


class _CellKey:
    """Collision-free int64 keys of integer cells, -1 for a cell outside the occupied range.

    Coordinates are used as they are when the grid's volume fits in int64, else
    replaced by their rank among the occupied values of each axis (so a cloud with
    far outliers still gets exact keys).
    """

    def __init__(self, cell: IntArray) -> None:
        dims = cell.max(axis=0) + 1
        self.values: list[IntArray] | None = None
        if math.prod(int(d) for d in dims) >= 2**62:
            self.values = [np.unique(cell[:, k]) for k in range(3)]
            dims = np.array([v.size for v in self.values])
            if math.prod(int(d) for d in dims) >= 2**62:
                raise InputError("the cloud is too large and too spread out to be sampled")
        self.dims = dims

    def __call__(self, cell: IntArray) -> IntArray:
        cell = np.atleast_2d(cell)
        if self.values is not None:
            ranks = []
            valid = np.ones(cell.shape[0], dtype=bool)
            for k, values in enumerate(self.values):
                idx = np.minimum(np.searchsorted(values, cell[:, k]), values.size - 1)
                valid &= values[idx] == cell[:, k]
                ranks.append(idx)
            cell = np.stack(ranks, axis=1)
        else:
            valid = np.all((cell >= 0) & (cell < self.dims), axis=1)
        key = (cell[:, 0] * self.dims[1] + cell[:, 1]) * self.dims[2] + cell[:, 2]
        return np.where(valid, key, -1)


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
    angle_step: float = field(init=False)  # of the rotation alpha
    feature_step: float = field(init=False)  # of the feature angles
    angle_bins: int = field(init=False)  # of the feature angles, in [0, pi]
    dist_bins: int = field(init=False)

    def __post_init__(self) -> None:
        feature_step = 2.0 * math.pi / min(self.num_angles, _FEATURE_ANGLES)
        object.__setattr__(self, "dist_step", self.relative_distance_step * self.diameter)
        object.__setattr__(self, "angle_step", 2.0 * math.pi / self.num_angles)
        object.__setattr__(self, "feature_step", feature_step)
        object.__setattr__(self, "angle_bins", int(math.pi / feature_step) + 1)
        object.__setattr__(self, "dist_bins", int(1.0 / self.relative_distance_step) + 2)

    @property
    def alpha_window(self) -> int:
        """Rotation bins summed around each one when choosing the best: one feature step."""
        return max(1, round(self.num_angles / _FEATURE_ANGLES))

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
    d = (points[partner] - points[ref]).astype(np.float32)
    dist = np.sqrt(np.einsum("ij,ij->i", d, d))
    unit = d / np.maximum(dist, np.float32(1e-30))[:, None]
    n1 = normals[ref].astype(np.float32)
    n2 = normals[partner].astype(np.float32)
    one = np.float32(1.0)
    inv = np.float32(1.0 / quant.feature_step)
    top = quant.angle_bins - 1
    a1 = np.arccos(np.clip(np.einsum("ij,ij->i", n1, unit), -one, one)) * inv
    a2 = np.arccos(np.clip(np.einsum("ij,ij->i", n2, unit), -one, one)) * inv
    a3 = np.arccos(np.clip(np.einsum("ij,ij->i", n1, n2), -one, one)) * inv
    bins = quant.angle_bins
    key = np.minimum(
        (dist * np.float32(1.0 / quant.dist_step)).astype(np.int64), quant.dist_bins - 1
    )
    key = key * bins + np.minimum(a1.astype(np.int64), top)
    key = key * bins + np.minimum(a2.astype(np.int64), top)
    key = key * bins + np.minimum(a3.astype(np.int64), top)
    # alpha: angle of d about x once n1 is on x
    frames = ref_frames.astype(np.float32)
    qy = np.einsum("ij,ij->i", frames[:, 1, :], d)
    qz = np.einsum("ij,ij->i", frames[:, 2, :], d)
    return key, np.arctan2(qz, qy)


def _rotations_to_quaternions(r: npt.NDArray[np.float64]) -> FloatArray:
    """(N, 3, 3) rotations to (N, 4) unit quaternions (w, x, y, z), w >= 0."""
    m = r.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack(
        [
            np.stack(
                [1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]],
                1,
            ),
            np.stack(
                [
                    m[:, 2, 1] - m[:, 1, 2],
                    1 + 2 * m[:, 0, 0] - tr,
                    m[:, 0, 1] + m[:, 1, 0],
                    m[:, 0, 2] + m[:, 2, 0],
                ],
                1,
            ),
            np.stack(
                [
                    m[:, 0, 2] - m[:, 2, 0],
                    m[:, 0, 1] + m[:, 1, 0],
                    1 + 2 * m[:, 1, 1] - tr,
                    m[:, 1, 2] + m[:, 2, 1],
                ],
                1,
            ),
            np.stack(
                [
                    m[:, 1, 0] - m[:, 0, 1],
                    m[:, 0, 2] + m[:, 2, 0],
                    m[:, 1, 2] + m[:, 2, 1],
                    1 + 2 * m[:, 2, 2] - tr,
                ],
                1,
            ),
        ],
        axis=1,
    )  # (N, 4 candidates, 4): each is 4 q_k q, best conditioned where its |q_k| is largest
    diag = np.stack(
        [1 + tr, 1 + 2 * m[:, 0, 0] - tr, 1 + 2 * m[:, 1, 1] - tr, 1 + 2 * m[:, 2, 2] - tr], 1
    )
    q = cand[np.arange(m.shape[0]), np.argmax(diag, axis=1)]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    out: FloatArray = q
    return out


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
    angle: FloatArray = np.arccos(np.clip(c, -1.0, 1.0))
    return angle


def _rodrigues(w: FloatArray) -> FloatArray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rotation: FloatArray = np.eye(3) + math.sin(theta) * kx + (1.0 - math.cos(theta)) * (kx @ kx)
    return rotation


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
            "icp_residual": None
            if self.icp_residual is None
            else float(f"{self.icp_residual:.6g}"),
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
            "icp_residual": None
            if self.icp_residual is None
            else float(f"{self.icp_residual:.6g}"),
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
        A parameter out of range, a model/scene of the wrong type, or a scene
        whose points are absurdly far apart for its sampling step.

    Notes
    -----
    Voting follows Drost et al. 2010: the scene is sampled on the model's voxel
    grid; one sample in five (chosen with `rng`; at least 300 in all) is a
    reference point and is paired with the samples within the model's diameter
    (an even subsample of 300 of them when there are more: large cluttered
    scenes). Each pair's quantised feature votes for the (model point, rotation
    angle) of every model pair in the same hash cell. The best cell of each
    reference point is a pose (with more than 30 angles, the votes of the
    rotation bins within one feature step are summed first); poses within one
    angle step (at least 6°, at most 30°) and a tenth of the diameter are
    clustered around the best supported, the cluster pose being their
    vote-weighted mean.

    Verification: let u be the sampling distance, but at least 5 % of the
    diameter (finer sampling does not make the data less noisy). A model sample
    is an inlier when the posed sample has a scene point within u / 2, at most
    u / 5 off that point's tangent plane, with a normal within 30° of its own
    (the scene sampled at u / 3 for this and for ICP). The score is the
    share of inliers among the model samples that can be seen: when the
    scene's normals lean to one side (a view from one viewpoint: the mean
    scene normal is longer than 0.25) only the model samples facing that side
    count (at least a quarter of them), else all. A pose counts as found when
    its score is at least `min_score` and a tenth of all model samples are
    inliers; found poses within 5° and a twentieth of the diameter are one.
    The 24 best-voted clusters are verified and the final choice is by score,
    never by ICP residual.

    ICP (point-to-plane, linearised, one 6×6 solve per iteration) refines the
    6 clusters with the most inliers, starting from a rejection radius of one
    sampling distance (more for coarse `num_angles`), then three times the
    median pair distance, never below u / 3; pairs
    whose normals differ by more than 45° are rejected. The poses that pass are
    refined again with the model's denser points (half the sampling step),
    which halves the remaining error, and verified again. ``icp_residual`` is
    the RMS point-to-plane distance of the last ICP pairs, in scene units.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.normal(size=(2000, 3)) * [1.0, 0.6, 0.3]
    >>> n = p / [1.0, 0.36, 0.09]; n /= np.linalg.norm(n, axis=1, keepdims=True)
    >>> trained = train_model(PointCloud(p, n))
    >>> moved = PointCloud(p + [0.5, 0.0, 0.0], n)
    >>> result = match_surface(trained, moved, rng=0)
    >>> result.poses_found, bool(np.allclose(result.pose[:3, 3], [0.5, 0.0, 0.0], atol=0.01))
    (1, True)
    """
    start = time.perf_counter()
    if not isinstance(model, SurfaceModel):
        raise InputError(
            f"model must be a SurfaceModel (see train_model), got {type(model).__name__}"
        )
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
    # verification and ICP: a third of the step, but no finer than at the default step,
    # so that each point still averages out the noise of a few
    fine = model.check_scale / 3.0
    fine_p, fine_n = _sample(scene.points, scene.normals, fine)
    tree = cKDTree(fine_p)
    view = _view_direction(fine_n)
    clock = _lap(timings, "sample_ms", clock)

    quant = _Quantiser(model.diameter, model.relative_distance_step, model.num_angles)
    n_refs = max(-(-scene_p.shape[0] // _REF_STRIDE), min(scene_p.shape[0], _MIN_REFS))
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
    clock, verified = time.perf_counter(), verifier.elapsed_ms

    icp_ms = 0.0
    if use_icp:
        # a voting pose is off by up to half an angle step: the far side of the model
        # moves by up to diameter/2 * step/2
        radius = min(max(step, model.diameter * quant.angle_step / 4.0), model.diameter / 4.0)
        refined = []
        for cand in candidates[:_CLUSTERS_REFINED]:
            r, t, _ = _icp(
                model.points,
                model.normals,
                cand.rotation,
                cand.translation,
                tree,
                fine_n,
                radius,
                fine,
                float(icp_tolerance),
                int(icp_iterations),
            )
            refined.append(_Candidate(r, t, cand.votes, *verifier.score(r, t)))
        candidates = refined + candidates[_CLUSTERS_REFINED:]
    passing = _distinct_passing(candidates, float(min_score), model)
    if use_icp:
        # the survivors again, with the denser model points: about half the error
        final = []
        for cand in passing[:_MAX_POSES]:
            r, t, residual = _icp(
                model.fine_points,
                model.fine_normals,
                cand.rotation,
                cand.translation,
                tree,
                fine_n,
                step,
                fine,
                float(icp_tolerance),
                int(icp_iterations),
            )
            score, inliers = verifier.score(r, t)
            final.append(_Candidate(r, t, cand.votes, score, inliers, residual))
        passing = _distinct_passing(final, float(min_score), model) + passing[_MAX_POSES:]
        icp_ms = (time.perf_counter() - clock) * 1000.0 - (verifier.elapsed_ms - verified)
    best_score = max((c.score for c in candidates), default=0.0)
    timings["verify_ms"] = verifier.elapsed_ms
    timings["icp_ms"] = icp_ms
    timings["match_ms"] = (time.perf_counter() - start) * 1000.0

    poses = tuple(
        SurfacePose(_matrix(c.rotation, c.translation), c.score, c.inliers, c.votes, c.residual)
        for c in passing[:_MAX_POSES]
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
    m = model.num_points
    a = model.num_angles
    width = m * 2 * a
    frames = _frames(scene_n[refs])
    dmax2 = quant.max_distance**2
    starts = model.table_starts
    lookup = _bucket_lookup(model.table_keys, quant)
    model_code = (
        model.pair_ref.astype(np.int32) * np.int32(2 * a)
        - _alpha_bins(model.pair_alpha, quant)
        + np.int32(a)
    )
    out: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []
    for chunk, ref_frames, candidates in _ref_chunks(scene_p, refs, frames, dmax2, width):
        c = chunk.size
        diff = scene_p[candidates][None, :, :] - scene_p[chunk][:, None, :]
        dist2 = np.einsum("ijk,ijk->ij", diff, diff)
        local, partner = np.nonzero((dist2 <= dmax2) & (dist2 > 0.0))
        local, partner = _thin_partners(local, partner, c)
        partner = candidates[partner]
        keys, alpha_s = _pair_features(
            scene_p, scene_n, ref_frames[local], chunk[local], partner, quant
        )
        pos = lookup(keys)
        hit = pos >= 0
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
        votes = _smooth_alpha(acc.reshape(c, m, 2, a).sum(axis=2), quant.alpha_window)
        votes = votes.reshape(c, m * a)
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


def _thin_partners(local: IntArray, partner: IntArray, refs: int) -> tuple[IntArray, IntArray]:
    """Keep at most about _MAX_PARTNERS partners per reference point: every k-th one.

    `local` is sorted (np.nonzero's row order) and the partners of a reference point
    are in scene order, which is grouped by space: every k-th is an even subsample.
    """
    count = np.bincount(local, minlength=refs)
    if count.max(initial=0) <= _MAX_PARTNERS:
        return local, partner
    stride = np.maximum(-(-count // _MAX_PARTNERS), 1)
    rank = np.arange(local.size) - np.repeat(np.cumsum(count) - count, count)
    keep = rank % stride[local] == 0
    return local[keep], partner[keep]


def _bucket_lookup(table_keys: IntArray, quant: _Quantiser) -> Callable[[IntArray], IntArray]:
    """A function from feature keys to bucket indices (-1: not in the table)."""
    space = quant.dist_bins * quant.angle_bins**3
    if space <= _DENSE_KEYS:  # a direct table: one gather per key
        dense = np.full(space, -1, dtype=np.int64)
        dense[table_keys] = np.arange(table_keys.size)
        return lambda keys: dense[keys]
    last = table_keys.size - 1

    def search(keys: IntArray) -> IntArray:
        pos = np.minimum(np.searchsorted(table_keys, keys), last)
        return np.where(table_keys[pos] == keys, pos, -1)

    return search


def _ref_chunks(
    scene_p: FloatArray,
    refs: IntArray,
    frames: npt.NDArray[np.float64],
    dmax2: float,
    width: int,
) -> Iterator[tuple[IntArray, npt.NDArray[np.float64], IntArray]]:
    """Yield (reference points, their frames, candidate partners) in bounded chunks.

    Scene points are binned in cubes of the pairing radius; the candidates of the
    reference points of one cube are the points of the 27 cubes around it, so the
    cost of a large scene grows with its size, not with its size squared.
    """
    radius = math.sqrt(dmax2)
    cell = _cells(scene_p, radius)
    everyone = np.arange(scene_p.shape[0])
    if int(np.prod(cell.max(axis=0) + 1, dtype=np.float64)) <= 8:
        groups: list[tuple[IntArray, IntArray]] = [(np.arange(refs.size), everyone)]
    else:
        cell_key = _CellKey(cell)
        key = cell_key(cell)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        ref_key = key[refs]
        groups = []
        offsets = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1]), -1).reshape(-1, 3)
        ref_cells, first_ref, inverse = np.unique(ref_key, return_index=True, return_inverse=True)
        by_cell = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_cell], np.arange(ref_cells.size + 1))
        for g in range(ref_cells.size):
            keys = cell_key(cell[refs[first_ref[g]]] + offsets)
            keys = keys[keys >= 0]
            lo = np.searchsorted(sorted_key, keys, side="left")
            hi = np.searchsorted(sorted_key, keys, side="right")
            candidates = np.concatenate([order[i:j] for i, j in zip(lo, hi, strict=True)])
            groups.append((by_cell[bounds[g] : bounds[g + 1]], candidates))
    for members, candidates in groups:
        if candidates.size > _MAX_CANDIDATES:  # crowded: an even subsample (scene order is spatial)
            candidates = candidates[:: -(-candidates.size // _MAX_CANDIDATES)]
        rows = max(1, min(_CHUNK_PAIRS // max(candidates.size, 1), _ACCUMULATOR // width))
        for first in range(0, members.size, rows):
            pick = members[first : first + rows]
            yield refs[pick], frames[pick], candidates


def _smooth_alpha(votes: npt.NDArray[np.int64], window: int) -> npt.NDArray[np.int64]:
    """Circular moving sum of `window` bins along the last (rotation) axis."""
    if window <= 1:
        return votes
    before = window // 2
    after = window - before - 1
    padded = np.concatenate(
        [votes[..., votes.shape[-1] - before :], votes, votes[..., :after]], axis=-1
    )
    total = np.cumsum(padded, axis=-1)
    total[..., window:] -= total[..., :-window].copy()
    out: npt.NDArray[np.int64] = total[..., window - 1 :]
    return out


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
    """The best pose clusters, best supported first: (rotations, translations, votes).

    Two poses are neighbours when they differ by less than one angle step (6° to
    30°) and a tenth of the diameter. The pose with the most votes among its free
    neighbours founds a cluster of those neighbours, whose pose is their
    vote-weighted mean; repeated for the best _CLUSTERS_VERIFIED clusters, over
    the _MAX_HYPOTHESES best-voted poses.
    """
    if votes.size == 0:
        return np.empty((0, 3, 3)), np.empty((0, 3)), np.empty(0)
    order = np.argsort(-votes, kind="stable")[:_MAX_HYPOTHESES]
    rot, trans, votes = rot[order], trans[order], votes[order]
    quat = _rotations_to_quaternions(rot)
    max_angle = min(max(quant.angle_step, math.radians(6.0)), math.radians(30.0))
    # einsum, not matmul: BLAS threads cost more than these small products
    square = np.einsum("ij,ij->i", trans, trans)
    shift2 = square[:, None] + square[None, :] - 2.0 * np.einsum("ik,jk->ij", trans, trans)
    turn = np.abs(np.einsum("ik,jk->ij", quat, quat))
    near = (turn >= math.cos(max_angle / 2.0)) & (shift2 <= (0.1 * diameter) ** 2)
    support = np.einsum("ij,j->i", near.astype(np.float64), votes)
    free = np.ones(votes.size, dtype=bool)
    out_q: list[FloatArray] = []
    out_t: list[FloatArray] = []
    out_v: list[float] = []
    while len(out_v) < _CLUSTERS_VERIFIED and free.any():
        i = int(np.argmax(np.where(free, support, -1.0)))
        members = np.flatnonzero(near[i] & free)
        free[members] = False
        support -= np.einsum("ij,j->i", near[:, members].astype(np.float64), votes[members])
        w = votes[members]
        q = quat[members] * np.where(quat[members] @ quat[i] < 0.0, -1.0, 1.0)[:, None]
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
        self.tol = _INLIER_DISTANCE * model.check_scale
        self.tol_h = _INLIER_HEIGHT * model.check_scale
        self.scene_p = tree.data
        self.cos = math.cos(math.radians(_INLIER_ANGLE))
        self.elapsed_ms = 0.0

    def score(self, rotation: FloatArray, translation: FloatArray) -> tuple[float, int]:
        """(score, inliers) of a pose."""
        start = time.perf_counter()
        p = self.points @ rotation.T + translation
        n = self.normals @ rotation.T
        dist, idx = self.tree.query(p, distance_upper_bound=self.tol)
        near = np.flatnonzero(np.isfinite(dist))
        q_n = self.scene_n[idx[near]]
        agree = np.einsum("ij,ij->i", n[near], q_n) >= self.cos
        height = np.abs(np.einsum("ij,ij->i", p[near] - self.scene_p[idx[near]], q_n))
        inliers = int(np.count_nonzero(agree & (height <= self.tol_h)))
        m = self.points.shape[0]
        if self.view is None:
            expected = m
        else:
            expected = max(int(np.count_nonzero(n @ self.view > 0.0)), m // 4, 1)
        self.elapsed_ms += (time.perf_counter() - start) * 1000.0
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
    points: FloatArray,
    normals: FloatArray,
    rotation: FloatArray,
    translation: FloatArray,
    tree: cKDTree,
    scene_n: FloatArray,
    radius: float,
    floor: float,
    tolerance: float,
    iterations: int,
) -> tuple[FloatArray, FloatArray, float]:
    """Point-to-plane ICP of `points` from a pose; returns (rotation, translation, RMS).

    Pairs farther than `radius` are rejected; after each step the radius becomes
    three times the median pair distance, but never less than `floor` nor more
    than before. The RMS is that of the point-to-plane distances of the last pairs.
    """
    r, t = rotation.copy(), translation.copy()
    cos = math.cos(math.radians(_ICP_ANGLE))
    scene_p = tree.data
    previous = math.inf
    rms = math.inf
    for _ in range(iterations):
        p = points @ r.T + t
        n = normals @ r.T
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
        x = np.linalg.solve(a.T @ a + np.eye(6) * 1e-12, a.T @ b)
        delta = _rodrigues(x[:3])
        r = delta @ r
        t = delta @ (t - centre) + centre + x[3:]
        radius = min(radius, max(3.0 * float(np.median(dist[ok])), floor))
    return r, t, rms
