"""Pictures of point clouds: the alignment overlay and PLY thumbnails."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud
from aerovision.engine.render3d import (
    BACKGROUND,
    MODEL_COLOUR,
    render_alignment,
    render_cloud_thumbnail,
)


def _sphere(
    n: int = 3000, radius: float = 1.0, centre: tuple[float, ...] = (0, 0, 0)
) -> PointCloud:
    normals = np.random.default_rng(n).normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return PointCloud(np.asarray(centre) + radius * normals, normals)


def _greenish(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return (g > 60) & (g > b + 40) & (g > r + 40)


def _greyish(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    b, g, r = (image[..., i].astype(int) for i in range(3))
    grey: npt.NDArray[np.bool_] = (g > 80) & (np.abs(g - b) < 8) & (np.abs(g - r) < 8)
    return grey


def test_alignment_shows_the_posed_model_over_the_scene() -> None:
    model = _sphere(2000, 0.5)
    scene = _sphere(4000, 0.5, centre=(3.0, 0.0, 0.0))
    pose = np.eye(4)
    pose[0, 3] = 3.0
    image = render_alignment(model, scene, pose)
    assert image.shape == (300, 900, 3) and image.dtype == np.uint8
    for k in range(3):  # each panel shows the model, drawn over the scene it lies on
        panel = image[20:-20, k * 300 + 2 : (k + 1) * 300]
        assert _greenish(panel).sum() > 1000
        assert _greenish(panel).sum() > 2 * _greyish(panel).sum()


def test_alignment_of_a_wrong_pose_shows_both_apart() -> None:
    model = _sphere(2000, 0.5)
    scene = _sphere(4000, 0.5, centre=(3.0, 0.0, 0.0))
    image = render_alignment(model, scene, np.eye(4), size=(600, 200))
    assert image.shape == (200, 600, 3)
    front = image[25:-25, 2:200]
    green_cols = np.flatnonzero(_greenish(front).any(axis=0))
    grey_cols = np.flatnonzero(_greyish(front).any(axis=0))
    assert green_cols.size and grey_cols.size
    assert green_cols.max() < grey_cols.min()  # the model (x = 0) left of the scene (x = 3)


def test_alignment_without_a_pose_draws_the_scene_only() -> None:
    image = render_alignment(_sphere(500), _sphere(800), None)
    assert not _greenish(image).any()
    assert _greyish(image).sum() > 1000


def test_nearer_points_hide_farther_ones() -> None:
    """A green plate in front (z = 1) of a grey one (z = 0): the front view is all green."""
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 60), np.linspace(-1, 1, 60)), -1).reshape(-1, 2)
    up = np.tile([0.0, 0.0, 1.0], (len(grid), 1))
    back = PointCloud(np.column_stack([grid, np.zeros(len(grid))]), up)
    front = PointCloud(np.column_stack([grid, np.ones(len(grid))]), up)
    image = render_alignment(front, back, np.eye(4))
    panel = image[30:-30, 30:270]
    assert _greenish(panel).sum() > 0.5 * panel.shape[0] * panel.shape[1]
    assert _greyish(panel).sum() == 0


def test_thumbnail_shape_follows_the_cloud() -> None:
    image = render_cloud_thumbnail(_sphere(3000), 256)
    assert image.dtype == np.uint8 and image.ndim == 3 and max(image.shape[:2]) == 256
    drawn = np.any(image != np.array(BACKGROUND, np.uint8), axis=2)
    assert drawn.mean() > 0.4
    rod = PointCloud(
        np.column_stack([np.linspace(0, 10, 500), np.zeros(500), np.zeros(500)]),
        np.tile([0, 1.0, 0], (500, 1)),
    )
    thin = render_cloud_thumbnail(rod, 128)
    assert thin.shape[1] == 128 and 32 <= thin.shape[0] < 128


def test_single_point_and_huge_clouds() -> None:
    one = PointCloud(np.zeros((1, 3)), np.array([[0.0, 0.0, 1.0]]))
    assert render_cloud_thumbnail(one, 64).shape[:2] == (64, 64)
    assert render_alignment(one, one, np.eye(4)).shape == (300, 900, 3)
    big = _sphere(300_000)
    assert render_cloud_thumbnail(big, 64).shape[:2] == (64, 64)


@pytest.mark.parametrize(
    "size", [(10, 300), (900, 10), (900,), "900x300", (900.0, 300), (True, 300)]
)
def test_bad_sizes(size: object) -> None:
    with pytest.raises(InputError, match="size"):
        render_alignment(_sphere(10), _sphere(10), None, size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("pose", [np.eye(3), np.full((4, 4), np.nan), "eye"])
def test_bad_poses(pose: object) -> None:
    with pytest.raises(InputError, match="pose"):
        render_alignment(_sphere(10), _sphere(10), pose)  # type: ignore[arg-type]


@pytest.mark.parametrize("long_side", [0, 31, 10_000, 64.0, True])
def test_bad_thumbnail_sizes(long_side: object) -> None:
    with pytest.raises(InputError, match="long_side"):
        render_cloud_thumbnail(_sphere(10), long_side)  # type: ignore[arg-type]


def test_wrong_types() -> None:
    with pytest.raises(InputError, match="PointCloud"):
        render_cloud_thumbnail(np.zeros((5, 3)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="PointCloud"):
        render_alignment(np.zeros((5, 3)), _sphere(10), None)  # type: ignore[arg-type]


def test_model_colour_is_green() -> None:
    b, g, r = MODEL_COLOUR
    assert g > b and g > r
