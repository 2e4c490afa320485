"""Normal estimation (engine.normals) against surfaces whose normals are known."""

from __future__ import annotations

import numpy as np
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.normals import estimate_normals, ply_with_normals
from aerovision.engine.ply import read_ply, read_points, write_ply
from tests.shapes import OBJECT, Sphere, random_rotation, sample_union, unit


def _angles(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Angle in degrees between each estimated normal and the true one, sense included."""
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", estimated, truth), -1.0, 1.0)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closed_object_gets_outward_normals(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points, truth = sample_union(OBJECT, 4000, rng)
    turn = random_rotation(rng)
    points, truth = points @ turn.T + rng.uniform(-5, 5, 3), truth @ turn.T
    angles = _angles(estimate_normals(points).normals, truth)
    assert np.mean(angles < 90) > 0.995  # the sense: outward almost everywhere
    assert np.median(angles) < 3.0  # the direction: the true plane's


def test_noise_blurs_the_direction_but_not_the_sense() -> None:
    rng = np.random.default_rng(7)
    points, truth = sample_union(OBJECT, 4000, rng)
    noisy = points + rng.normal(0.0, 0.005 * 1.4, points.shape)
    angles = _angles(estimate_normals(noisy).normals, truth)
    assert np.mean(angles < 90) > 0.99
    assert np.median(angles) < 8.0


def test_a_scan_faces_its_viewpoint() -> None:
    rng = np.random.default_rng(11)
    points, truth = sample_union(OBJECT, 6000, rng)
    viewpoint = np.array([3.0, -2.0, 4.0])
    seen = np.einsum("ij,ij->i", truth, viewpoint - points) > 0
    cloud = estimate_normals(points[seen], viewpoint=viewpoint)
    facing = np.einsum("ij,ij->i", cloud.normals, viewpoint - points[seen])
    assert np.all(facing >= 0)
    assert np.median(_angles(cloud.normals, truth[seen])) < 3.0


def test_separate_objects_are_each_oriented_outward() -> None:
    rng = np.random.default_rng(5)
    one, n1 = Sphere((0.0, 0.0, 0.0), 1.0).sample(1500, rng)
    two, n2 = Sphere((10.0, 0.0, 0.0), 0.5).sample(800, rng)
    cloud = estimate_normals(np.concatenate([one, two]))
    angles = _angles(cloud.normals, np.concatenate([n1, n2]))
    assert np.all(angles < 30)


def test_points_keep_their_order_and_values() -> None:
    rng = np.random.default_rng(3)
    points = unit(rng.normal(size=(300, 3))) * 2.0
    cloud = estimate_normals(points, k=10)
    assert np.array_equal(cloud.points, points)
    assert np.allclose(np.linalg.norm(cloud.normals, axis=1), 1.0)


@pytest.mark.parametrize(
    ("points", "kwargs", "message"),
    [
        (np.zeros((2, 3)), {}, "at least 3 points"),
        (np.zeros((10, 2)), {}, "(N, 3)"),
        ([[0, 0, 0], [1, 0, float("nan")], [0, 1, 0]], {}, "NaN"),
        (np.zeros((10, 3)), {}, "one place"),
        (np.eye(3), {"k": 2}, "k must be"),
        (np.eye(3), {"k": 201}, "k must be"),
        (np.eye(3), {"k": True}, "k must be"),
        (np.eye(3), {"viewpoint": (1, 2)}, "viewpoint"),
        (np.eye(3), {"viewpoint": (1, 2, float("inf"))}, "viewpoint"),
        ("abc", {}, "numbers"),
    ],
)
def test_bad_input_is_a_clear_error(points: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        estimate_normals(points, **kwargs)  # type: ignore[arg-type]


def test_fewer_points_than_k_uses_them_all() -> None:
    cloud = estimate_normals([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.01]], k=20)
    assert np.allclose(np.abs(cloud.normals[:, 2]), 1.0, atol=0.01)


PLAIN = (
    b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
    b"property float z\nproperty uchar red\nelement face 1\nproperty list uchar int vertex_indices\n"
    b"end_header\n0 0 0 255\n1 0 0 0\n0 1 0 0\n1 1 0 9\n3 0 1 2\n"
)


def test_points_are_read_without_normals_and_written_back_with_them() -> None:
    points = read_points(PLAIN, max_points=10)
    assert points.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]
    with pytest.raises(InputError, match="aerovision ply normals IN.ply OUT.ply"):
        read_ply(PLAIN, max_points=10)
    cloud, data = ply_with_normals(PLAIN)
    back = read_ply(data, max_points=10)
    assert np.array_equal(back.points, points)
    assert np.allclose(back.normals, cloud.normals, atol=1e-7)
    assert b"comment normals estimated by AeroVision" in data[:400]


def test_large_coordinates_keep_their_digits() -> None:
    points = np.array([[512345.125, 7123456.5, 101.25], [512346.0, 7123456.5, 101.25],
                       [512345.125, 7123457.5, 101.25], [512346.0, 7123457.0, 101.5]])
    back = read_ply(write_ply(estimate_normals(points)), max_points=10)
    assert np.array_equal(back.points, points)


def test_read_points_refuses_what_read_ply_refuses() -> None:
    with pytest.raises(InputError, match="no x"):
        read_points(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float a\nend_header\n1\n", max_points=10)
    with pytest.raises(InputError, match="NaN or infinite coordinates"):
        read_points(PLAIN.replace(b"\n1 0 0 0\n", b"\nnan 0 0 0\n"), max_points=10)
    with pytest.raises(InputError, match="over the limit"):
        read_points(PLAIN, max_points=3)
