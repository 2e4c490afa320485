"""Each registry tool's runner on a Job, with its inputs in a temporary local store.

``run_job`` is what a task's process runs: inputs read from the store by name and
decoded once, thumbnails and result pictures written back, JSON-ready result data
returned. Each answer is checked against inputs built so that it is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PointCloud
from aerovision.jobs.runners import Job, run_job
from aerovision.store.files import LocalFileStore, StoreUnavailable
from aerovision.tools import TOOLS
from aerovision.tools.feature import FeatureParams
from aerovision.tools.spec import RunResult
from aerovision.tools.template import TemplateParams
from tests.images import encode, photo, scene_with_degraded_patch, scene_with_patch
from tests.shapes import object_cloud, ply_bytes, pose_errors, random_rotation

MAX_PIXELS = 50_000_000


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "store")


def _job(
    store: LocalFileStore,
    tool: str,
    inputs: Mapping[str, tuple[str, bytes]],
    params: Mapping[str, Any] | None = None,
    *,
    uid: str = "u",
    max_image_pixels: int = MAX_PIXELS,
) -> Job:
    """A job over ``inputs`` ({input name: (file name, bytes)}), written to ``store``
    the way the API writes uploads."""
    for filename, data in inputs.values():
        store.write(f"uploads/{uid}/{filename}", data)
    return Job(
        uid=uid,
        tool=tool,
        params=dict(params or {}),
        input_fields=tuple(inputs),
        input_files=tuple(f"uploads/{uid}/{filename}" for filename, _ in inputs.values()),
        thumbnails=tuple(f"thumbnails/{uid}/{filename}" for filename, _ in inputs.values()),
        results_prefix=f"results/{uid}",
        max_image_pixels=max_image_pixels,
    )


def _picture(store: LocalFileStore, key: str) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(store.read(key), np.uint8), cv2.IMREAD_UNCHANGED)
    assert picture is not None, f"{key} is not a picture"
    return picture


def test_template_finds_the_patch_where_it_was_pasted(store: LocalFileStore) -> None:
    scene, template, positions = scene_with_patch(3)
    job = _job(store, "template",
               {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))})

    result = run_job(job, store)

    data = result.result_data
    assert data["filtered_matches"] == 3 and data["method"] == "TM_CCOEFF_NORMED"
    assert sorted((m["x"], m["y"]) for m in data["matches"]) == sorted(positions)
    assert all(m["score"] > 0.95 for m in data["matches"])
    assert result.result_files == ["results/u/matches.png", "results/u/heatmap.png"]
    for key in result.result_files:
        assert _picture(store, key).shape[:2] == (480, 640)


def test_thumbnails_are_written_with_a_long_side_of_256(store: LocalFileStore) -> None:
    scene, template, _ = scene_with_patch(1)
    job = _job(store, "template", {"image": ("scene.jpg", encode(scene, ".jpg")),
                                   "template": ("patch.png", encode(template))})

    run_job(job, store)

    assert job.thumbnails == ("thumbnails/u/scene.jpg", "thumbnails/u/patch.png")
    assert store.read("thumbnails/u/scene.jpg")[:2] == b"\xff\xd8"  # a JPEG for a JPEG
    assert _picture(store, "thumbnails/u/scene.jpg").shape == (192, 256, 3)
    assert store.read("thumbnails/u/patch.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert _picture(store, "thumbnails/u/patch.png").shape[:2] == (48, 48)  # never enlarged


def test_feature_finds_the_homography_of_a_known_shift(store: LocalFileStore) -> None:
    train = photo("astronaut")  # 512×512
    dx, dy = 150, 100
    query = train[dy : dy + 256, dx : dx + 256].copy()
    job = _job(store, "feature", {"query_image": ("query.png", encode(query)),
                                  "train_image": ("train.png", encode(train))})

    result = run_job(job, store)

    data = result.result_data
    assert data["found"] is True and data["detector"] == "SIFT" and data["matcher"] == "FLANN"
    assert data["good_matches"] >= 50 and data["inlier_ratio"] > 0.9
    homography = np.array(data["homography"])
    expected = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(homography[:2, :2], expected[:2, :2], atol=0.01)
    np.testing.assert_allclose(homography[:2, 2], expected[:2, 2], atol=1.0)
    np.testing.assert_allclose(data["center"], [dx + 128, dy + 128], atol=1.0)
    assert result.result_files == ["results/u/matches.png"]
    assert _picture(store, "results/u/matches.png").shape[1] >= 256 + 512  # side by side


def test_surface_finds_a_known_pose_and_trains_the_model_once(store: LocalFileStore) -> None:
    model = object_cloud(n=1500)
    rotation = random_rotation(np.random.default_rng(5))
    translation = np.array([0.5, -0.3, 1.2])
    scene = PointCloud(model.points @ rotation.T + translation, model.normals @ rotation.T)
    inputs = {"model_file": ("model.ply", ply_bytes(model)),
              "scene_file": ("scene.ply", ply_bytes(scene, "binary_little_endian"))}

    first = run_job(_job(store, "surface", inputs), store)
    again = run_job(_job(store, "surface", inputs, uid="v"), store)

    data = first.result_data
    assert data["poses_found"] >= 1 and data["num_model_points"] == 1500
    diameter = float(np.linalg.norm(model.points.max(0) - model.points.min(0)))
    angle, shift = pose_errors(np.array(data["pose"]), rotation, translation, diameter)
    assert angle < 1.0 and shift < 0.005
    assert first.result_files == ["results/u/alignment.png"]
    assert _picture(store, "results/u/alignment.png").ndim == 3
    assert data["model_cache_hit"] is False
    assert again.result_data["model_cache_hit"] is True  # same model file, same params
    np.testing.assert_allclose(again.result_data["pose"], data["pose"], atol=1e-6)


def test_inspect_describes_size_channels_and_sharpness(store: LocalFileStore) -> None:
    sharp = photo("astronaut")[:300, :400]
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)

    results: list[RunResult] = []
    for uid, image in (("sharp", sharp), ("blurred", blurred)):
        job = _job(store, "inspect", {"image": ("photo.png", encode(image))}, {"bins": 16},
                   uid=uid)
        results.append(run_job(job, store))

    sharp_data, blurred_data = (r.result_data for r in results)
    assert (sharp_data["width"], sharp_data["height"], sharp_data["channels"]) == (400, 300, 3)
    assert [c["name"] for c in sharp_data["channel_stats"]] == ["blue", "green", "red"]
    assert all(len(c["histogram"]) == 16 and sum(c["histogram"]) == 400 * 300
               for c in sharp_data["channel_stats"])
    assert blurred_data["sharpness"] < sharp_data["sharpness"] / 10
    assert blurred_data["brightness"] == pytest.approx(sharp_data["brightness"], abs=1.0)
    assert results[0].result_files == ["results/sharp/histogram.png"]
    assert _picture(store, "results/sharp/histogram.png").shape == (200, 512, 3)


def test_inspect_keeps_a_grey_image_grey_and_alpha_as_a_fourth_channel(
    store: LocalFileStore,
) -> None:
    grey = cv2.cvtColor(photo("camera"), cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(photo("coffee"), cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = 128
    names = []
    for uid, image in (("grey", grey), ("bgra", bgra)):
        data = run_job(_job(store, "inspect", {"image": ("i.png", encode(image))}, uid=uid),
                       store).result_data
        names.append([c["name"] for c in data["channel_stats"]])
        if uid == "bgra":
            alpha = data["channel_stats"][3]
            assert (alpha["min"], alpha["max"], alpha["mean"], alpha["std"]) == (128, 128, 128, 0)
    assert names == [["gray"], ["blue", "green", "red", "alpha"]]


def _step(tool: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"tool": tool, "params": params}


def test_chain_stops_at_the_first_step_that_finds(store: LocalFileStore) -> None:
    scene, patch, (x, y) = scene_with_degraded_patch()
    steps = [
        _step("template", TemplateParams(threshold=0.95).model_dump()),
        _step("template", TemplateParams(threshold=0.7).model_dump()),
        _step("feature", FeatureParams().model_dump()),
    ]
    job = _job(store, "chain", {"image": ("scene.png", encode(scene)),
                                "template": ("patch.png", encode(patch))}, {"steps": steps})

    result = run_job(job, store)

    data = result.result_data
    assert (data["chain_result"], data["completed_step"], data["total_steps"]) == ("found", 2, 3)
    first, second, third = data["steps"]
    assert (first["status"], first["found"], first["result_data"]["filtered_matches"]) == (
        "done", False, 0)
    assert (second["status"], second["found"]) == ("done", True)
    [match] = second["result_data"]["matches"]
    assert (match["x"], match["y"]) == (x, y)
    assert third["status"] == "skipped" and "result_data" not in third
    assert result.result_files == [
        "results/u/step1/matches.png", "results/u/step1/heatmap.png",
        "results/u/step2/matches.png", "results/u/step2/heatmap.png",
    ]
    assert all(store.exists(key) for key in result.result_files)


def test_a_chain_step_that_cannot_use_the_inputs_is_recorded_and_the_chain_goes_on(
    store: LocalFileStore,
) -> None:
    scene, patch, _ = scene_with_patch(1)
    steps = [_step("surface", {}), _step("template", TemplateParams().model_dump())]
    job = _job(store, "chain", {"image": ("scene.png", encode(scene)),
                                "template": ("patch.png", encode(patch))}, {"steps": steps})

    data = run_job(job, store).result_data

    assert (data["chain_result"], data["completed_step"]) == ("found", 2)
    failed = data["steps"][0]
    assert (failed["status"], failed["found"]) == ("error", False)
    assert failed["error"].startswith("image: ")  # the chain's name for the input
    assert "; template: " in failed["error"]
    with pytest.raises(InputError, match=r"^no step of the chain could run: step 1 \(surface\): "):
        run_job(_job(store, "chain", {"image": ("scene.png", encode(scene)),
                                      "template": ("patch.png", encode(patch))},
                     {"steps": steps[:1]}, uid="v"), store)


def test_a_missing_input_is_an_input_error_naming_the_key_not_a_path(
    store: LocalFileStore, tmp_path: Path
) -> None:
    scene, template, _ = scene_with_patch(1)
    job = _job(store, "template",
               {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))})
    store.delete("uploads/u/patch.png")

    with pytest.raises(InputError) as missing:
        run_job(job, store)

    assert str(missing.value) == (
        "template: input file uploads/u/patch.png is missing from the file store"
    )
    assert str(tmp_path) not in str(missing.value)


def test_inputs_that_are_not_images_are_each_named(store: LocalFileStore) -> None:
    job = _job(store, "template", {"image": ("a.png", b"not an image at all"),
                                   "template": ("b.png", b"\x89PNG\r\n\x1a\nbroken")})

    with pytest.raises(InputError) as bad:
        run_job(job, store)

    image_part, template_part = str(bad.value).split("; ")
    assert image_part.startswith("image: ") and template_part.startswith("template: ")


def test_an_image_over_the_pixel_limit_says_which_setting_to_change(
    store: LocalFileStore,
) -> None:
    scene, template, _ = scene_with_patch(1)
    job = _job(store, "template",
               {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))},
               max_image_pixels=10_000)

    with pytest.raises(InputError) as too_big:
        run_job(job, store)

    assert str(too_big.value) == (
        "image: image is 640×480 (307,200 pixels), over the limit of 10,000 pixels "
        "(AEROVISION_MAX_IMAGE_PIXELS)"
    )


def test_params_and_tools_the_registry_refuses_are_input_errors(store: LocalFileStore) -> None:
    scene, template, _ = scene_with_patch(1)
    inputs = {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))}
    for params, problem in (
        ({"threshold": 2.0}, "threshold: Input should be less than or equal to 1"),
        ({"method": "TM_FASTEST"}, "method: Input should be 'TM_CCOEFF_NORMED', "),
    ):
        with pytest.raises(InputError) as refused:
            run_job(_job(store, "template", inputs, params), store)
        message = str(refused.value)
        assert message.startswith(f"the task's params are not valid for template: {problem}")
        assert "\n" not in message and "errors.pydantic.dev" not in message
    with pytest.raises(InputError, match=r"^the retired tool is not available on this server$"):
        run_job(_job(store, "retired", inputs), store)


def test_a_store_that_refuses_result_writes_is_not_the_task_s_fault(
    store: LocalFileStore,
) -> None:
    """StoreUnavailable, not InputError: the worker retries the task instead of failing it."""
    scene, template, _ = scene_with_patch(1)
    job = _job(store, "template",
               {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))})
    (store.root / "results").rmdir()
    (store.root / "results").write_bytes(b"not a folder")

    with pytest.raises(StoreUnavailable, match=r"refused a write \(not a directory\)"):
        run_job(job, store)


def test_search_runs_on_the_task_account_s_library_only(
    store: LocalFileStore, tmp_path: Path
) -> None:
    from dataclasses import replace

    from aerovision.libraries.service import Libraries
    from aerovision.store import libraries as library_store
    from aerovision.store.db import Database, migrate
    from aerovision.store.scope import DEFAULT
    from tests import library_truth as truth

    url = f"sqlite:///{tmp_path / 'libraries.db'}"
    migrate(url)
    db = Database(url)
    libraries = Libraries(db, store, index_folder=None, workers=1, max_pixels=MAX_PIXELS,
                          memory_mb=None, inline=True)
    library = library_store.create_library(db, DEFAULT, "parts", "")
    photos = truth.library_images()[:3]
    for name, image in photos:
        added = libraries.add(DEFAULT, library.library_id, truth.encode(image), brief=name,
                              tags=[], external_id=None, dedup="exact")
        assert isinstance(added, library_store.Image)
    query = truth.encode(photos[1][1], ".jpg")
    job = replace(_job(store, "search", {"image": ("q.jpg", query)},
                       {"library_id": library.library_id, "mode": "duplicate"}),
                  database_url=url)

    result = run_job(job, store)

    data = result.result_data
    assert result.result_files == []
    assert data["hits"] == 1 and data["found"] == 1 and data["best_match_type"] == "duplicate"
    assert data["results"][0]["brief"] == photos[1][0]
    assert set(data["timings"]) >= {"read_ms", "decode_ms", "match_ms", "describe_ms"}
    assert store.exists(job.thumbnails[0])
    elsewhere = replace(job, account_id="11111111-1111-4111-8111-111111111111", uid="v")
    with pytest.raises(InputError, match=f"the account has no library {library.library_id}"):
        run_job(elsewhere, store)
    db.dispose()


def test_every_tool_of_the_registry_has_a_runner_test() -> None:
    """A new tool gets its runner test here too."""
    assert set(TOOLS) == {"template", "feature", "surface", "inspect", "search", "chain"}
