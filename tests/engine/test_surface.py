"""Surface matching (PPF + ICP) against scenes whose answer is known: a generated object moved
by a random rigid pose, with noise, clutter and partial views; and scenes without it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud
from aerovision.engine.surface import (
    TRAINING_PARAMS,
    SurfaceModel,
    match_surface,
    train_model,
    training_key,
)
from tests.shapes import (
    OBJECT,
    make_scene,
    object_cloud,
    pose_errors,
    random_rotation,
    sample_union,
    solved,
    unit,
)


@pytest.fixture(scope="module", name="object_cloud")
def _object_cloud() -> PointCloud:
    return object_cloud()


@pytest.fixture(scope="module")
def trained(object_cloud: PointCloud) -> SurfaceModel:
    return train_model(object_cloud)


# --- known answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_full_views_are_all_solved(trained: SurfaceModel, seed: int, noise: float) -> None:
    case = make_scene("full", seed, diameter=trained.diameter, noise=noise)
    result = match_surface(trained, case.scene, rng=seed)
    assert solved(result, case, trained.diameter), result.summary()
    assert result.poses_found == 1
    assert result.score >= 0.55
    assert result.icp_residual is not None and result.icp_residual < 0.01 * trained.diameter


def test_partial_views_with_clutter_mostly_solved(trained: SurfaceModel) -> None:
    cases = [make_scene("partial", 100 + seed, diameter=trained.diameter) for seed in range(20)]
    results = [match_surface(trained, c.scene, rng=seed) for seed, c in enumerate(cases)]
    rate = np.mean([solved(r, c, trained.diameter) for r, c in zip(results, cases, strict=True)])
    assert rate >= 0.9
    # a pose that is reported is a right one: no false pose beside the true one
    for r, c in zip(results, cases, strict=True):
        assert r.pose is None or solved(r, c, trained.diameter)


@pytest.mark.parametrize("seed", range(10))
def test_scenes_without_the_object_report_nothing(trained: SurfaceModel, seed: int) -> None:
    case = make_scene("none", 200 + seed, diameter=trained.diameter)
    result = match_surface(trained, case.scene, rng=seed)
    assert result.poses_found == 0
    assert result.pose is None and result.poses == () and result.icp_residual is None
    assert 0.0 <= result.score < 0.55


@pytest.mark.parametrize("seed", range(4))
def test_without_icp_the_voting_pose_is_close_and_verified(
    trained: SurfaceModel, seed: int
) -> None:
    case = make_scene("full", 300 + seed, diameter=trained.diameter)
    result = match_surface(trained, case.scene, use_icp=False, rng=seed)
    assert result.pose is not None and case.rotation is not None and case.translation is not None
    angle, shift = pose_errors(result.pose, case.rotation, case.translation, trained.diameter)
    assert angle < 6.0 and shift < 0.03
    assert result.icp_residual is None and result.timings["icp_ms"] == 0.0


def test_two_copies_are_two_poses(trained: SurfaceModel, object_cloud: PointCloud) -> None:
    rng = np.random.default_rng(5)
    parts = []
    truths = []
    for offset in (np.zeros(3), np.array([3.0, 0.5, 0.0])):
        rot = random_rotation(rng)
        p, q = sample_union(OBJECT, 3000, rng)
        parts.append((p @ rot.T + offset, q @ rot.T))
        truths.append((rot, offset))
    scene = PointCloud(np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts]))
    result = match_surface(trained, scene, rng=0)
    assert result.poses_found == 2
    for rot, offset in truths:
        errors = [pose_errors(p.pose, rot, offset, trained.diameter) for p in result.poses]
        assert any(angle < 2.0 and shift < 0.01 for angle, shift in errors)


def test_scene_much_larger_than_the_object(trained: SurfaceModel) -> None:
    """A 12-unit-wide scene (many pairing cells) with the object in a corner."""
    case = make_scene("full", 7, diameter=trained.diameter)
    rng = np.random.default_rng(8)
    floor = np.column_stack(
        [rng.uniform(-6, 6, 20000), rng.uniform(-6, 6, 20000), np.full(20000, -5.0)]
    )
    up = np.tile([0.0, 0.0, 1.0], (20000, 1))
    scene = PointCloud(np.vstack([case.scene.points, floor]), np.vstack([case.scene.normals, up]))
    result = match_surface(trained, scene, rng=1)
    assert solved(result, case, trained.diameter)


def test_far_outliers_do_not_break_the_grids(trained: SurfaceModel) -> None:
    """Two points a billion units away on every axis: exact cell keys even so."""
    case = make_scene("full", 8, diameter=trained.diameter)
    far = np.array([[1e9, 1e9, 1e9], [-1e9, 5e8, -1e9]])
    scene = PointCloud(np.vstack([case.scene.points, far]), np.vstack([case.scene.normals, far]))
    assert solved(match_surface(trained, scene, rng=2), case, trained.diameter)


def test_absurdly_spread_scene_is_a_clear_error(trained: SurfaceModel) -> None:
    case = make_scene("full", 9, diameter=trained.diameter)
    scene = PointCloud(
        np.vstack([case.scene.points, [[1e300, 0.0, 0.0]]]),
        np.vstack([case.scene.normals, [[1.0, 0.0, 0.0]]]),
    )
    with pytest.raises(InputError, match="too far apart"):
        match_surface(trained, scene, rng=0)


@pytest.mark.parametrize(
    "params",
    [
        {"num_angles": 120},
        {"relative_sampling_step": 0.03, "relative_distance_step": 0.02},
        {"relative_sampling_step": 0.08, "num_angles": 20},
    ],
)
def test_other_parameters_still_find_the_object(
    object_cloud: PointCloud, params: dict[str, float]
) -> None:
    """Finer rotation steps (votes summed over one feature step), finer and coarser sampling."""
    model = train_model(object_cloud, **params)  # type: ignore[arg-type]
    case = make_scene("partial", 12, diameter=model.diameter)
    assert solved(match_surface(model, case.scene, rng=0), case, model.diameter)


def test_reproducible_with_a_seed(trained: SurfaceModel) -> None:
    case = make_scene("partial", 400, diameter=trained.diameter)
    a = match_surface(trained, case.scene, rng=3)
    b = match_surface(trained, case.scene, rng=np.random.default_rng(3))
    assert a.pose is not None and b.pose is not None
    np.testing.assert_array_equal(a.pose, b.pose)


# --- the trained model ----------------------------------------------------------------------


def test_model_round_trip_gives_identical_results(trained: SurfaceModel) -> None:
    data = trained.to_bytes()
    assert isinstance(data, bytes)
    again = SurfaceModel.from_bytes(data)
    assert again.num_points == trained.num_points and again.train_ms == 0.0
    for name in (
        "points",
        "normals",
        "fine_points",
        "table_keys",
        "table_starts",
        "pair_ref",
        "pair_alpha",
    ):
        np.testing.assert_array_equal(getattr(again, name), getattr(trained, name))
    case = make_scene("partial", 500, diameter=trained.diameter)
    a = match_surface(trained, case.scene, rng=9)
    b = match_surface(again, case.scene, rng=9)
    sa, sb = a.summary(), b.summary()
    sa.pop("timings"), sb.pop("timings")
    assert sa == sb and a.pose is not None
    assert again.to_bytes() == data


@pytest.mark.parametrize("data", [b"", b"not a model", b"PK\x03\x04" + b"\x00" * 40])
def test_corrupt_model_bytes(data: bytes, trained: SurfaceModel) -> None:
    with pytest.raises(InputError, match="train it again"):
        SurfaceModel.from_bytes(data)


def test_truncated_model_bytes(trained: SurfaceModel) -> None:
    data = trained.to_bytes()
    with pytest.raises(InputError, match="train it again"):
        SurfaceModel.from_bytes(data[: len(data) // 2])


def test_training_key() -> None:
    params = {"relative_sampling_step": 0.05, "relative_distance_step": 0.05, "num_angles": 30,
              "use_icp": False, "icp_iterations": 7}  # fmt: skip
    key = training_key(params)
    assert tuple(key) == TRAINING_PARAMS
    train_model(PointCloud(*sample_union(OBJECT, 500, np.random.default_rng(0))), **key)
    assert "use_icp" not in key and "icp_iterations" not in key
    assert key == training_key({**params, "use_icp": True, "icp_tolerance": 0.1})
    assert key != training_key({**params, "num_angles": 31})
    json.dumps(key)


def test_model_sizes(trained: SurfaceModel, object_cloud: PointCloud) -> None:
    assert 200 < trained.num_points < 1000
    assert trained.num_input_points == object_cloud.num_points
    pairs = trained.num_points * (trained.num_points - 1)
    assert pairs // 4 < trained.pair_ref.size <= pairs  # crowded hash cells are thinned
    assert trained.fine_points.shape[0] > 2 * trained.num_points
    assert trained.train_ms > 0


# --- results ---------------------------------------------------------------------------------


def test_summary_is_plain_json(trained: SurfaceModel) -> None:
    case = make_scene("full", 600, diameter=trained.diameter)
    result = match_surface(trained, case.scene, rng=0)
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert {"pose", "num_model_points", "num_scene_points", "icp_residual", "poses_found",
            "score", "poses", "timings"} <= set(summary)  # fmt: skip
    assert np.asarray(summary["pose"]).shape == (4, 4)
    assert summary["pose"][3] == [0.0, 0.0, 0.0, 1.0]
    assert summary["num_scene_points"] == case.scene.num_points
    assert summary["poses"][0]["score"] == summary["score"]
    assert {
        "train_ms",
        "sample_ms",
        "vote_ms",
        "cluster_ms",
        "verify_ms",
        "icp_ms",
        "match_ms",
    } <= set(summary["timings"])
    rotation = result.pose[:3, :3] if result.pose is not None else np.eye(3)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)


def test_summary_without_a_pose(trained: SurfaceModel) -> None:
    case = make_scene("none", 601, diameter=trained.diameter)
    summary = match_surface(trained, case.scene, rng=0).summary()
    assert summary["pose"] is None and summary["poses"] == [] and summary["poses_found"] == 0
    json.dumps(summary)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"relative_sampling_step": 0.005}, "relative_sampling_step must be a number in"),
        ({"relative_sampling_step": 0.6}, "relative_sampling_step"),
        ({"relative_sampling_step": "0.05"}, "relative_sampling_step"),
        ({"relative_sampling_step": math.nan}, "relative_sampling_step"),
        ({"relative_distance_step": 0.0}, "relative_distance_step"),
        ({"relative_distance_step": True}, "relative_distance_step"),
        ({"num_angles": 0}, "num_angles must be in"),
        ({"num_angles": 361}, "num_angles"),
        ({"num_angles": 30.0}, "num_angles must be an integer"),
        ({"num_angles": True}, "num_angles"),
    ],
)
def test_bad_training_parameters(
    object_cloud: PointCloud, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        train_model(object_cloud, **params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"icp_tolerance": 0.0}, "icp_tolerance"),
        ({"icp_tolerance": 1.5}, "icp_tolerance"),
        ({"icp_tolerance": None}, "icp_tolerance"),
        ({"icp_iterations": 0}, "icp_iterations must be in"),
        ({"icp_iterations": 1001}, "icp_iterations"),
        ({"icp_iterations": 10.0}, "icp_iterations must be an integer"),
        ({"use_icp": "yes"}, "use_icp"),
        ({"min_score": 0.0}, "min_score"),
    ],
)
def test_bad_matching_parameters(
    trained: SurfaceModel, params: dict[str, object], message: str
) -> None:
    scene = make_scene("full", 0, diameter=trained.diameter).scene
    with pytest.raises(InputError, match=message):
        match_surface(trained, scene, **params)  # type: ignore[arg-type]


def test_wrong_argument_types(trained: SurfaceModel, object_cloud: PointCloud) -> None:
    with pytest.raises(InputError, match="model must be a PointCloud"):
        train_model(np.zeros((10, 6)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="model must be a SurfaceModel"):
        match_surface(object_cloud, object_cloud)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="scene must be a PointCloud"):
        match_surface(trained, np.zeros((10, 6)))  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_model_is_a_clear_error(n: int) -> None:
    cloud = PointCloud(
        np.eye(3)[:n] if n > 1 else np.zeros((1, 3)), np.tile([0.0, 0.0, 1.0], (n, 1))
    )
    with pytest.raises(InputError, match="coincide|at least 4"):
        train_model(cloud)


def test_model_too_finely_sampled(object_cloud: PointCloud) -> None:
    dense = PointCloud(*sample_union(OBJECT, 40000, np.random.default_rng(1)))
    with pytest.raises(InputError, match="use a step of at least"):
        train_model(dense, relative_sampling_step=0.01)


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_tiny_scene_finds_nothing(trained: SurfaceModel, n: int) -> None:
    rng = np.random.default_rng(n)
    scene = PointCloud(rng.normal(size=(n, 3)), unit(rng.normal(size=(n, 3))))
    result = match_surface(trained, scene, rng=0)
    assert result.poses_found == 0 and result.pose is None
    assert result.num_scene_points == n


def test_scene_of_one_repeated_point(trained: SurfaceModel) -> None:
    scene = PointCloud(np.ones((50, 3)), np.tile([1.0, 0.0, 0.0], (50, 1)))
    assert match_surface(trained, scene, rng=0).poses_found == 0


@pytest.mark.parametrize(
    "params",
    [
        {"num_angles": 1},
        {"num_angles": 360, "relative_sampling_step": 0.2},
        {"relative_sampling_step": 0.5, "relative_distance_step": 0.5},
        {"relative_distance_step": 0.01},
    ],
)
def test_extreme_parameters_run(object_cloud: PointCloud, params: dict[str, float]) -> None:
    """The ends of every range train and match without error (finding is not promised)."""
    model = train_model(object_cloud, **params)  # type: ignore[arg-type]
    case = make_scene("full", 11, diameter=model.diameter)
    result = match_surface(model, case.scene, rng=0, icp_iterations=5)
    assert result.poses_found >= 0
