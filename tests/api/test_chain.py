"""POST /api/v1/match/chain end to end against a real `aerovision serve`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.images import encode, photo, scene_with_degraded_patch
from tests.server import ServeProcess

SEED_STEPS = [
    {"tool": "template", "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.95}},
    {"tool": "template", "params": {"threshold": 0.7}},
    {"tool": "feature", "params": {"detector": "SIFT", "ratio_threshold": 0.7}},
]

CURL = """curl -X POST http://localhost:8888/api/v1/match/chain \\
-F image=@photo.png \\
-F template=@icon.png \\
-F 'steps=[{"tool":"template","params":{"method":"TM_CCOEFF_NORMED","threshold":0.95}},{"tool":"template","params":{"threshold":0.7}},{"tool":"feature","params":{"detector":"SIFT","ratio_threshold":0.7}}]'
"""

PYTHON = """
import requests, json
steps = [
    {"tool": "template", "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.95}},
    {"tool": "template", "params": {"threshold": 0.7}},
    {"tool": "feature", "params": {"detector": "SIFT", "ratio_threshold": 0.7}},
]
resp = requests.post(
    "http://localhost:8888/api/v1/match/chain",
    files={
        "image": open("photo.png", "rb"),
        "template": open("icon.png", "rb"),
    },
    data={"steps": json.dumps(steps)},
)
print(resp.json())
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chain-files")
    scene, patch, _ = scene_with_degraded_patch()
    (folder / "photo.png").write_bytes(encode(scene))
    (folder / "icon.png").write_bytes(encode(patch))
    return folder


def _assert_found_at_step_2(task: dict[str, Any]) -> None:
    assert task["status"] == "done", task["error"]
    assert task["tool"] == "chain"
    uid = task["uid"]
    data = task["result_data"]
    assert data["chain_result"] == "found"
    assert data["completed_step"] == 2
    assert data["total_steps"] == 3
    one, two, three = data["steps"]
    assert one["step"] == 1 and one["tool"] == "template" and one["status"] == "done"
    assert one["found"] is False and one["result_data"]["filtered_matches"] == 0
    assert one["params"] == {
        "method": "TM_CCOEFF_NORMED", "threshold": 0.95, "max_results": 20, "use_grayscale": True,
    }
    assert one["result_files"] == [f"results/{uid}/step1/matches.png", f"results/{uid}/step1/heatmap.png"]
    assert two["status"] == "done" and two["found"] is True
    assert two["result_data"]["filtered_matches"] == 1
    assert (two["result_data"]["matches"][0]["x"], two["result_data"]["matches"][0]["y"]) == (300, 200)
    assert two["params"]["threshold"] == 0.7
    assert two["result_files"] == [f"results/{uid}/step2/matches.png", f"results/{uid}/step2/heatmap.png"]
    assert three == {
        "step": 3, "tool": "feature", "status": "skipped",
        "params": {"detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.7, "max_matches": 200},
    }
    assert task["result_files"] == one["result_files"] + two["result_files"]
    assert task["params"]["steps"][1] == {"tool": "template", "params": two["params"]}


def test_seed_curl_example_verbatim(server: ServeProcess, workdir: Path) -> None:
    command = CURL.replace("http://localhost:8888", server.base_url)
    out = subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True, text=True, check=True)
    task = json.loads(out.stdout)
    assert task["status"] == "queued" and task["tool"] == "chain"
    _assert_found_at_step_2(server.wait_task(task["uid"]))


def test_seed_python_example_verbatim(
    server: ServeProcess, workdir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {}
    exec(compile(PYTHON.replace("http://localhost:8888", server.base_url), "seed", "exec"), namespace)
    assert namespace["resp"].status_code == 201
    task = namespace["resp"].json()
    assert "'status': 'queued'" in capsys.readouterr().out
    _assert_found_at_step_2(server.wait_task(task["uid"]))


def _chain(server: ServeProcess, image: bytes, template: bytes, steps: Any) -> requests.Response:
    return requests.post(
        server.url("/api/v1/match/chain"),
        files={"image": ("photo.png", image), "template": ("icon.png", template)},
        data={"steps": steps if isinstance(steps, str) else json.dumps(steps)},
        timeout=30,
    )


def test_nothing_found_is_not_found(server: ServeProcess, workdir: Path) -> None:
    other = encode(photo("chelsea")[50:98, 60:108])
    steps = [{"tool": "template", "params": {"threshold": 0.95}}, {"tool": "template", "params": {"threshold": 0.9}}]
    task = server.wait_task(_chain(server, (workdir / "photo.png").read_bytes(), other, steps).json()["uid"])
    assert task["status"] == "done"
    data = task["result_data"]
    assert data["chain_result"] == "not_found"
    assert data["completed_step"] == 2 and data["total_steps"] == 2
    assert [s["status"] for s in data["steps"]] == ["done", "done"]
    assert [s["found"] for s in data["steps"]] == [False, False]


def test_first_step_found_skips_the_rest(server: ServeProcess, workdir: Path) -> None:
    steps = [{"tool": "template", "params": {"threshold": 0.7}}] + [{"tool": "template"}] * 9
    response = _chain(server, (workdir / "photo.png").read_bytes(), (workdir / "icon.png").read_bytes(), steps)
    task = server.wait_task(response.json()["uid"])
    data = task["result_data"]
    assert data["chain_result"] == "found" and data["completed_step"] == 1 and data["total_steps"] == 10
    assert [s["status"] for s in data["steps"]] == ["done"] + ["skipped"] * 9


def test_a_step_that_cannot_run_is_recorded_and_the_chain_goes_on(server: ServeProcess) -> None:
    image = encode(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8))
    big = encode(np.random.default_rng(1).integers(0, 255, (60, 60), dtype=np.uint8))
    # both template steps fail (template larger than image): nothing could run
    task = server.wait_task(_chain(server, image, big, [{"tool": "template"}, {"tool": "template"}]).json()["uid"])
    assert task["status"] == "error"
    assert task["error"].startswith("no step of the chain could run: step 1 (template): template (60×60)")
    # the other way round the same steps run
    task = server.wait_task(_chain(server, big, image, [{"tool": "template"}]).json()["uid"])
    assert task["status"] == "done"


@pytest.mark.parametrize(
    ("steps", "loc", "message"),
    [
        ("not json", ["body", "steps"], "steps is not valid JSON"),
        ("{}", ["body", "steps"], "non-empty JSON array"),
        ("[]", ["body", "steps"], "non-empty JSON array"),
        ([{"tool": "template"}] * 11, ["body", "steps"], "at most 10 steps (AEROVISION_MAX_CHAIN_STEPS), got 11"),
        ([{"tool": "template"}, {"tool": "sift"}], ["body", "steps", 1, "tool"], "step 2: tool must be one of"),
        ([{"tool": "template", "params": {"threshold": 2}}], ["body", "steps", 0, "params", "threshold"],
         "step 1 (template): threshold"),
        ([{"tool": "feature", "params": {"detector": "SURF"}}], ["body", "steps", 0, "params", "detector"],
         "step 1 (feature): detector"),
        ([{"tool": "template", "params": {"treshold": 0.9}}], ["body", "steps", 0, "params", "treshold"],
         "Extra inputs are not permitted"),
        ([{"tool": "template", "param": {}}], ["body", "steps", 0, "param"], "unknown field 'param'"),
        ([{"tool": "template", "params": [1]}], ["body", "steps", 0, "params"], "params must be an object"),
        (["template"], ["body", "steps", 0], "must be an object"),
    ],
)
def test_bad_steps_are_422_naming_the_step(
    server: ServeProcess, workdir: Path, steps: Any, loc: list[Any], message: str
) -> None:
    response = _chain(server, (workdir / "photo.png").read_bytes(), (workdir / "icon.png").read_bytes(), steps)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    assert message in error["msg"]


def test_missing_steps_is_422(server: ServeProcess, workdir: Path) -> None:
    response = requests.post(
        server.url("/api/v1/match/chain"),
        files={"image": ("p.png", (workdir / "photo.png").read_bytes()),
               "template": ("i.png", (workdir / "icon.png").read_bytes())},
        timeout=10,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "steps"]


def test_image_steps_refuse_a_non_image_at_submission(server: ServeProcess, workdir: Path) -> None:
    response = _chain(server, b"ply\nformat ascii 1.0\n", (workdir / "icon.png").read_bytes(), [{"tool": "template"}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "image"]


def _chain_on(server: ServeProcess, image: np.ndarray, icon: np.ndarray,
           steps: list[dict[str, Any]]) -> dict[str, Any]:
    response = requests.post(
        server.url("/api/v1/match/chain"),
        files={"image": ("photo.png", encode(image)), "template": ("icon.png", encode(icon))},
        data={"steps": json.dumps(steps)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    task = server.wait_task(response.json()["uid"])
    assert task["status"] == "done", task["error"]
    return task


def _rotated_icon() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The astronaut photo, a 140 px piece of it turned 25° (template matching cannot find
    it, feature matching can), and where the piece's corners are in the photo."""
    import cv2

    image = photo("astronaut")
    turn = cv2.getRotationMatrix2D((100, 100), 25, 1.0)
    icon = cv2.warpAffine(image[60:260, 140:340], turn, (200, 200),
                          borderMode=cv2.BORDER_REFLECT)[30:170, 30:170].copy()
    back = cv2.invertAffineTransform(turn)
    corners = np.array([[0, 0], [139, 0], [139, 139], [0, 139]], float) + 30
    return image, icon, (back[:, :2] @ corners.T).T + back[:, 2] + [140, 60]


def test_found_when_homography_refuses_stray_matches(server: ServeProcess) -> None:
    """An icon that is not in the photo: the seed's rule (good_matches > 0) counts a few
    stray pairs as found; "found_when": "homography" asks for the object itself."""
    image, absent = photo("astronaut"), photo("coffee")[100:240, 200:340].copy()
    seed = _chain_on(server, image, absent, SEED_STEPS)
    feature = seed["result_data"]["steps"][2]
    assert feature["result_data"]["good_matches"] > 0 and not feature["result_data"]["found"]
    assert seed["result_data"]["chain_result"] == "found" and feature["found"] is True
    strict = [*SEED_STEPS[:2], {**SEED_STEPS[2], "found_when": "homography"}]
    task = _chain_on(server, image, absent, strict)
    assert task["result_data"]["chain_result"] == "not_found"
    step = task["result_data"]["steps"][2]
    assert step["found"] is False and step["found_when"] == "homography"
    assert task["params"]["steps"][2]["found_when"] == "homography"
    assert "found_when" not in task["params"]["steps"][0]


def test_inputs_swapped_find_the_icon_in_the_photo(server: ServeProcess) -> None:
    image, icon, corners = _rotated_icon()
    swapped = [*SEED_STEPS[:2], {**SEED_STEPS[2], "found_when": "homography",
                                 "inputs": {"query_image": "template", "train_image": "image"}}]
    task = _chain_on(server, image, icon, swapped)
    data = task["result_data"]
    assert (data["chain_result"], data["completed_step"]) == ("found", 3)
    assert [s["found"] for s in data["steps"][:2]] == [False, False]
    step = data["steps"][2]
    assert step["inputs"] == {"query_image": "template", "train_image": "image"}
    assert np.abs(np.array(step["result_data"]["corners"]) - corners).max() < 4
    default = _chain_on(server, image, icon, SEED_STEPS)["result_data"]["steps"][2]
    # the other way round, no consistent geometry: no outline at all (or a wrong one)
    wrong = default["result_data"]
    assert wrong["corners"] is None if not wrong["found"] else (
        np.abs(np.array(wrong["corners"]) - corners).max() > 50)


@pytest.mark.parametrize(
    ("step", "loc", "msg"),
    [
        ({"tool": "feature", "found_when": "inliers"}, ["body", "steps", 0, "found_when"],
         "step 1 (feature): found_when must be one of good_matches, homography"),
        ({"tool": "template", "found_when": "homography"}, ["body", "steps", 0, "found_when"],
         "step 1 (template): found_when must be one of matches"),
        ({"tool": "feature", "inputs": {"query_image": "template"}},
         ["body", "steps", 0, "inputs"],
         "step 1 (feature): inputs must map each of the tool's inputs to a different chain "
         "input: {'query_image': image|template, 'train_image': image|template}"),
        ({"tool": "feature", "inputs": {"query_image": "image", "train_image": "image"}},
         ["body", "steps", 0, "inputs"],
         "step 1 (feature): inputs must map each of the tool's inputs to a different chain "
         "input: {'query_image': image|template, 'train_image': image|template}"),
    ],
)
def test_bad_found_when_or_inputs_are_422(
    server: ServeProcess, workdir: Path, step: dict[str, Any], loc: list[Any], msg: str
) -> None:
    photo_png, icon_png = (workdir / "photo.png").read_bytes(), (workdir / "icon.png").read_bytes()
    response = _chain(server, photo_png, icon_png, [step])
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["msg"]) == (loc, msg)
