"""Normals for point clouds that have none: local planes, oriented one way.

Surface matching needs a unit normal per point, pointing out of the object, and
many scans and models come without them (the Stanford bunny as usually
distributed, most depth-camera exports). :func:`estimate_normals` gives them:

1. **Direction**: the plane fitted to each point's ``k`` nearest neighbours (and
   itself) by principal component analysis; the normal is the eigenvector of the
   smallest eigenvalue of their covariance. Neighbours come from scipy's KD-tree;
   the covariances are solved in batches with one ``numpy.linalg.eigh`` call each.
2. **Sense** (a plane has two), one of:

   - towards a ``viewpoint`` (the sensor that took a scan): each normal is flipped
     to face it. The right choice for a single-view scan, whose visible surface
     faces the camera by definition.
   - consistently (Hoppe et al., 1992), when no viewpoint is given: over the
     neighbour graph weighted by ``1 - |n_i . n_j|``, a minimum spanning tree
     links points whose planes agree; each point takes the sense that agrees with
     its parent's. In each connected part, the point farthest from the part's
     centroid is the seed, its normal pointing away from that centroid: outward,
     for a closed object. The signs are propagated by pointer jumping (``log2`` of
     the tree's depth numpy steps), not point by point.

Thin parts (two sides closer than the neighbourhood) and sharp edges get the
normals of a blend of both sides; a larger ``k`` smooths more, a smaller one
follows detail but is noisier.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import (  # type: ignore[import-untyped]
    breadth_first_order,
    connected_components,
    minimum_spanning_tree,
)
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud, read_points, write_ply

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

K_DEFAULT: Final = 20
"""Neighbours per point when none is given (as in Open3D's and PCL's examples)."""

K_MIN: Final = 3
K_MAX: Final = 200

MAX_POINTS: Final = 10_000_000
"""Most vertices :func:`ply_with_normals` reads by default (about 4 GB of memory)."""

_BATCH: Final = 65_536
"""Points whose neighbourhood covariances are solved at once (bounds the memory)."""

_EDGE_FLOOR: Final = 1e-6
"""Added to every edge weight: scipy's sparse graphs drop edges of weight zero."""


def estimate_normals(
    points: npt.ArrayLike,
    *,
    k: int = K_DEFAULT,
    viewpoint: npt.ArrayLike | None = None,
) -> PointCloud:
    """Unit normals for ``points`` from their neighbourhoods, oriented one way.

    Parameters
    ----------
    points : (N, 3) array_like
        Coordinates, finite, N >= 3.
    k : int
        Neighbours per point used to fit its plane, 3 to 200 (capped at N - 1).
    viewpoint : (3,) array_like, optional
        Where the sensor was: every normal faces it. Without it, the normals are
        oriented consistently over the surface, outward for a closed object.

    Returns
    -------
    PointCloud
        The same points, in the same order, with unit normals.

    Raises
    ------
    InputError
        Fewer than 3 points, NaN or infinite values, `k` out of range, a
        viewpoint that is not three finite numbers, all points at one place.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ball = rng.normal(size=(500, 3))
    >>> ball /= np.linalg.norm(ball, axis=1, keepdims=True)
    >>> cloud = estimate_normals(ball)
    >>> bool(np.all(np.einsum("ij,ij->i", cloud.normals, ball) > 0.9))
    True
    """
    xyz = _as_points(points)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not K_MIN <= k <= K_MAX:
        raise InputError(f"k must be an integer from {K_MIN} to {K_MAX}, got {k!r}")
    view = None if viewpoint is None else _as_viewpoint(viewpoint)
    if float(np.ptp(xyz, axis=0).max()) == 0.0:
        raise InputError(f"all {len(xyz)} points are at one place: no surface to fit")
    neighbours = min(int(k), len(xyz) - 1)
    tree = cKDTree(xyz)
    _, idx = tree.query(xyz, k=neighbours + 1, workers=-1)
    index: IntArray = np.asarray(idx, dtype=np.int64)
    normals = _plane_normals(xyz, index)
    if view is not None:
        facing = np.einsum("ij,ij->i", normals, view - xyz) < 0
        normals[facing] *= -1.0
    else:
        normals *= _consistent_signs(xyz, normals, index)[:, None]
    return PointCloud(xyz, normals)


def ply_with_normals(
    data: bytes,
    *,
    k: int = K_DEFAULT,
    viewpoint: npt.ArrayLike | None = None,
    max_points: int = MAX_POINTS,
) -> tuple[PointCloud, bytes]:
    """A PLY file's vertices with estimated normals, and that as a new PLY file.

    What ``aerovision ply normals`` and the client's ``ply_normals`` run. Any
    normals the file has are replaced; only ``x y z`` are read, and the file
    written holds ``x y z nx ny nz`` per vertex (colours, faces and other
    properties are not carried over), binary little endian (:func:`write_ply`).

    Raises
    ------
    InputError
        What :func:`~aerovision.engine.ply.read_points` and :func:`estimate_normals`
        raise.
    """
    cloud = estimate_normals(read_points(data, max_points=max_points), k=k, viewpoint=viewpoint)
    how = "towards the viewpoint" if viewpoint is not None else "consistently, outward"
    comment = f"normals estimated by AeroVision from {k} neighbours, oriented {how}"
    return cloud, write_ply(cloud, comment=comment)


def _as_points(points: npt.ArrayLike) -> FloatArray:
    try:
        xyz = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("points must be an (N, 3) array of numbers") from exc
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InputError(f"points must be an (N, 3) array, got shape {xyz.shape}")
    if xyz.shape[0] < 3:
        raise InputError(f"at least 3 points are needed to fit a plane, got {xyz.shape[0]}")
    if not np.isfinite(xyz).all():
        raise InputError("points contain NaN or infinite values")
    return xyz


def _as_viewpoint(viewpoint: npt.ArrayLike) -> FloatArray:
    try:
        view = np.asarray(viewpoint, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError("the viewpoint must be three numbers x, y, z") from exc
    if view.shape != (3,) or not np.isfinite(view).all():
        raise InputError(f"the viewpoint must be three finite numbers x, y, z, got {viewpoint!r}")
    return view


def _plane_normals(xyz: FloatArray, index: IntArray) -> FloatArray:
    """The smallest-eigenvalue eigenvector of each neighbourhood's covariance."""
    normals = np.empty_like(xyz)
    for start in range(0, len(xyz), _BATCH):
        hood = xyz[index[start : start + _BATCH]]  # (B, k + 1, 3)
        hood = hood - hood.mean(axis=1, keepdims=True)
        cov = np.einsum("bki,bkj->bij", hood, hood)
        _, vectors = np.linalg.eigh(cov)  # eigenvalues ascending
        normals[start : start + _BATCH] = vectors[:, :, 0]
    return normals


def _consistent_signs(xyz: FloatArray, normals: FloatArray, index: IntArray) -> FloatArray:
    """+1 or -1 per point, so that neighbours' normals agree and each part faces out."""
    n = len(xyz)
    rows = np.repeat(np.arange(n, dtype=np.int64), index.shape[1] - 1)
    cols = index[:, 1:].reshape(-1)
    agree = np.abs(np.einsum("ij,ij->i", normals[rows], normals[cols]))
    graph = coo_matrix((1.0 - np.minimum(agree, 1.0) + _EDGE_FLOOR, (rows, cols)), shape=(n, n))
    tree = minimum_spanning_tree(graph.tocsr()).tocoo()

    # one more node, linked to a seed in every connected part: one traversal for all
    parts = _parts(n, tree.row, tree.col)
    centroids = np.stack(
        [np.bincount(parts, weights=xyz[:, i]) for i in range(3)], axis=1
    ) / np.bincount(parts)[:, None]
    away = xyz - centroids[parts]
    reach = np.einsum("ij,ij->i", away, away)
    order = np.lexsort((-reach, parts))
    first = np.ones(n, dtype=bool)
    first[1:] = parts[order[1:]] != parts[order[:-1]]
    seeds = order[first]
    root = n
    links = coo_matrix(
        (
            np.concatenate([tree.data, np.ones(len(seeds))]),
            (
                np.concatenate([tree.row, np.full(len(seeds), root)]),
                np.concatenate([tree.col, seeds]),
            ),
        ),
        shape=(n + 1, n + 1),
    ).tocsr()
    _, parent = breadth_first_order(links, root, directed=False, return_predecessors=True)
    parent = np.asarray(parent, dtype=np.int64)
    parent[root] = root

    relative = np.ones(n + 1, dtype=np.int8)
    inner = np.flatnonzero(parent[:n] != root)
    dots = np.einsum("ij,ij->i", normals[inner], normals[parent[inner]])
    relative[inner] = np.where(dots < 0, -1, 1)
    outward = np.einsum("ij,ij->i", normals[seeds], away[seeds])
    relative[seeds] = np.where(outward < 0, -1, 1)

    # pointer jumping: sign[i] = product of `relative` on the path from i to the root
    sign, up = relative, parent
    while np.any(up != root):
        sign = sign * sign[up]
        up = up[up]
    result: FloatArray = sign[:n].astype(np.float64)
    return result


def _parts(n: int, rows: npt.ArrayLike, cols: npt.ArrayLike) -> IntArray:
    """Connected part of each node of the forest given by its edges."""
    graph = coo_matrix((np.ones(len(np.asarray(rows))), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    parts: IntArray = np.asarray(labels, dtype=np.int64)
    return parts
