"""POST /api/v1/match/surface end to end: seed examples, known poses, bad PLY files, cache."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.api.seeds import run_fetch_example
from tests.server import ServeProcess
from tests.shapes import make_scene, object_cloud, ply_bytes, pose_errors

DIAMETER = 1.4  # of tests.shapes.OBJECT, roughly; errors are relative to it
SPEC_FIELDS = {"pose", "num_model_points", "num_scene_points", "icp_residual", "poses_found"}

CURL_BASIC = """curl -X POST http://localhost:8888/api/v1/match/surface \\
  -F "model_file=@model.ply" \\
  -F "scene_file=@scene.ply"
"""
CURL_PRECISE = """curl -X POST http://localhost:8888/api/v1/match/surface \\
  -F "model_file=@model.ply" \\
  -F "scene_file=@scene.ply" \\
  -F "relative_sampling_step=0.025" \\
  -F "num_angles=60" \\
  -F "use_icp=true" \\
  -F "icp_iterations=200"
"""
PYTHON = """
import requests, time
files = {
    "model_file": open("model.ply", "rb"),
    "scene_file": open("scene.ply", "rb"),
}
data = {
    "relative_sampling_step": "0.025",
    "use_icp": "true",
    "icp_iterations": "200",
}
resp = requests.post(
    "http://localhost:8888/api/v1/match/surface",
    files=files, data=data,
)
task = resp.json()
while True:
    r = requests.get(f"http://localhost:8888/api/v1/tasks/{task['uid']}")
    result = r.json()
    if result["status"] in ("done", "error"):
        break
    time.sleep(1)
"""
JAVASCRIPT = """
const form = new FormData();
form.append("model_file", modelInput.files[0]);
form.append("scene_file", sceneInput.files[0]);
form.append("relative_sampling_step", "0.025");
form.append("use_icp", "true");
const res = await fetch("/api/v1/match/surface", {
  method: "POST",
  body: form,
});
const task = await res.json();
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("surface-files")
    case = make_scene("full", 3, diameter=DIAMETER, noise=0.002)
    (folder / "model.ply").write_bytes(ply_bytes(object_cloud(3000)))
    (folder / "scene.ply").write_bytes(ply_bytes(case.scene, "binary_little_endian"))
    np.savez(folder / "truth.npz", rotation=case.rotation, translation=case.translation)
    return folder


def _local(text: str, server: ServeProcess) -> str:
    return text.replace("http://localhost:8888", server.base_url)


def _assert_solved(task: dict[str, Any], workdir: Path, server: ServeProcess) -> None:
    assert task["status"] == "done", task["error"]
    data = task["result_data"]
    assert SPEC_FIELDS <= set(data)
    assert data["poses_found"] >= 1
    pose = np.array(data["pose"])
    assert pose.shape == (4, 4) and np.allclose(pose[3], [0, 0, 0, 1])
    truth = np.load(workdir / "truth.npz")
    angle, shift = pose_errors(pose, truth["rotation"], truth["translation"], DIAMETER)
    assert angle < 2.0 and shift < 0.01, (angle, shift)
    assert isinstance(data["num_model_points"], int) and isinstance(data["num_scene_points"], int)
    assert isinstance(data["icp_residual"], float)
    uid = task["uid"]
    assert task["result_files"] == [f"results/{uid}/alignment.png"]
    assert task["thumbnails"] == [f"thumbnails/{uid}/model.png", f"thumbnails/{uid}/scene.png"]
    for path in task["result_files"] + task["thumbnails"]:
        response = requests.get(server.url(f"/{path}"), timeout=60)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_seed_curl_examples_verbatim(server: ServeProcess, workdir: Path) -> None:
    def curl(command: str) -> dict[str, Any]:
        out = subprocess.run(["bash", "-c", _local(command, server)], cwd=workdir,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    basic = curl(CURL_BASIC)
    assert basic["status"] == "queued" and basic["tool"] == "surface"
    assert basic["params"] == {
        "relative_sampling_step": 0.05, "relative_distance_step": 0.05, "num_angles": 30,
        "use_icp": True, "icp_tolerance": 0.005, "icp_iterations": 100,
    }
    assert basic["input_files"] == [f"uploads/{basic['uid']}/model.ply", f"uploads/{basic['uid']}/scene.ply"]
    precise = curl(CURL_PRECISE)
    assert precise["params"]["relative_sampling_step"] == 0.025 and precise["params"]["num_angles"] == 60
    for task in (basic, precise):
        _assert_solved(server.wait_task(task["uid"], timeout=120), workdir, server)


def test_seed_python_example_verbatim(server: ServeProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {}
    exec(compile(_local(PYTHON, server), "seed", "exec"), namespace)
    assert namespace["task"]["params"]["icp_iterations"] == 200
    _assert_solved(namespace["result"], workdir, server)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the fetch example")
def test_seed_javascript_example_verbatim(server: ServeProcess, workdir: Path) -> None:
    task = run_fetch_example(
        JAVASCRIPT, base_url=server.base_url, cwd=workdir,
        inputs={"modelInput": "model.ply", "sceneInput": "scene.ply"}, result="task",
    )
    assert task["params"]["relative_sampling_step"] == 0.025 and task["params"]["use_icp"] is True
    _assert_solved(server.wait_task(task["uid"], timeout=120), workdir, server)


def test_second_task_on_the_same_model_uses_the_cache(server: ServeProcess, workdir: Path) -> None:
    model = (workdir / "model.ply").read_bytes()
    scene = (workdir / "scene.ply").read_bytes()
    params = {"num_angles": "31"}  # a training parameter no other test uses

    def run() -> dict[str, Any]:
        response = requests.post(
            server.url("/api/v1/match/surface"),
            files={"model_file": ("model.ply", model), "scene_file": ("scene.ply", scene)},
            data=params, timeout=30,
        )
        return server.wait_task(response.json()["uid"], timeout=120)

    first, second = run(), run()
    assert first["result_data"]["model_cache_hit"] is False
    assert second["result_data"]["model_cache_hit"] is True
    assert second["result_data"]["pose"] == first["result_data"]["pose"]
    _assert_solved(second, workdir, server)


def test_scene_without_the_model_finds_nothing(server: ServeProcess, workdir: Path) -> None:
    empty = make_scene("none", 5, diameter=DIAMETER)
    response = requests.post(
        server.url("/api/v1/match/surface"),
        files={"model_file": ("model.ply", (workdir / "model.ply").read_bytes()),
               "scene_file": ("clutter.ply", ply_bytes(empty.scene))},
        timeout=30,
    )
    task = server.wait_task(response.json()["uid"], timeout=120)
    assert task["status"] == "done"
    assert task["result_data"]["poses_found"] == 0 and task["result_data"]["pose"] is None


PLY_HEADER = "ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\n{extra}end_header\n"
NORMALS = "property float nx\nproperty float ny\nproperty float nz\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PLY_HEADER.format(n=3, extra="").encode() + b"0 0 0\n1 0 0\n0 1 0\n", "nx"),
        (PLY_HEADER.format(n=10**9, extra=NORMALS).encode() + b"0 0 0 0 0 1\n", "vert"),
        (b"", "file is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PLY"),
    ],
)
def test_bad_ply_refused_at_submission(server: ServeProcess, workdir: Path, content: bytes, message: str) -> None:
    response = requests.post(
        server.url("/api/v1/match/surface"),
        files={"model_file": ("model.ply", (workdir / "model.ply").read_bytes()),
               "scene_file": ("scene.ply", content)},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "scene_file"]
    assert message in error["msg"]


def test_bad_ply_body_is_a_task_error(server: ServeProcess, workdir: Path) -> None:
    nan = PLY_HEADER.format(n=4, extra=NORMALS).encode() + b"0 0 0 0 0 1\n1 0 0 0 0 1\nnan 1 0 0 0 1\n0 0 1 0 0 1\n"
    binary = (workdir / "scene.ply").read_bytes()
    for content, message in ((nan, "NaN"), (binary[: len(binary) // 2], "")):
        response = requests.post(
            server.url("/api/v1/match/surface"),
            files={"model_file": ("model.ply", (workdir / "model.ply").read_bytes()),
                   "scene_file": ("scene.ply", content)},
            timeout=30,
        )
        if response.status_code == 422:  # caught by the header check (size does not fit)
            assert response.json()["detail"][0]["loc"] == ["body", "scene_file"]
            continue
        task = server.wait_task(response.json()["uid"], timeout=60)
        assert task["status"] == "error"
        assert task["error"].startswith("scene_file: ") and message in task["error"]
